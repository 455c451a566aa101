"""`detstream run` against the loop a user would write without it: OpenCV VideoCapture ->
model -> one JSON line per frame, sequential, with the same engine (same package, same
backend, same pre- and postprocessing code). Frames/s of each, alternating runs, and the
speedup ratio from one run.

    .venv/bin/python bench/naive_loop.py [--model SPEC] [--video data/demo.mp4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

from demo_fps import REPO, as_package, ensure_video, machine, report
from engines.loading import load_engine
from pipeline.config import DEFAULT_MODEL, load_config
from pipeline.messages import to_message
from pipeline.runner import run
from pipeline.types import Frame
from stages.postprocess import Selection, finish_frame
from stages.preprocess import Normalizer


def naive_fps(package: str, video: Path, out: Path) -> tuple[float, int]:
    """Decode, detect, write; one frame at a time, nothing overlapped."""
    engine = load_engine(package)
    normalize = Normalizer(engine.info)
    selection = Selection(engine.info.score_threshold, 0.5, 100)
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    frames = 0
    with out.open("w") as file:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            batch, geometry = normalize([image])
            raw = engine.infer(batch, [geometry[0].resized_size])[0]
            frame = Frame(source="naive", seq=frames, pts=0.0, capture_ts=time.time(), image=image)
            detections = finish_frame(frame, geometry[0], raw, selection, engine.info.class_names)
            file.write(json.dumps(to_message(detections, engine.info.name)) + "\n")
            frames += 1
    capture.release()
    return frames / (time.perf_counter() - started), frames


def detstream_fps(package: str, video: Path, out: Path, batch: int) -> tuple[float, int]:
    config = load_config(None, {"sources": [str(video)], "model.path": package, "batch.max_batch": batch,
                                "sinks": [f"jsonl:{out}"]})
    summary = run(config)
    frames = summary.counts["postprocess"]
    return frames / summary.elapsed_s, frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model to export (or an engine package)")
    parser.add_argument("--video", type=Path, default=REPO / "data/demo.mp4")
    parser.add_argument("--batch", type=int, default=2, help="detstream's max_batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        package = as_package(args.model, Path(tmp))
        engine_name = type(load_engine(package)).__name__  # the one both sides use
        naive, ours = [], []
        for _ in range(args.repeats):
            naive.append(naive_fps(package, args.video, Path(tmp) / "naive.jsonl"))
            ours.append(detstream_fps(package, args.video, Path(tmp) / "detstream.jsonl", args.batch))
    if {n for _, n in naive} != {n for _, n in ours}:
        raise SystemExit(f"frame counts differ: naive {naive}, detstream {ours}")
    naive_median = statistics.median(fps for fps, _ in naive)
    ours_median = statistics.median(fps for fps, _ in ours)
    result = {
        "machine": machine(),
        "model": args.model,
        "engine": engine_name,
        "video": str(args.video),
        "frames": ours[0][1],
        "naive_fps_runs": [round(f, 2) for f, _ in naive],
        "detstream_fps_runs": [round(f, 2) for f, _ in ours],
        "naive_fps_median": round(naive_median, 2),
        "detstream_fps_median": round(ours_median, 2),
        "speedup": round(ours_median / naive_median, 3),
    }
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
