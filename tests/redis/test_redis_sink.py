"""The Redis sink in real pipeline runs against a real redis-server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from pipeline.core.config import load_config
from pipeline.core.errors import RedisSetupError
from pipeline.core.messages import event_id, validate_message
from pipeline.run.runner import RunSummary, run
from redis_support import RedisServer, consume_all
from support import make_tls_files
from support import BlobEngine, GatedEngine, wait_for, write_video


def run_to_redis(sources: list[Path], url: str, engine: BlobEngine | None = None) -> RunSummary:
    # frames only: events have their own stream and test (tests/redis/test_redis_events.py)
    config = load_config(None, {"sources": [str(s) for s in sources], "sinks": [url], "tracking.enabled": False})
    return run(config, engine or BlobEngine())


def sink_stats(summary: RunSummary) -> dict[str, int]:
    (stats,) = summary.sink_stats.values()
    return stats


def spooled_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.spool") if p.stat().st_size)


def test_every_frame_gives_one_entry_in_order_per_source(tmp_path, videos, redis_server):
    summary = run_to_redis([videos["a"], videos["b"]], f"{redis_server.url}?spool={tmp_path / 'spool'}")
    assert summary.exit_code == 0
    assert sink_stats(summary) == {"published": 65, "spooled": 0, "replayed": 0, "dropped": 0, "left in spool": 0}
    client = redis_server.client()
    messages = consume_all(client)
    assert len({m["event_id"] for m in messages}) == len(messages) == 65
    for source, frames in (("a.mp4", 40), ("b.mp4", 25)):
        assert client.xlen(f"detstream:{source}") == frames
        mine = [m for m in messages if m["source"] == source]
        assert [m["seq"] for m in mine] == list(range(frames))
        assert [m["event_id"] for m in mine] == [event_id(source, i) for i in range(frames)]
    assert all(validate_message(m) == [] for m in messages)
    # entry fields let consumers filter without parsing the JSON
    _, fields = client.xrange("detstream:b.mp4", count=1)[0]
    assert fields["event_id"] == event_id("b.mp4", 0) and fields["source"] == "b.mp4" and fields["seq"] == "0"


def test_redis_killed_mid_run_loses_nothing(tmp_path, persistent_redis):
    """SIGKILL Redis while frames flow; the detector keeps going, the spool fills, and
    once Redis is back (same port, its AOF reloaded) the spool drains in order."""
    video = write_video(tmp_path / "long.mp4", 120, 160, 96)
    spool = tmp_path / "spool"
    engine = GatedEngine((30, 80))  # engine calls to stop at
    gates, reached = engine.gates, engine.reached
    url = f"{persistent_redis.url}?spool={spool}&buffer=4&batch=8"
    result: list[RunSummary] = []
    runner = threading.Thread(target=lambda: result.append(run_to_redis([video], url, engine)))
    runner.start()
    try:
        client = persistent_redis.client()
        assert reached[30].wait(60)
        wait_for(lambda: client.xlen("detstream:long.mp4") == 29, "the first 29 frames in Redis")
        persistent_redis.kill()
        gates[30].set()
        # frames 30-79 go through the detector while Redis is down
        assert reached[80].wait(60)
        wait_for(lambda: spooled_files(spool), "messages in the spool")
        time.sleep(2.0)  # keep Redis down a while longer: an outage of several seconds
        during_outage = sum(len(p.read_text().splitlines()) for p in spooled_files(spool))
        persistent_redis.start()
    finally:
        for gate in gates.values():
            gate.set()
        runner.join(120)
    (summary,) = result
    assert summary.exit_code == 0
    assert summary.counts["detect"] == 120
    stats = sink_stats(summary)
    assert during_outage > 0 and stats["spooled"] >= during_outage
    assert stats["replayed"] == stats["spooled"]
    assert stats["published"] == 120 and stats["dropped"] == 0 and stats["left in spool"] == 0
    assert spooled_files(spool) == []
    messages = consume_all(persistent_redis.client())
    assert [m["seq"] for m in messages] == list(range(120))
    assert len({m["event_id"] for m in messages}) == 120


def test_spool_of_a_previous_run_is_published_first(tmp_path, videos):
    server = RedisServer(tmp_path / "redis")  # not started yet: Redis is down for run 1
    spool = tmp_path / "spool"
    url = f"{server.url}?stream=detstream:all&spool={spool}"
    first = run_to_redis([videos["a"]], url)
    assert first.exit_code == 0  # an unreachable Redis does not fail the run
    assert sink_stats(first) == {"published": 0, "spooled": 40, "replayed": 0, "dropped": 0, "left in spool": 40}
    assert spooled_files(spool)
    server.start()
    try:
        second = run_to_redis([videos["b"]], url)
        assert sink_stats(second) == {"published": 65, "spooled": 0, "replayed": 40, "dropped": 0, "left in spool": 0}
        assert spooled_files(spool) == []
        messages = consume_all(server.client(), stream="detstream:all")
        assert [(m["source"], m["seq"]) for m in messages] == [("a.mp4", i) for i in range(40)] + [
            ("b.mp4", i) for i in range(25)
        ]
    finally:
        server.stop()


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path, videos):
    server = RedisServer(tmp_path / "redis")  # never started
    spool = tmp_path / "spool"
    # about 6 messages' worth of disk (a message is ~500 bytes); 1000 kept in memory by default
    summary = run_to_redis([videos["a"]], f"{server.url}?spool={spool}&spool_mb=0.003&buffer=1")
    stats = sink_stats(summary)
    assert stats["dropped"] > 0
    assert stats["dropped"] + stats["left in spool"] == 40
    server.start()
    try:
        run_to_redis([videos["b"]], f"{server.url}?spool={spool}&spool_mb=0.003&buffer=1")
        seqs = [m["seq"] for m in consume_all(server.client(), stream="detstream:a.mp4")]
        assert seqs == list(range(40 - stats["left in spool"], 40))  # the newest survived, in order
    finally:
        server.stop()


def test_stream_length_stays_near_maxlen(tmp_path, videos, redis_server):
    client = redis_server.client()
    node = 8  # MAXLEN ~ trims whole radix-tree nodes: the length ends within one node of the limit
    client.config_set("stream-node-max-entries", node)
    summary = run_to_redis([videos["a"]], f"{redis_server.url}?maxlen=20&spool={tmp_path / 'spool'}")
    assert summary.exit_code == 0
    length = client.xlen("detstream:a.mp4")
    assert 20 <= length < 20 + node
    _, last = client.xrevrange("detstream:a.mp4", count=1)[0]
    assert last["seq"] == "39"


def test_pubsub_channel_announces_live_messages(tmp_path, videos, redis_server):
    client = redis_server.client()
    pubsub = client.pubsub()
    pubsub.psubscribe("live:*")
    pubsub.get_message(timeout=1.0)  # the subscription confirmation
    run_to_redis([videos["b"]], f"{redis_server.url}?channel=live:{{source}}&spool={tmp_path / 'spool'}")
    received = []
    while (item := pubsub.get_message(timeout=1.0)) is not None:
        received.append(item)
    assert [item["channel"] for item in received] == ["live:b.mp4"] * 25
    pubsub.close()


def test_password_and_acl_user(tmp_path, videos, monkeypatch):
    server = RedisServer(tmp_path / "redis", password="s3cret-pw").start()
    try:
        client = server.client()
        client.acl_setuser("detector", enabled=True, passwords=["+user-pw"], keys=["detstream:*"], commands=["+@all"])
        base = f"127.0.0.1:{server.port}/0?spool={tmp_path / 'spool'}"
        ok = run_to_redis([videos["b"]], f"redis://detector:user-pw@{base}")
        assert sink_stats(ok)["published"] == 25
        assert not any("user-pw" in name for name in ok.counts)  # stage names are masked
        assert "redis://detector:***@127.0.0.1" in next(iter(ok.sink_stats))
        monkeypatch.setenv("DETSTREAM_TEST_PW", "s3cret-pw")
        from_env = run_to_redis([videos["b"]], f"redis://{base}&password_env=DETSTREAM_TEST_PW")
        assert sink_stats(from_env)["published"] == 25
        for url in (f"redis://:wrong-pw@{base}", f"redis://detector:wrong-pw@{base}", f"redis://{base}"):
            with pytest.raises(RedisSetupError) as info:
                run_to_redis([videos["b"]], url)
            message = str(info.value)
            assert "authentication failed" in message and "wrong-pw" not in message, message
    finally:
        server.stop()


@pytest.mark.parametrize(
    "query, expected",
    [
        ("/0?strem=x", "unknown option 'strem'"),
        ("/0?maxlen=-5", "maxlen='-5' is not an integer >= 0"),
        ("/0?batch=many", "batch='many' is not an integer >= 1"),
        ("/0?stream=det:{camera}", "the only placeholder allowed is {source}"),
        ("/zero", "the path must be a database number"),
        ("/0?ssl_ca_certs=ca.pem", "ssl_* options need a rediss:// URL"),
        ("/0?password_env=DETSTREAM_NOT_SET", "in the URL or in password_env, not both"),
    ],
)
def test_bad_urls_are_clear_errors_at_start_up(tmp_path, videos, redis_server, query, expected):
    url = f"redis://user:hidden-pw@127.0.0.1:{redis_server.port}{query}"
    with pytest.raises(RedisSetupError) as info:
        run_to_redis([videos["b"]], url)
    assert expected in str(info.value)
    assert "hidden-pw" not in str(info.value) and "user:***@" in str(info.value)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("redis://127.0.0.1:99999/0", "the port is not a number"),
        ("redis:///0", "no host"),
        ("redis://:pw@127.0.0.1:notaport/0", "the port is not a number"),
        ("redis://127.0.0.1:1/0?password_env=DETSTREAM_NOT_SET", "DETSTREAM_NOT_SET (password_env) is not set"),
    ],
)
def test_malformed_urls(videos, url, expected):
    with pytest.raises(RedisSetupError) as info:
        run_to_redis([videos["b"]], url)
    assert expected in str(info.value) and ":pw@" not in str(info.value)


def test_wrong_database_number_is_a_start_up_error(tmp_path, videos, redis_server):
    with pytest.raises(RedisSetupError) as info:
        run_to_redis([videos["b"]], f"{redis_server.url.removesuffix('/0')}/99?spool={tmp_path / 'spool'}")
    assert "refused" in str(info.value) and "DB index is out of range" in str(info.value)


def test_unreachable_redis_at_start_up_spools_instead_of_failing(tmp_path, videos):
    server = RedisServer(tmp_path / "redis")  # nothing listens on its port
    summary = run_to_redis([videos["b"]], f"{server.url}?spool={tmp_path / 'spool'}")
    assert summary.exit_code == 0 and sink_stats(summary)["left in spool"] == 25
    with pytest.raises(redis.ConnectionError):
        server.client().ping()


def test_tls_with_a_private_ca(tmp_path, videos):
    tls = make_tls_files(tmp_path / "tls")
    server = RedisServer(tmp_path / "redis", password="tls-pw", tls=tls).start()
    try:
        base = f"rediss://:tls-pw@127.0.0.1:{server.port}/0?spool={tmp_path / 'spool'}"
        summary = run_to_redis([videos["b"]], f"{base}&ssl_ca_certs={tls / 'ca.pem'}")
        assert sink_stats(summary)["published"] == 25
        assert server.client().xlen("detstream:b.mp4") == 25
        with pytest.raises(RedisSetupError) as info:  # the system CAs do not know our CA
            run_to_redis([videos["b"]], base)
        assert "TLS handshake failed" in str(info.value) and "tls-pw" not in str(info.value)
    finally:
        server.stop()
