"""ONNX Runtime against PyTorch end to end: `detstream run` frames/s on the 720p demo
video with the same engine package, in one run, and the ratio.

Runs alternate between the backends (torch, onnxruntime, torch, ...) so that a noisy
neighbour slows both alike; the medians and their ratio are printed. The detector alone
(preprocess + engine on pre-decoded frames) is timed the same way. (The engines section,
bench/engine_latency.py, times the engine calls alone, per batch size.)

    .venv/bin/python -m bench.backends [--model SPEC] [--video data/demo.mp4] [--rounds 3] [--frames N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import as_package, demo_arguments, detector_alone, ensure_video, machine, pipeline_fps, print_result

BACKENDS = ("torch", "onnxruntime")


def measure(package: str, video: Path, batch: int, frames: int | None, rounds: int) -> dict:
    """Medians of alternating runs per backend: the pipeline, then the detector alone on
    as many frames as the pipeline ran."""
    pipeline: dict[str, list[float]] = {b: [] for b in BACKENDS}
    alone: dict[str, list[float]] = {b: [] for b in BACKENDS}
    ran = 0
    for _ in range(rounds):
        for backend in BACKENDS:
            fps, ran = pipeline_fps(package, video, batch, backend, max_frames=frames)
            pipeline[backend].append(fps)
    for _ in range(rounds):
        for backend in BACKENDS:
            alone[backend].append(detector_alone(package, video, ran, batch, backend))
    median = {b: statistics.median(pipeline[b]) for b in BACKENDS}
    median_alone = {b: statistics.median(alone[b]) for b in BACKENDS}
    return {
        "video": str(video),
        "frames": ran,
        "batch": batch,
        "rounds": rounds,
        "pipeline_fps_runs": {b: [round(v, 2) for v in pipeline[b]] for b in BACKENDS},
        "pipeline_fps_median": {b: round(v, 2) for b, v in median.items()},
        "detector_alone_fps_median": {b: round(v, 2) for b, v in median_alone.items()},
        "ratio_onnxruntime_over_torch": round(median["onnxruntime"] / median["torch"], 3),
        "ratio_detector_alone": round(median_alone["onnxruntime"] / median_alone["torch"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    demo_arguments(parser)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, help="first N frames of the video (default: all)")
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        package = as_package(args.model, Path(tmp))
        result = measure(package, args.video, args.batch, args.frames, args.rounds)
    print_result({"machine": machine(), "model": args.model, **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
