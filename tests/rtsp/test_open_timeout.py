"""A server that accepts the TCP connection and never answers: the open times out with a
clear error, is retried, and the source fails only after its configured attempts."""

from __future__ import annotations

import logging

from pipeline.core.config import load_config
from rtsp_support import BackgroundRun, SilentListener
from support import BlobEngine


def test_silent_server_times_out_each_attempt_then_fails(tmp_path, caplog):
    listener = SilentListener()
    try:
        source = {"uri": f"rtsp://127.0.0.1:{listener.port}/cam", "name": "mute", "open_timeout_s": 1.0,
                  "reconnect": {"initial_s": 0.1, "max_attempts": 2}}
        config = load_config(None, {"sources": [source], "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"]})
        with caplog.at_level(logging.WARNING, logger="detstream"):
            summary = BackgroundRun(config, BlobEngine()).join(timeout=30)
    finally:
        listener.close()
    assert len(listener.accepted) == 2  # two real connection attempts reached the server
    assert summary.exit_code == 1
    assert summary.health["mute"]["state"] == "failed"
    assert summary.health["mute"]["failed_attempts"] == 2
    attempts = [r.getMessage() for r in caplog.records if "attempt 1 failed" in r.getMessage()]
    assert attempts and "no answer within open_timeout_s (1 s)" in attempts[0]
    assert "gave up after 2 attempts: no answer within open_timeout_s" in summary.source_errors["mute"]
