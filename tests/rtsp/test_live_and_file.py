"""A camera and a file in one run: the file stays lossless, the camera latency-bounded,
and the detector batches frames of both."""

from __future__ import annotations

import json

from pipeline.core.config import load_config
from rtsp_support import BackgroundRun
from support import BlobEngine, write_video


def test_live_source_and_file_in_one_run(tmp_path, rtsp_server):
    server = rtsp_server()
    clip = write_video(tmp_path / "file.mp4", 120, 320, 180)
    out = tmp_path / "out.jsonl"
    sources = [{"uri": server.url(), "name": "cam"}, {"uri": str(clip), "name": "file"}]
    config = load_config(None, {"sources": sources, "sinks": [f"jsonl:{out}"], "batch": {"max_batch": 2, "max_wait_ms": 20}})
    # slow enough that the file (read as fast as possible) keeps the detector busy
    run = BackgroundRun(config, BlobEngine(delay_s=0.02))
    run.wait_for(lambda: run.health("file")["state"] == "finished" and run.health("cam")["processed"] >= 25,
                 60, "the file to finish and camera frames")
    summary = run.stop()

    messages = [json.loads(line) for line in out.read_text().splitlines()]
    from_file = [m["seq"] for m in messages if m["source"] == "file"]
    assert from_file == list(range(120))  # lossless, in order, even next to a live source
    assert summary.health["file"]["dropped"] == {} and summary.health["file"]["live"] is False
    cam = summary.health["cam"]
    assert cam["live"] is True and cam["processed"] == len([m for m in messages if m["source"] == "cam"])
    assert cam["received"] == cam["processed"] + sum(cam["dropped"].values())
    assert 2 in summary.batch_sizes  # frames of the two sources shared engine calls
