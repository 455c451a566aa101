"""The on-disk spool: order, bound, crash leftovers, locking."""

from __future__ import annotations

import pytest

from pipeline.core.errors import SinkError
from stages.sinks.spool import Spool


def drain(spool: Spool, limit: int = 7) -> list[str]:
    out = []
    while (peeked := spool.peek(limit)) is not None:
        lines, cursor = peeked
        out += lines
        spool.commit(cursor)
    return out


def test_records_come_back_in_order_across_segments(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000)  # segments of 1250 bytes
    lines = [f"record {i:03d}" for i in range(300)]  # 11 bytes each: 3300 bytes, 3 segments
    for line in lines:
        spool.append(line)
    assert len(list(tmp_path.glob("*.spool"))) == 3
    assert drain(spool) == lines
    assert len(spool) == 0 and list(tmp_path.glob("*.spool")) == []  # drained: deleted
    spool.close()


def test_over_the_bound_the_oldest_are_dropped_and_counted(tmp_path):
    spool = Spool(tmp_path, max_bytes=800)  # segments of 100 bytes
    lines = [f"record {i:03d}" for i in range(200)]
    for line in lines:
        spool.append(line)
    assert spool.size <= 800
    kept = drain(spool)
    assert spool.dropped + len(kept) == 200
    assert kept == lines[200 - len(kept) :]  # the newest, in order
    spool.close()


def test_a_reopened_spool_continues_where_the_last_process_stopped(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000)
    for i in range(10):
        spool.append(f"r{i}")
    lines, cursor = spool.peek(4)
    spool.commit(cursor)
    spool.peek(3)  # read but never committed (publish failed): comes back
    spool.close()
    again = Spool(tmp_path, max_bytes=10_000)
    assert len(again) == 6
    assert drain(again) == [f"r{i}" for i in range(4, 10)]
    again.close()


def test_push_front_is_read_first(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.append("later")
    spool.push_front(["first", "second"])
    assert drain(spool) == ["first", "second", "later"]
    spool.close()


def test_a_torn_last_record_is_cut_off(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.append("whole")
    spool.close()
    (segment,) = tmp_path.glob("*.spool")
    with open(segment, "ab") as f:
        f.write(b'{"half": ')  # the process died inside a write
    again = Spool(tmp_path, max_bytes=10_000)
    again.append("next")
    assert drain(again) == ["whole", "next"]
    again.close()


def test_one_spool_one_process(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000)
    with pytest.raises(SinkError, match="in use by another detstream process"):
        Spool(tmp_path, max_bytes=10_000)
    spool.close()
    Spool(tmp_path, max_bytes=10_000).close()
