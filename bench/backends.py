"""ONNX Runtime against PyTorch: `detstream run` frames/s on the 720p demo video with the
same engine package, in one run, and the ratio.

Runs alternate between the backends (torch, onnxruntime, torch, ...) so that a noisy
neighbour slows both alike; the medians and their ratio are printed. The detector alone
(preprocess + engine on pre-decoded frames) is timed the same way.

    .venv/bin/python bench/backends.py [--model SPEC] [--video data/demo.mp4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from demo_fps import as_package, demo_arguments, detector_alone, ensure_video, machine, pipeline_fps, report

BACKENDS = ("torch", "onnxruntime")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    demo_arguments(parser)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        package = as_package(args.model, Path(tmp))
        pipeline: dict[str, list[float]] = {b: [] for b in BACKENDS}
        alone: dict[str, list[float]] = {b: [] for b in BACKENDS}
        frames = 0
        for _ in range(args.repeats):
            for backend in BACKENDS:
                fps, frames = pipeline_fps(package, args.video, args.batch, backend)
                pipeline[backend].append(fps)
        for _ in range(args.repeats):
            for backend in BACKENDS:
                alone[backend].append(detector_alone(package, args.video, frames, args.batch, backend))
    median = {b: statistics.median(pipeline[b]) for b in BACKENDS}
    median_alone = {b: statistics.median(alone[b]) for b in BACKENDS}
    result = {
        "machine": machine(),
        "model": args.model,
        "video": str(args.video),
        "frames": frames,
        "batch": args.batch,
        "pipeline_fps_runs": {b: [round(v, 2) for v in pipeline[b]] for b in BACKENDS},
        "pipeline_fps_median": {b: round(v, 2) for b, v in median.items()},
        "detector_alone_fps_median": {b: round(v, 2) for b, v in median_alone.items()},
        "ratio_onnxruntime_over_torch": round(median["onnxruntime"] / median["torch"], 3),
        "ratio_detector_alone": round(median_alone["onnxruntime"] / median_alone["torch"], 3),
    }
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
