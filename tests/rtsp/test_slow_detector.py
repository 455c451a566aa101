"""A detector slower than the camera: frames are dropped, never queued without bound, and
every frame is accounted for: received = processed + dropped (by cause)."""

from __future__ import annotations

import json

from pipeline.core.config import load_config
from rtsp_support import BackgroundRun
from support import BlobEngine

MAX_AGE_MS = 600.0


def test_slow_detector_drops_are_counted_exactly(tmp_path, rtsp_server):
    server = rtsp_server()
    out = tmp_path / "out.jsonl"
    source = {"uri": server.url(), "name": "cam", "max_age_ms": MAX_AGE_MS}
    config = load_config(None, {"sources": [source], "sinks": [f"jsonl:{out}"]})
    run = BackgroundRun(config, BlobEngine(delay_s=0.25))  # 4 frames/s against 25
    run.wait_for(lambda: run.health("cam")["received"] >= 100, 30, "100 camera frames")
    summary = run.stop()

    health = summary.health["cam"]
    dropped = sum(health["dropped"].values())
    assert health["dropped"].get("queue_full", 0) > 0
    assert health["received"] == health["processed"] + dropped
    assert health["processed"] == len(out.read_text().splitlines()) == summary.counts["detect"]
    assert 0 < health["max_age_ms"] <= MAX_AGE_MS
    seqs = [json.loads(line)["seq"] for line in out.read_text().splitlines()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
