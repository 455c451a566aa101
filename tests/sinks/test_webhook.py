"""The webhook sink in real runs against a real local HTTPS receiver that checks signatures."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from pipeline.core.config import load_config
from pipeline.run.runner import RunSummary, run
from push_support import HttpsReceiver, run_with_outage, written_events
from support import BlobEngine, make_tls_files

SECRET = "whsec-test-3f9a"


@pytest.fixture
def receiver(tmp_path, monkeypatch) -> Iterator[HttpsReceiver]:
    monkeypatch.setenv("DETSTREAM_WEBHOOK_SECRET", SECRET)
    server = HttpsReceiver(make_tls_files(tmp_path / "tls"), SECRET.encode())
    yield server
    server.stop()


def stats_of(summary: RunSummary) -> dict[str, int]:
    (stats,) = [v for k, v in summary.sink_stats.items() if k.startswith("webhook:")]
    return stats


def test_receiver_restarted_mid_run_gets_every_event(tmp_path, receiver):
    """Stopped at engine call 30 (its kept-alive connection cut), back a second after
    call 80 answering 503 twice: every event arrives, signed, in order, repeats only
    with the same id and body."""
    receiver.start()
    url = f"webhook:{receiver.url}?ssl_ca_certs={receiver.tls / 'ca.pem'}&spool={tmp_path / 'spool'}&buffer=4&batch=4"

    def up() -> None:
        receiver.unavailable = 2
        receiver.start()

    summary, lines = run_with_outage(tmp_path, url, lambda: set(receiver.ids()), receiver.stop, up)
    assert summary.exit_code == 0
    expected = [json.loads(line)["event_id"] for line in lines]
    assert len(set(expected)) == len(expected) > 20
    ids = receiver.ids()
    assert set(ids) == set(expected)  # nothing lost
    assert list(dict.fromkeys(ids)) == expected  # in the order they happened
    by_id = dict(zip(expected, lines))
    assert all(body.decode() == by_id[event_id] for event_id, body in receiver.accepted)  # repeats are the same record
    assert receiver.bad_signatures == 0
    stats = stats_of(summary)
    assert stats["spooled"] > 0 and stats["replayed"] > 0  # the outage went through the spool
    assert stats["published"] >= len(expected) and stats["rejected"] == 0 and stats["left in spool"] == 0


def test_refused_records_are_dropped_counted_and_logged_once(tmp_path, receiver, videos, caplog):
    receiver.reject_types = ("track_start",)
    receiver.start()
    url = f"webhook:{receiver.url}?ssl_ca_certs={receiver.tls / 'ca.pem'}&spool={tmp_path / 'spool'}&detections=1"
    config = load_config(None, {"sources": [str(videos["b"])], "sinks": [url, f"jsonl:{tmp_path / 'out.jsonl'}"]})
    with caplog.at_level(logging.WARNING, logger="detstream"):
        summary = run(config, BlobEngine())
    stats = stats_of(summary)
    events = [json.loads(line) for line in written_events(tmp_path / "out.jsonl")]
    starts = [e for e in events if e["type"] == "track_start"]
    bodies = [json.loads(body) for _, body in receiver.accepted]
    assert [b["seq"] for b in bodies if "detections" in b] == list(range(25))  # detections=1: every frame too
    assert [b for b in bodies if "type" in b] == [e for e in events if e["type"] != "track_start"]
    assert stats["rejected"] == len(starts) > 0 and stats["published"] == len(bodies) and stats["left in spool"] == 0
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and "HTTP 400" in refusals[0].getMessage()


def test_an_unknown_ca_is_refused_and_the_records_wait_in_the_spool(tmp_path, receiver, videos, caplog):
    receiver.start()
    url = f"webhook:{receiver.url}?spool={tmp_path / 'spool'}"  # the system CAs do not know our test CA
    config = load_config(None, {"sources": [str(videos["b"])], "sinks": [url, f"jsonl:{tmp_path / 'out.jsonl'}"]})
    with caplog.at_level(logging.WARNING, logger="detstream"):
        summary = run(config, BlobEngine())
    events = written_events(tmp_path / "out.jsonl")
    assert summary.exit_code == 0 and receiver.accepted == []
    assert stats_of(summary)["left in spool"] == len(events) > 0
    assert any("TLS verification failed" in r.getMessage() for r in caplog.records)
    # the next run, with the right CA, delivers them first (the same clip: the same event ids again)
    with_ca = f"{url}&ssl_ca_certs={receiver.tls / 'ca.pem'}"
    again = run(load_config(None, {"sources": [str(videos["b"])], "sinks": [with_ca]}), BlobEngine())
    assert stats_of(again)["replayed"] >= len(events)  # and some of the new ones, spooled behind them
    bodies = [body.decode() for _, body in receiver.accepted]
    assert bodies[: len(events)] == events  # the first run's records, as they were written
    ids = [json.loads(line)["event_id"] for line in events]
    assert receiver.ids() == ids + ids  # then the second run's (capture times differ, ids do not)
