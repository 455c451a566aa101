"""End-to-end frames/s of `detstream run` on the 720p demo video, with the default model.

Also times the detector alone on the same frames, pre-decoded, so the report shows how
close the pipeline gets to its bottleneck. Ratios come from one run on one machine.

    .venv/bin/python bench/demo_fps.py [--model SPEC] [--video data/demo.mp4] [--target 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import av
import torch

from engines.base import Engine
from engines.export import export_package
from engines.loading import load_engine
from pipeline.core.config import DEFAULT_MODEL, load_config
from pipeline.run.runner import RunSummary, run
from engines.inputs import Normalizer

REPO = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def ensure_video(video: Path) -> None:
    """The demo video, generated as `make demo` does if it is not there yet."""
    if not video.exists():
        subprocess.run([sys.executable, "-m", "synth", "video", str(video), "--seed", "7",
                        "--size", "1280x720", "--fps", "25", "--seconds", "10"], check=True)


def machine() -> dict:
    """What every report says it ran on."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def as_package(model: str, workdir: Path) -> str:
    """`model` itself if it is an engine package, else its export into `workdir` (exported
    once per model and workdir, so the sections of one run share it)."""
    if (Path(model) / "package.json").exists():
        return model
    folder = workdir / ("package-" + model.replace(":", "-").replace("/", "-"))
    if (folder / "package.json").exists():
        return str(folder)
    return str(export_package(model, folder).root)


def demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every demo-video benchmark takes: --model, --video, --json."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model to export (or an engine package)")
    parser.add_argument("--video", type=Path, default=REPO / "data/demo.mp4")
    parser.add_argument("--json", type=Path, help="also write the results here")


def run_fps(summary: RunSummary) -> float:
    """Frames/s of a finished run; a failed run is an error, not a number."""
    if summary.exit_code:
        raise SystemExit(f"detstream run failed: {summary.source_errors or summary.stage_errors}")
    return summary.counts["postprocess"] / summary.elapsed_s


def report(result: dict, path: Path | None) -> None:
    """Print the result as JSON, and write it to `path` too when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")


def detector_alone(model: str, video: Path, frames: int, batch: int, backend: str = "auto") -> float:
    """Frames/s of preprocess + engine on frames decoded beforehand."""
    return detector_and_engine_alone(model, video, frames, batch, backend)[0]


def detector_and_engine_alone(model: str, video: Path, frames: int, batch: int, backend: str = "auto") -> tuple[float, float]:
    """Frames/s of preprocess + engine in series on frames decoded beforehand, and frames/s
    of the engine calls alone in that same loop (the pipeline's bottleneck stage)."""
    engine = load_engine(model, backend=backend)
    normalize = Normalizer(engine.info)
    with av.open(str(video)) as container:
        images = [f.to_ndarray(format="rgb24") for _, f in zip(range(frames), container.decode(video=0))]
    engine.infer(*_prepared(normalize, images[:batch]))  # warm-up
    in_engine = 0.0
    started = time.perf_counter()
    for first in range(0, len(images), batch):
        prepared = _prepared(normalize, images[first : first + batch])
        called = time.perf_counter()
        engine.infer(*prepared)
        in_engine += time.perf_counter() - called
    return len(images) / (time.perf_counter() - started), len(images) / in_engine


def _prepared(normalize: Normalizer, images: list) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    batch, geometry = normalize(images)
    return batch, [g.resized_size for g in geometry]


def pipeline_run(
    model: str,
    videos: list[Path],
    batch: int,
    backend: str = "auto",
    sinks: tuple[str, ...] = (),
    max_frames: int | None = None,
    engine: Engine | None = None,
) -> RunSummary:
    """`detstream run` on `videos`; `engine` (already loaded) is used instead of `model`."""
    overrides = {"sources": [str(v) for v in videos], "model.path": model, "model.engine": backend,
                 "batch.max_batch": batch, "sinks": list(sinks), "max_frames": max_frames}
    summary = run(load_config(None, overrides), engine)
    if summary.exit_code:
        raise SystemExit(f"detstream run failed: {summary.source_errors or summary.stage_errors}")
    return summary


def pipeline_fps(model: str, video: Path, batch: int, backend: str = "auto", sinks: tuple[str, ...] = (),
                 max_frames: int | None = None) -> tuple[float, int]:
    summary = pipeline_run(model, [video], batch, backend, sinks, max_frames)
    return run_fps(summary), summary.counts["postprocess"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    demo_arguments(parser)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=5.0, help="frames/s the pipeline must reach")
    args = parser.parse_args()
    ensure_video(args.video)
    runs = [pipeline_fps(args.model, args.video, args.batch) for _ in range(args.repeats)]
    frames = runs[0][1]
    pipeline = statistics.median(fps for fps, _ in runs)
    alone = statistics.median(detector_alone(args.model, args.video, frames, args.batch) for _ in range(args.repeats))
    result = {
        "machine": machine(),
        "model": args.model,
        "video": str(args.video),
        "frames": frames,
        "batch": args.batch,
        "pipeline_fps_median": round(pipeline, 2),
        "pipeline_fps_runs": [round(fps, 2) for fps, _ in runs],
        "detector_alone_fps_median": round(alone, 2),
        "efficiency": round(pipeline / alone, 3),
        "target_fps": args.target,
        "meets_target": pipeline >= args.target,
    }
    report(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
