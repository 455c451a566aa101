"""Regions of interest: detections whose anchor lies outside every ROI polygon are dropped."""

from __future__ import annotations

import json

from pipeline.core.config import load_config
from pipeline.run.runner import run
from support import BlobEngine


def test_only_detections_inside_the_roi_are_kept(tmp_path, videos):
    # the left half of video b (320x180): red starts there and leaves it, blue wraps around
    roi = {"name": "left", "points": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], "coordinates": "normalized"}
    out = tmp_path / "out.jsonl"
    config = load_config(None, {"sources": [{"uri": str(videos["b"]), "roi": [roi]}], "sinks": [f"jsonl:{out}"]})
    assert run(config, BlobEngine()).exit_code == 0
    detections = [d for line in out.read_text().splitlines() for d in json.loads(line)["detections"]]
    anchors = [(d["box"][0] + d["box"][2]) / 2 for d in detections]
    assert detections and all(x < 160 for x in anchors)
    full = tmp_path / "full.jsonl"
    run(load_config(None, {"sources": [str(videos["b"])], "sinks": [f"jsonl:{full}"]}), BlobEngine())
    everything = [d for line in full.read_text().splitlines() for d in json.loads(line)["detections"]]
    assert len(detections) == sum((d["box"][0] + d["box"][2]) / 2 < 160 for d in everything) < len(everything)
