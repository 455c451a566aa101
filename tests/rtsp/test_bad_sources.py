"""Wrong path and refused port: a clear error per attempt, credentials never shown, and
the good camera in the same run keeps streaming."""

from __future__ import annotations

import logging

from pipeline.core.config import load_config
from rtsp_support import BackgroundRun, free_port
from support import BlobEngine

FAST_RETRY = {"open_timeout_s": 2.0, "reconnect": {"initial_s": 0.1, "max_s": 0.3}}


def test_bad_cameras_retry_with_clear_errors_while_the_good_one_streams(tmp_path, rtsp_server, caplog):
    server = rtsp_server()
    sources = [
        {"uri": server.url(), "name": "good", **FAST_RETRY},
        {"uri": server.url("/nope", credentials="admin:hunter2@"), "name": "wrong-path", **FAST_RETRY},
        {"uri": f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/cam", "name": "refused", **FAST_RETRY},
    ]
    config = load_config(None, {"sources": sources, "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"]})
    with caplog.at_level(logging.INFO, logger="detstream"):
        run = BackgroundRun(config, BlobEngine())
        run.wait_for(
            lambda: run.health("good")["processed"] >= 30
            and run.health("wrong-path")["failed_attempts"] >= 3
            and run.health("refused")["failed_attempts"] >= 3,
            30, "frames from the good camera and retries of the bad ones",
        )
        summary = run.stop()
    assert summary.exit_code == 0  # retrying forever is not a failure
    assert summary.health["good"]["state"] == "finished" and summary.health["good"]["reconnects"] == 0
    log = caplog.text
    assert "hunter2" not in log and "hunter2" not in str(summary)
    for name, reason in (("wrong-path", "404 Not Found"), ("refused", "Connection refused")):
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"source '{name}': attempt")]
        assert len(lines) >= 3 and all(reason in line and "rtsp://admin:***@127.0.0.1" in line for line in lines), lines



def test_a_camera_that_never_connected_is_not_reported_ok(tmp_path):
    """A refused port needs no server: the summary says `never connected (N attempts: reason)`."""
    from io import StringIO

    from rich.console import Console

    from pipeline.cli import print_sources

    sources = [{"uri": f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/cam", "name": "refused", **FAST_RETRY}]
    config = load_config(None, {"sources": sources, "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"]})
    run = BackgroundRun(config, BlobEngine())
    run.wait_for(lambda: run.health("refused")["failed_attempts"] >= 2, 30, "two refused attempts")
    summary = run.stop()
    assert summary.health["refused"]["ever_connected"] is False
    out = StringIO()
    print_sources(summary, Console(file=out, width=300))
    first = out.getvalue().splitlines()[0]
    attempts = summary.health["refused"]["failed_attempts"]
    assert first.startswith(f"source 'refused': never connected ({attempts} attempts: cannot open rtsp://admin:***@"), first
    assert first.endswith("Connection refused)") and "hunter2" not in out.getvalue(), first


def test_a_wrong_password_fails_each_attempt_with_401_and_the_right_one_streams(tmp_path, rtsp_server, caplog):
    server = rtsp_server(user="viewer", password="s3cret-pw")
    sources = [
        {"uri": server.url(credentials="viewer:s3cret-pw@"), "name": "right", **FAST_RETRY},
        {"uri": server.url(credentials="viewer:wrong-pw@"), "name": "wrong", **FAST_RETRY},
        {"uri": server.url(), "name": "none", **FAST_RETRY},
    ]
    config = load_config(None, {"sources": sources, "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"]})
    with caplog.at_level(logging.INFO, logger="detstream"):
        run = BackgroundRun(config, BlobEngine())
        run.wait_for(
            lambda: run.health("right")["processed"] >= 10
            and run.health("wrong")["failed_attempts"] >= 3 and run.health("none")["failed_attempts"] >= 3,
            30, "frames with the right password and retries with the wrong one",
        )
        summary = run.stop()
    assert summary.exit_code == 0 and summary.health["right"]["reconnects"] == 0
    assert summary.health["wrong"]["ever_connected"] is False
    assert "s3cret-pw" not in caplog.text and "wrong-pw" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("source 'wrong': attempt")]
    assert len(lines) >= 3 and all("401 Unauthorized" in line for line in lines), lines
