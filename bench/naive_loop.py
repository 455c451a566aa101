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
from typing import TextIO

import cv2
import numpy as np

from demo_fps import as_package, demo_arguments, ensure_video, machine, pipeline_fps, report
from engines.base import Engine
from engines.loading import load_engine
from pipeline.core.messages import to_message
from pipeline.core.types import Frame
from engines.outputs import Selection, finish_frame
from engines.inputs import Normalizer


class NaiveDetector:
    """The user's detection code, called on each frame (or on one frame per camera): normalize,
    infer, select, one JSON line per frame. Same pre- and postprocessing as the pipeline."""

    def __init__(self, engine: Engine, out: TextIO) -> None:
        self.engine = engine
        self.normalize = Normalizer(engine.info)
        self.selection = Selection(engine.info.score_threshold, 0.5, 100)
        self.out = out

    def __call__(self, frames: list[Frame]) -> None:
        batch, geometry = self.normalize([f.image for f in frames])
        raws = self.engine.infer(batch, [g.resized_size for g in geometry])
        for frame, frame_geometry, raw in zip(frames, geometry, raws):
            detections = finish_frame(frame, frame_geometry, raw, self.selection, self.engine.info.class_names)
            self.out.write(json.dumps(to_message(detections, self.engine.info.name)) + "\n")


def read_rgb(capture: cv2.VideoCapture) -> np.ndarray | None:
    ok, bgr = capture.read()
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None


def naive_fps(package: str, video: Path, out: Path, max_frames: int | None = None) -> tuple[float, int]:
    """Decode, detect, write; one frame at a time, nothing overlapped."""
    engine = load_engine(package)
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    frames = 0
    with out.open("w") as file:
        detect = NaiveDetector(engine, file)
        while (max_frames is None or frames < max_frames) and (image := read_rgb(capture)) is not None:
            detect([Frame(source="naive", seq=frames, pts=0.0, capture_ts=time.time(), image=image)])
            frames += 1
    capture.release()
    return frames / (time.perf_counter() - started), frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    demo_arguments(parser)
    parser.add_argument("--batch", type=int, default=2, help="detstream's max_batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        package = as_package(args.model, Path(tmp))
        engine_name = type(load_engine(package)).__name__  # the one both sides use
        naive, ours = [], []
        for _ in range(args.repeats):
            naive.append(naive_fps(package, args.video, Path(tmp) / "naive.jsonl"))
            ours.append(pipeline_fps(package, args.video, args.batch, sinks=(f"jsonl:{Path(tmp) / 'detstream.jsonl'}",)))
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
