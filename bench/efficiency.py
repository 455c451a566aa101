"""Pipeline efficiency: `detstream run` frames/s on the demo video against (a) the detector
alone on the same frames decoded beforehand: preprocess + engine in series, and the
engine calls alone in that loop, the pipeline's bottleneck stage (efficiency = pipeline /
engine alone) and (b) the naive loop a user would write (OpenCV decode ->
model -> JSON line, sequential: speedup = pipeline / naive). One engine package, one
backend, the same batch for the pipeline and the detector alone; both write JSON lines.

Rounds alternate pipeline, detector alone, naive loop; medians are printed, with the
pipeline's per-stage latency (median ms from one stage's hand-off to the next, queue
waits included: where frames wait) and the batch sizes its detector ran.

    .venv/bin/python -m bench.efficiency [--model SPEC] [--frames 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.common import (
    as_package, demo_arguments, detector_and_engine_alone, ensure_video, machine, naive_fps, pipeline_run, print_result,
    run_fps,
)
from engines.loading import load_engine
from pipeline.core.messages import STAGES

TARGET_EFFICIENCY = 0.90  # of the detector alone
TARGET_SPEEDUP = 1.3  # over the naive loop


def stage_latency_ms(jsonl: Path) -> dict[str, float]:
    """Median per-stage latency over the messages of one run."""
    messages = [json.loads(line) for line in jsonl.read_text().splitlines()]
    stages = [s for s in (*STAGES, "total") if s in messages[0]["latency_ms"]]
    return {s: round(statistics.median(m["latency_ms"][s] for m in messages), 1) for s in stages}


def measure(package: str, video: Path, batch: int, frames: int, rounds: int, workdir: Path) -> dict:
    pipeline, alone, engine_alone, naive = [], [], [], []
    latency: list[dict[str, float]] = []
    batch_sizes: Counter[int] = Counter()
    out = workdir / "pipeline.jsonl"
    for _ in range(rounds):
        summary = pipeline_run(package, [video], batch, sinks=(f"jsonl:{out}",), max_frames=frames)
        pipeline.append(run_fps(summary))
        latency.append(stage_latency_ms(out))
        batch_sizes.update(summary.batch_sizes)
        with_preprocess, engine_only = detector_and_engine_alone(package, video, frames, batch)
        alone.append(with_preprocess)
        engine_alone.append(engine_only)
        naive.append(naive_fps(package, video, workdir / "naive.jsonl", frames)[0])
    runs = {"pipeline": pipeline, "detector_alone": alone, "engine_alone": engine_alone, "naive": naive}
    medians = {name: statistics.median(values) for name, values in runs.items()}
    return {
        "video": str(video),
        "frames": frames,
        "batch": batch,
        "engine": type(load_engine(package)).__name__,
        "rounds": rounds,
        "fps_median": {name: round(value, 2) for name, value in medians.items()},
        "fps_runs": {name: [round(v, 2) for v in values] for name, values in runs.items()},
        # the verdict uses the engine alone: the stricter bar (the pipeline's bottleneck stage)
        "efficiency": round(medians["pipeline"] / medians["engine_alone"], 3),
        "efficiency_vs_detector_with_preprocess": round(medians["pipeline"] / medians["detector_alone"], 3),
        "speedup_over_naive": round(medians["pipeline"] / medians["naive"], 3),
        "targets": {"efficiency": TARGET_EFFICIENCY, "speedup_over_naive": TARGET_SPEEDUP},
        "stage_latency_ms_median": {s: statistics.median(run[s] for run in latency) for s in latency[0]},
        "batch_sizes": dict(sorted(batch_sizes.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.efficiency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    demo_arguments(parser)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=100, help="first N frames of the video")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        package = as_package(args.model, Path(tmp))
        result = measure(package, args.video, args.batch, args.frames, args.rounds, Path(tmp))
    print_result({"machine": machine(), "model": args.model, **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
