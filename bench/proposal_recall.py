"""Selective search against the default model's RPN (issue #19): recall at IoU 0.5 and 0.7
for 100 / 300 / 1000 / 2000 proposals, and seconds per image, on held-out synthetic images.

What `detstream proposals recall` measures (engines/proposals/recall.py), on images this
module generates: `detstream synth dataset` with seed 19301 (used by nothing else: not the
tests, the configs, the Makefile's training sets 1-3), 640x360, as the training sets are.
Selective search runs in fast mode on images resized to a longer side of 500 px (what the
R-CNN papers did with their images); the RPN is `embedded:faster-compact-synth` on
PyTorch with its post-NMS top-N raised to 2000 (it keeps 150 at test time). Both on 2
threads, one image at a time.

    .venv/bin/python -m bench.proposal_recall [--images 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.common import machine, print_result

SEED = 19301
WIDTH, HEIGHT = 640, 360
THREADS = 2
MAX_SIDE = 500


def measure(workdir: Path, images: int) -> dict:
    from engines.loading import load_engine
    from engines.proposals.recall import COUNTS, RpnProposer, dataset_samples, dataset_truth, measure, report_rows
    from engines.selective_search import SelectiveSearch
    from engines.training.data import CocoDataset
    from pipeline.core.config import DEFAULT_MODEL
    from synth.dataset import write_dataset

    folder = workdir / f"proposals-{SEED}"
    if not (folder / "annotations.json").exists():
        write_dataset(folder, seed=SEED, count=images, width=WIDTH, height=HEIGHT)
    dataset = CocoDataset(folder / "annotations.json")
    count = min(images, len(dataset))
    search = SelectiveSearch(mode="fast", max_side=MAX_SIDE, top_n=max(COUNTS), threads=THREADS)
    engine = load_engine(DEFAULT_MODEL, "cpu", backend="torch", threads=THREADS)
    reports = [
        measure("selective search, fast", search, dataset_samples(dataset, count)),
        measure(f"RPN of {DEFAULT_MODEL}", RpnProposer(engine, max(COUNTS)), dataset_samples(dataset, count)),
    ]
    return {
        "seed": SEED,
        "size": [WIDTH, HEIGHT],
        "images": count,
        "ground_truth_boxes": sum(len(dataset_truth(dataset, i)) for i in range(count)),
        "max_side": MAX_SIDE,
        "threads": THREADS,
        "counts": list(COUNTS),
        "sources": report_rows(reports),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proposal_recall", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp), args.images)
    print_result({"machine": machine(), **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
