"""Scaling: `detstream run` throughput (frames/s, all sources together) with 1, 2 and 4
file sources and max batch 1, 2, 4 and 8, on the default model's engine package; and
`detstream batch` with 1, 2 and 4 concurrent decoders on a collection of synthetic 720p
clips (generated once into data/), with a null detector (no detections, no compute), so
it shows what the decoders can feed.

Every source is the 720p demo video, cut to the same total number of frames per run
(`--frames` split evenly over the sources). The engine is loaded once; the grid is walked
in alternating rounds and the median of each cell is printed.

    .venv/bin/python -m bench.scaling [--frames 24] [--rounds 2] [--clips 4 --clip-seconds 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from bench.common import REPO, as_package, demo_arguments, ensure_video, machine, pipeline_run, print_result, run_fps
from engines.base import ModelInfo
from engines.loading import load_engine
from pipeline.batch.config import load_batch_settings
from pipeline.batch.job import BatchJob
from pipeline.core.types import RawOutput
from synth.video import write_video

SOURCES = (1, 2, 4)
BATCHES = (1, 2, 4, 8)
DECODERS = (1, 2, 4)


def grid(package: str, video: Path, frames: int, rounds: int) -> dict:
    engine = load_engine(package)
    fps: dict[tuple[int, int], list[float]] = {(s, b): [] for s in SOURCES for b in BATCHES}
    for _ in range(rounds):
        for sources, batch in fps:
            summary = pipeline_run(package, [video] * sources, batch, max_frames=frames // sources, engine=engine)
            fps[(sources, batch)].append(run_fps(summary))
    return {
        "engine": type(engine).__name__,
        "frames_per_run": frames,
        "rows": [{"sources": s, "batch": b, "fps_median": round(statistics.median(v), 2), "fps_runs": [round(x, 2) for x in v]}
                 for (s, b), v in fps.items()],
    }


class NullEngine:
    """Finds nothing, instantly: the pipeline's speed without a detector."""

    info = ModelInfo(name="null", architecture="null", class_names=("__background__",), input_size=(320, 576))

    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[RawOutput]:
        empty = RawOutput(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), None)
        return [empty for _ in image_sizes]


def collection(folder: Path, files: int, seconds: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        path = folder / f"clip{i:02d}.mp4"
        if not path.exists():
            print(f"generating {path}", file=sys.stderr)
            write_video(path, seed=100 + i, width=1280, height=720, fps=25, seconds=seconds)
            path.with_suffix(".json").unlink(missing_ok=True)  # ground truth not needed here
    return folder


def throughput(videos: Path, decoders: int, out: Path) -> float:
    """`detstream batch` frames/s over the collection with the null engine."""
    settings = load_batch_settings(None, {"decoders": decoders})
    job = BatchJob([str(videos)], out, settings, NullEngine, "null", force=True)
    report = job.run()
    if report.exit_code:
        raise SystemExit(f"batch failed: {report.errors or report.files}")
    return report.frames / report.elapsed_s


def decoders(clips: int, seconds: float, rounds: int, workdir: Path) -> dict:
    folder = collection(REPO / "data" / f"bench-batch-{clips}x{seconds:g}s", clips, seconds)
    fps: dict[int, list[float]] = {n: [] for n in DECODERS}
    for _ in range(rounds):
        for n in DECODERS:
            fps[n].append(throughput(folder, n, workdir / "batch-out"))
    base = statistics.median(fps[DECODERS[0]])
    return {
        "collection": f"{clips} clips of 1280x720, {seconds:g} s each, 25 fps",
        "engine": "null (no detector work)",
        "rows": [{"decoders": n, "fps_median": round(statistics.median(v), 2), "vs_1": round(statistics.median(v) / base, 2),
                  "fps_runs": [round(x, 2) for x in v]} for n, v in fps.items()],
    }


def measure(package: str, video: Path, frames: int, rounds: int, clips: int, clip_seconds: float, workdir: Path) -> dict:
    return {"video": str(video), "rounds": rounds, "grid": grid(package, video, frames, rounds),
            "batch_decoders": decoders(clips, clip_seconds, rounds, workdir)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    demo_arguments(parser)
    parser.add_argument("--frames", type=int, default=24, help="frames per run, split over the sources")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clips", type=int, default=4, help="files in the batch collection")
    parser.add_argument("--clip-seconds", type=float, default=1.0)
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        package = as_package(args.model, Path(tmp))
        result = measure(package, args.video, args.frames, args.rounds, args.clips, args.clip_seconds, Path(tmp))
    print_result({"machine": machine(), "model": args.model, **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
