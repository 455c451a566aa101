"""The consumer API and `detstream consume` against a real redis-server."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from pipeline.redis.consumer import Consumer, ConsumerSettings
from pipeline.core.messages import event_id
from redis_support import RedisServer, xadd_messages
from pipeline.cli import main

HERE = Path(__file__).parent


def consume_process(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """The consume command in its own process (`python -m`: the same code as `detstream
    consume` without importing the model stack, which can take minutes on a loaded box)."""
    command = [sys.executable, "-m", "pipeline.redis.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=consume_env())


def consume_env() -> dict[str, str]:
    """Test handlers importable; the caller's PYTHONPATH kept (it picks the code under test)."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def detstream(*args: str) -> int:
    """`detstream ARGS` in this process (the console script's own main)."""
    return main(list(args))


def pending(client, stream: str, group: str) -> dict[str, int]:
    return {c["name"]: c["pending"] for c in client.xinfo_consumers(stream, group)}


def test_a_consumer_killed_before_ack_is_taken_over(tmp_path, redis_server, caplog):
    client = redis_server.client()
    ids = xadd_messages(client, "cam", 30)
    doomed = consume_process("--redis", redis_server.url, "--group", "g", "--consumer", "doomed",
                             "--handler", "crash_handlers:die", "--count", "10")
    assert doomed.returncode == -9  # SIGKILLed inside its handler, nothing acknowledged
    assert pending(client, "detstream:cam", "g") == {"doomed": 10}
    out = tmp_path / "out.jsonl"
    caplog.set_level(logging.INFO, logger="detstream")
    code = detstream("consume", "--redis", redis_server.url, "--group", "g", "--consumer", "rescuer", "--out", str(out),
                     "--claim-idle-ms", "200", "--block-ms", "100", "--until-idle", "2")
    assert code == 0
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(m["event_id"] for m in messages) == sorted(ids)
    assert "claimed 10" in caplog.text
    assert pending(client, "detstream:cam", "g") == {"doomed": 0, "rescuer": 0}


def test_own_pending_entries_are_read_again_on_restart(redis_server):
    client = redis_server.client()
    ids = xadd_messages(client, "cam", 5)
    settings = ConsumerSettings(group="g", name="c1", block_ms=50, claim_idle_ms=600_000, max_deliveries=10)

    def fail(message):
        raise RuntimeError("database down")

    first = Consumer(client, "detstream:{source}", settings).run(fail, idle_exit_s=0.3)
    assert first.failures == 5 and first.handled == 0
    assert pending(client, "detstream:cam", "g") == {"c1": 5}
    got: list[str] = []
    again = Consumer(client, "detstream:{source}", settings).run(lambda m: got.append(m["event_id"]), idle_exit_s=0.3)
    assert got == ids  # its own pending list, in order, with no claim involved
    assert again.handled == 5 and again.claimed == 0
    assert pending(client, "detstream:cam", "g") == {"c1": 0}


def test_entries_whose_delivery_a_redis_restart_cut_off_are_read_again_at_once(persistent_redis):
    """Found by the soak (docs/soak.md): Redis recorded a delivery (XREADGROUP >) but was
    killed before its reply arrived; the entries waited in the consumer's pending list for
    claim_idle_ms (60 s by default), unhandled, and a consumer stopped before that lost them."""
    client = persistent_redis.client()
    settings = ConsumerSettings(group="g", name="c1", block_ms=50, claim_idle_ms=600_000)
    consumer = Consumer(client, "detstream:{source}", settings)
    got: list[str] = []
    first = xadd_messages(client, "cam", 2)
    while len(got) < 2:
        consumer.step(lambda m: got.append(m["event_id"]))
    # delivered to c1 by Redis, the reply lost with the connection: pending, never handled
    later = [event_id("cam", seq) for seq in range(2, 5)]
    for seq, eid in enumerate(later, start=2):
        client.xadd("detstream:cam", {"event_id": eid, "source": "cam", "seq": seq,
                                      "message": json.dumps({"event_id": eid, "source": "cam", "seq": seq})})
    client.xreadgroup("g", "c1", {"detstream:cam": ">"})
    persistent_redis.kill()
    with pytest.raises(redis.ConnectionError):
        consumer.step(lambda m: got.append(m["event_id"]))
    persistent_redis.start()
    deadline = time.monotonic() + 5
    while len(got) < 5 and time.monotonic() < deadline:
        consumer.step(lambda m: got.append(m["event_id"]))
    assert got == first + later  # at once, in order, and the first two not again
    assert pending(client, "detstream:cam", "g") == {"c1": 0}


def test_dead_letter_after_max_deliveries(redis_server):
    client = redis_server.client()
    ids = xadd_messages(client, "cam", 6)
    calls: list[int] = []

    def handler(message):
        calls.append(message["seq"])
        if message["seq"] == 2:
            raise ValueError("cannot parse seq 2")

    settings = ConsumerSettings(group="g", name="c1", block_ms=50, claim_idle_ms=50, max_deliveries=3)
    stats = Consumer(client, "detstream:{source}", settings).run(handler, idle_exit_s=1.0)
    assert calls.count(2) == 3 and sorted(set(calls)) == list(range(6)) and len(calls) == 8
    assert stats.handled == 5 and stats.failures == 3 and stats.dead_lettered == 1
    (_, dead), = client.xrange("detstream:cam:dead")
    assert dead["event_id"] == ids[2] and dead["deliveries"] == "3" and dead["dead_stream"] == "detstream:cam"
    assert "ValueError: cannot parse seq 2" in dead["reason"]
    assert json.loads(dead["message"])["seq"] == 2
    assert pending(client, "detstream:cam", "g") == {"c1": 0}


