"""`make demo` on its default engine against PyTorch, in one run: configs/demo.yaml with
`engine: auto` (the model file's ONNX Runtime package, from the cache) and with
`engine: torch`, alternating (auto, torch, auto, ...) so that a noisy neighbour slows
both alike; the medians of frames/s and their ratio.

The package cache is a fresh folder: the package is exported into it first, timed on
its own (`export_s`, what the first `make demo` on a new machine pays once), so every
measured auto run finds it there. Each run loads its engine as `detstream run` does
(load time reported), then runs the demo config, its sinks writing into a temporary
folder, on the first N frames of the video (default: all, as `make demo` does).

    .venv/bin/python -m bench.backends [--config configs/demo.yaml] [--video data/demo.mp4] [--rounds 3] [--frames N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import DEMO_VIDEO, REPO, ensure_video, machine, print_result, run_fps

if TYPE_CHECKING:
    from pipeline.core.config import RunConfig

DEMO_CONFIG = REPO / "configs" / "demo.yaml"
ENGINES = ("auto", "torch")


def demo_config(config: Path, video: Path, engine: str, frames: int | None, out: Path) -> RunConfig:
    """`config` on `video` with `engine`, its file sinks writing into `out` instead."""
    from pipeline.core.config import load_config

    sinks = [f"{kind}:{out / Path(path).name}" for kind, _, path in (uri.partition(":") for uri in load_config(config).sinks)]
    return load_config(config, {"sources": [str(video)], "sinks": sinks, "model.engine": engine, "max_frames": frames})


@contextmanager
def fresh_cache(folder: Path) -> Iterator[None]:
    """Point the package cache (DETSTREAM_CACHE) at `folder` for the duration."""
    before = os.environ.get("DETSTREAM_CACHE")
    os.environ["DETSTREAM_CACHE"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ["DETSTREAM_CACHE"]
        else:
            os.environ["DETSTREAM_CACHE"] = before


def export_seconds(spec: str) -> float:
    """Export `spec`'s package into the (empty) cache, as the first auto run does."""
    from engines.model_file import load_model
    from engines.package_cache import cached_package

    model, info = load_model(spec)
    started = time.perf_counter()
    package = cached_package(spec, model, info)
    elapsed = time.perf_counter() - started
    if not package.meta.get("cache"):
        raise SystemExit(f"{spec}: expected a cache entry, got {package.root}")
    return elapsed


def run_once(config: RunConfig) -> dict:
    """One `detstream run` of `config`: engine load time, what it ran on, frames/s."""
    from engines.loading import load_engine
    from pipeline.run.runner import run

    m = config.model
    started = time.perf_counter()
    engine = load_engine(m.path, m.device, m.score_threshold, m.threads, m.engine)
    load_s = time.perf_counter() - started
    summary = run(config, engine)
    return {"fps": run_fps(summary), "frames": summary.counts["postprocess"], "load_s": load_s,
            "ran_on": type(engine).__name__}


def measure(config: Path, video: Path, frames: int | None, rounds: int, workdir: Path) -> dict:
    """Export once into a fresh cache, then alternate runs of `config` on each engine."""
    fps: dict[str, list[float]] = {e: [] for e in ENGINES}
    load_s: dict[str, list[float]] = {e: [] for e in ENGINES}
    ran_on: dict[str, str] = {}
    ran = 0
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, fresh_cache(Path(tmp) / "cache"):
        configs = {e: demo_config(config, video, e, frames, Path(tmp)) for e in ENGINES}
        export_s = export_seconds(configs["auto"].model.path)
        for _ in range(rounds):
            for engine in ENGINES:
                result = run_once(configs[engine])
                fps[engine].append(result["fps"])
                load_s[engine].append(result["load_s"])
                ran_on[engine], ran = result["ran_on"], result["frames"]
    median = {e: statistics.median(fps[e]) for e in ENGINES}
    return {
        "config": str(config),
        "model": configs["auto"].model.path,
        "video": str(video),
        "frames": ran,
        "batch": configs["auto"].batch.max_batch,
        "sinks": [uri.partition(":")[0] for uri in configs["auto"].sinks],
        "rounds": rounds,
        "export_s": round(export_s, 2),
        "ran_on": ran_on,
        "fps_runs": {e: [round(v, 2) for v in fps[e]] for e in ENGINES},
        "fps_median": {e: round(v, 2) for e, v in median.items()},
        "load_s_median": {e: round(statistics.median(load_s[e]), 2) for e in ENGINES},
        "ratio_auto_over_torch": round(median["auto"] / median["torch"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEMO_CONFIG)
    parser.add_argument("--video", type=Path, default=DEMO_VIDEO)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, help="first N frames of the video (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.config, args.video, args.frames, args.rounds, Path(tmp))
    print_result({"machine": machine(), **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
