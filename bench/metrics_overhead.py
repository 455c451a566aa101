"""What metrics and tracing cost: `detstream run` frames/s on the 720p demo video with
them off (`metrics.enabled: false`) and on as `detstream profile` has them (metrics,
per-frame trace spans, the 0.5 s timeline sampler), and the ratio.

Runs alternate (off, on, off, ...) in one process with one loaded engine, after a
warm-up run, so a noisy neighbour slows both alike; the medians and their ratio are
printed. The target: metrics-on costs less than 3 %.

    .venv/bin/python -m bench.metrics_overhead [--model SPEC] [--video data/demo.mp4] [--rounds 3] [--frames N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import demo_arguments, ensure_video, machine, print_result, run_fps
from engines.base import Engine
from engines.loading import load_engine
from pipeline.core.config import RunConfig, load_config
from pipeline.profile.profile import profile
from pipeline.run.runner import run

TARGET_OVERHEAD = 0.03


def run_off(config: RunConfig, engine: Engine) -> float:
    return run_fps(run(config.model_copy(update={"metrics": config.metrics.model_copy(update={"enabled": False})}), engine))


def run_on(config: RunConfig, engine: Engine, out: Path) -> float:
    # elapsed_s covers the run only, not writing the report, chart and trace afterwards
    return run_fps(profile(config, out, engine=engine).summary)


def measure(model: str, video: Path, batch: int, frames: int | None, rounds: int, workdir: Path) -> dict:
    config = load_config(None, {
        "sources": [str(video)], "model.path": model, "batch.max_batch": batch,
        "max_frames": frames, "metrics.log_every_s": None,
    })
    engine = load_engine(model)
    runs: dict[str, list[float]] = {"off": [], "on": []}
    run_off(config, engine)  # warm-up: first-call costs of the engine and the decoder
    for round_ in range(rounds):
        runs["off"].append(run_off(config, engine))
        runs["on"].append(run_on(config, engine, workdir / f"prof{round_}"))
    median = {k: statistics.median(v) for k, v in runs.items()}
    ratio = median["on"] / median["off"]
    return {
        "video": str(video),
        "engine": type(engine).__name__,
        "frames": frames,
        "batch": batch,
        "rounds": rounds,
        "fps_runs": {k: [round(v, 2) for v in values] for k, values in runs.items()},
        "fps_median": {k: round(v, 2) for k, v in median.items()},
        "ratio_on_over_off": round(ratio, 4),
        "overhead": round(1 - ratio, 4),
        "target_overhead": TARGET_OVERHEAD,
        "meets_target": 1 - ratio < TARGET_OVERHEAD,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    demo_arguments(parser)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, help="frames per run (default: the whole video)")
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.model, args.video, args.batch, args.frames, args.rounds, Path(tmp))
    print_result({"machine": machine(), "model": args.model, **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