def test_entries_delivered_too_often_are_dead_lettered_without_calling_the_handler(redis_server):
    client = redis_server.client()
    xadd_messages(client, "cam", 2)
    client.xgroup_create("detstream:cam", "g", id="0")
    for _ in range(3):  # a consumer that crashes on them: three deliveries, never acknowledged
        client.xreadgroup("g", "crashy", {"detstream:cam": "0" if _ else ">"}, count=10)
    calls: list[dict] = []
    settings = ConsumerSettings(group="g", name="c2", block_ms=50, claim_idle_ms=0, max_deliveries=2)
    stats = Consumer(client, "detstream:{source}", settings).run(calls.append, idle_exit_s=0.3)
    assert calls == [] and stats.dead_lettered == 2
    assert client.xlen("detstream:cam:dead") == 2


def test_repeated_event_ids_are_handled_once(redis_server):
    client = redis_server.client()
    xadd_messages(client, "cam", 3)
    xadd_messages(client, "cam", 3)  # the sink retried a batch: same event ids again
    got: list[str] = []
    settings = ConsumerSettings(group="g", name="c1", block_ms=50)
    stats = Consumer(client, "detstream:{source}", settings).run(lambda m: got.append(m["event_id"]), idle_exit_s=0.3)
    assert got == [event_id("cam", i) for i in range(3)]
    assert stats.duplicates == 3
    assert pending(client, "detstream:cam", "g") == {"c1": 0}


def test_new_streams_are_found_and_dead_letter_streams_are_not_consumed(redis_server):
    client = redis_server.client()
    xadd_messages(client, "a", 2)
    xadd_messages(client, "b", 3)
    xadd_messages(client, "x", 1, stream="detstream:a:dead")
    got: list[tuple[str, int]] = []
    settings = ConsumerSettings(group="g", name="c1", block_ms=50)
    Consumer(client, "detstream:{source}", settings).run(lambda m: got.append((m["source"], m["seq"])), idle_exit_s=0.3)
    assert sorted(got) == [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("b", 2)]


def test_consume_cli_prints_jsonl_to_stdout(redis_server, capsys):
    ids = xadd_messages(redis_server.client(), "cam", 4)
    assert detstream("consume", "--redis", redis_server.url, "--group", "g", "--consumer", "c", "--until-idle", "0.5",
                     "--block-ms", "100") == 0
    assert [json.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()] == ids


def test_consume_cli_start_up_errors_are_one_clean_line(tmp_path, caplog, capsys):
    server = RedisServer(tmp_path / "redis", password="s3cret-pw").start()
    cases = [
        (f"redis://:wrong-pw@127.0.0.1:{server.port}/0", "authentication failed"),
        (f"redis://:wrong-pw@127.0.0.1:{server.port}/0?stream=x:{{cam}}", "the only placeholder allowed"),
        ("redis://:wrong-pw@127.0.0.1:notaport/0", "the port is not a number"),
        ("redis://:wrong-pw@127.0.0.1:1/0?batch=5", "unknown option 'batch'"),
        (f"redis://:s3cret-pw@127.0.0.1:{server.port}/0 --handler no_such_module:f", "cannot import no_such_module"),
    ]
    try:
        for url, expected in cases:
            caplog.clear()
            url, *extra = url.split(" ")
            assert detstream("consume", "--redis", url, "--group", "g", "--consumer", "c", *extra) == 2, url
            errors = [r for r in caplog.records if r.levelname == "ERROR"]
            assert len(errors) == 1 and expected in errors[0].getMessage(), caplog.text
            assert errors[0].exc_info is None  # one line, no traceback
            assert "wrong-pw" not in caplog.text and "s3cret-pw" not in caplog.text
    finally:
        server.stop()
    # nothing listens any more: a consumer cannot start
    caplog.clear()
    assert detstream("consume", "--redis", f"redis://127.0.0.1:{server.port}/0", "--group", "g", "--consumer", "c") == 2
    assert "cannot connect" in caplog.text
    assert "wrong-pw" not in capsys.readouterr().err


def test_consume_stops_on_sigterm_after_acknowledging_and_exits_143(tmp_path, redis_server):
    client = redis_server.client()
    ids = xadd_messages(client, "cam", 5)
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "pipeline.redis.cli", "--redis", redis_server.url, "--group", "g",
               "--consumer", "c", "--out", str(out), "--block-ms", "100"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=consume_env())
    try:
        deadline = time.monotonic() + 120  # the interpreter may start slowly on a loaded box
        while not (out.exists() and len(out.read_text().splitlines()) == len(ids)):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert "SIGTERM: stopping" in stderr
    assert pending(client, "detstream:cam", "g") == {"c": 0}  # what it wrote, it acknowledged


def test_a_handler_module_in_the_current_directory_is_found(tmp_path):
    # as `python -m` would: the console script's own folder is on sys.path, the cwd is not
    from support import run_cli

    (tmp_path / "my_alerts.py").write_text("def on_message(message):\n    pass\n")
    args = ("consume", "--redis", "redis://127.0.0.1:1/0", "--group", "g", "--consumer", "c")
    found = run_cli(*args, "--handler", "my_alerts:on_message", cwd=tmp_path)
    assert found.returncode == 2 and "cannot connect" in found.stderr, found.stderr  # imported, then no server
    missing = run_cli(*args, "--handler", "my_alerts:on_message", cwd=tmp_path.parent)
    assert missing.returncode == 2 and "cannot import my_alerts" in missing.stderr, missing.stderr
