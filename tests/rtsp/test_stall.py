"""A camera that stops sending while its TCP connection stays up (the server process is
SIGSTOPped): the stall is detected within the read timeout, and the source recovers."""

from __future__ import annotations

import time

from pipeline.core.config import load_config
from rtsp_support import BackgroundRun
from support import BlobEngine

READ_TIMEOUT_S = 1.5
# the watchdog ticks every 50 ms and this test polls every 10 ms; a loaded CI box adds a little
DETECTION_SLACK_S = 0.5


def test_stall_is_detected_within_the_read_timeout_and_recovers(tmp_path, rtsp_server):
    server = rtsp_server()
    source = {"uri": server.url(), "name": "cam", "open_timeout_s": 2.0, "read_timeout_s": READ_TIMEOUT_S,
              "reconnect": {"initial_s": 0.2, "max_s": 1.0}}
    config = load_config(None, {"sources": [source], "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"]})
    run = BackgroundRun(config, BlobEngine())
    run.wait_for(lambda: run.health("cam")["processed"] >= 10, 30, "first frames")

    server.pause()
    paused = time.monotonic()
    # frames already in the socket buffers still arrive after SIGSTOP: the clock starts
    # at the last frame that came in
    last_count, last_frame_at = -1, paused
    while (health := run.health("cam"))["state"] != "stalled":
        if health["received"] != last_count:
            last_count, last_frame_at = health["received"], time.monotonic()
        assert time.monotonic() - paused < 15, f"no stall detected: {health}"
        time.sleep(0.01)
    assert time.monotonic() - last_frame_at <= READ_TIMEOUT_S + DETECTION_SLACK_S
    assert run.health("cam")["stalls"] == 1

    time.sleep(max(0.0, paused + READ_TIMEOUT_S + 0.5 - time.monotonic()))
    server.resume()
    before = run.health("cam")["processed"]
    run.wait_for(
        lambda: run.health("cam")["state"] == "streaming" and run.health("cam")["processed"] >= before + 20,
        30, "frames after SIGCONT",
    )
    summary = run.stop()
    health = summary.health["cam"]
    assert health["stalls"] >= 1
    assert health["received"] == health["processed"] + sum(health["dropped"].values())
