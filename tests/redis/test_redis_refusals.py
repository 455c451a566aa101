"""A Redis server that refuses writes (issue #21, item 5): NOAUTH, OOM and READONLY. Each is
reported in one clear line, the frames are still processed (the other sinks get every
message, the Redis ones wait in the spool), and no password is shown."""

from __future__ import annotations

import logging

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import RedisSetupError
from pipeline.run.runner import run
from redis_support import RedisServer
from support import BlobEngine

FRAMES = 25  # videos["b"]


def _run(tmp_path, videos, url):
    out = tmp_path / "out.jsonl"
    config = load_config(None, {"sources": [str(videos["b"])], "sinks": [f"jsonl:{out}", url], "shutdown_timeout_s": 2})
    summary = run(config, BlobEngine())
    return summary, len(out.read_text().splitlines())


def test_noauth_fails_at_start_in_one_line_without_the_password(tmp_path, videos):
    server = RedisServer(tmp_path / "redis", password="S3cretRedis").start()
    try:
        url = f"redis://127.0.0.1:{server.port}/0"  # no password: the server answers NOAUTH
        with pytest.raises(RedisSetupError, match="authentication failed") as caught:
            _run(tmp_path, videos, url)
        assert "\n" not in str(caught.value) and "S3cretRedis" not in str(caught.value)
    finally:
        server.stop()


@pytest.mark.parametrize("refusal, said", [("OOM", "used memory > 'maxmemory'"), ("READONLY", "read only replica")])
def test_refused_writes_are_reported_once_and_spooled(tmp_path, videos, caplog, monkeypatch, refusal, said):
    monkeypatch.setenv("DETSTREAM_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="detstream")
    primary = RedisServer(tmp_path / "primary", password="S3cretRedis").start()
    replica = None
    try:
        if refusal == "OOM":
            primary.client().config_set("maxmemory-policy", "noeviction")
            primary.client().config_set("maxmemory", "1")  # every write is over the limit
            target = primary
        else:
            replica = RedisServer(tmp_path / "replica", password="S3cretRedis").start()
            replica.client().replicaof("127.0.0.1", primary.port)  # a replica refuses writes: READONLY
            target = replica
        summary, frames = _run(tmp_path, videos, target.url)
        assert frames == FRAMES  # the jsonl sink got every message
        texts = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        refused = [t for t in texts if said in t]  # redis-py drops the OOM / READONLY prefix, keeps the reason
        assert len(refused) == 1 and "cannot deliver" in refused[0] and "spool" in refused[0], texts
        assert not any("S3cretRedis" in t for t in texts)
        (stats,) = summary.sink_stats.values()
        assert stats["published"] == 0 and stats["left in spool"] == stats["spooled"] >= FRAMES
        assert list((tmp_path / "cache" / "spool").rglob("*")), "the refused messages wait in the spool"
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()
