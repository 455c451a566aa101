"""Throughput of `detstream batch` with 1, 2 and 4 concurrent decoders, in one run.

A collection of synthetic 720p camera clips (generated once into data/bench-batch/) is
processed with each decoder count in turn, alternating over rounds so a change in the
machine's load hits every setting alike; the median frames/s of each and the ratios to
one decoder are printed. The default detector is a null engine (no detections, no
compute), which measures what the decoders can feed; `--model SPEC` runs a real model,
where the detector is usually the bottleneck and more decoders mostly keep it busy.

    .venv/bin/python bench/batch_decoders.py [--files 8] [--seconds 2] [--rounds 3] [--model SPEC]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from engines.base import ModelInfo
from pipeline.batch.config import load_batch_settings
from pipeline.batch.job import BatchJob
from pipeline.core.types import RawOutput
from synth.video import write_video

REPO = Path(__file__).resolve().parents[1]


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


def throughput(videos: Path, decoders: int, model: str | None, out: Path) -> float:
    from engines.loading import load_engine
    from pipeline.batch.manifest import model_checksum

    settings = load_batch_settings(None, {"decoders": decoders, **({"model.path": model} if model else {})})
    factory = (lambda: load_engine(model)) if model else NullEngine
    job = BatchJob([str(videos)], out, settings, factory, model_checksum(model) if model else "null", force=True)
    report = job.run()
    if report.exit_code:
        raise SystemExit(f"batch failed: {report.errors or report.files}")
    return report.frames / report.elapsed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each clip")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decoders", default="1,2,4")
    parser.add_argument("--model", help="a real model instead of the null engine, e.g. embedded:faster-compact-synth")
    args = parser.parse_args()
    videos = collection(REPO / "data" / "bench-batch", args.files, args.seconds)
    counts = [int(n) for n in args.decoders.split(",")]
    fps: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for n in counts:
                fps[n].append(throughput(videos, n, args.model, Path(tmp) / "out"))
                print(f"round {round_ + 1}: {n} decoders {fps[n][-1]:.1f} frames/s", file=sys.stderr)
    base = statistics.median(fps[counts[0]])
    print(f"{args.files} clips of 1280x720, {args.seconds:g} s each; engine: {args.model or 'null'}; "
          f"{os.cpu_count()} CPUs; median of {args.rounds} rounds")
    print("| decoders | frames/s | vs 1 |")
    print("|---|---|---|")
    for n in counts:
        median = statistics.median(fps[n])
        print(f"| {n} | {median:.1f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
