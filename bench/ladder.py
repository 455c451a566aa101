"""The R-CNN ladder (issue #19): R-CNN, Fast R-CNN (RoIPool and RoIAlign), Faster R-CNN,
Mask R-CNN (its boxes) and a one-stage reference, measured side by side on one held-out
split, through `detstream eval`'s own path (engines/training/evaluate.py: preprocess,
proposals, engine, selection, pycocotools).

Rules:
- Data: the Makefile's held-out test split (`detstream synth dataset data/synth-test --seed 3
  --count 500 --size 640x360`, which no model trained on), its first `images` images.
- Every rung on PyTorch, batch 1, 2 threads, score floor 0.05 (COCO evaluation's usual),
  so the speed differences are the methods', not the backends'.
- Seconds per image: reading, preprocessing, proposals, the engine and selection, as a
  run does them (scoring excluded); proposal seconds: selective search's share.
- Training time is the model file's `train_seconds` (time in training steps, plus for
  R-CNN its SVM and regression stage); every rung but the Faster R-CNN starts from that
  Faster R-CNN's backbone (`init_from`), whose own training time the table names too.
- A rung whose model file is missing is listed as not available, never estimated.

    .venv/bin/python -m bench.ladder [--images 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO, machine, print_result

THREADS = 2
TEST_SEED, TEST_COUNT, WIDTH, HEIGHT = 3, 500, 640, 360  # the Makefile's SYNTH_TEST
SCORE_FLOOR = 0.05
# the papers' test-time seconds per image on a GPU (R-CNN ~47 s, Fast R-CNN ~2.3 s with
# selective search, Faster R-CNN ~0.2 s), as the issue quotes them
SEED_SECONDS = {"R-CNN": 47.0, "Fast R-CNN": 2.3, "Faster R-CNN": 0.2}


@dataclass(frozen=True)
class Rung:
    name: str
    family: str  # the paper it stands for: a key of SEED_SECONDS, or "" for the others
    model: str  # path of the model file, relative to the repository


RUNGS = (
    Rung("R-CNN", "R-CNN", "engines/embedded/rcnn-synth.pt"),
    Rung("Fast R-CNN, RoIPool", "Fast R-CNN", "engines/embedded/fast-rcnn-synth.pt"),
    Rung("Fast R-CNN, RoIAlign", "", "engines/embedded/fast-rcnn-align-synth.pt"),
    Rung("Faster R-CNN", "Faster R-CNN", "engines/embedded/faster-compact-synth.pt"),
    Rung("Mask R-CNN (boxes)", "", "engines/embedded/mask-compact-synth.pt"),
    Rung("RetinaNet (one stage)", "", "engines/embedded/retinanet-compact-synth.pt"),
)


def test_split(workdir: Path) -> Path:
    """The held-out split: data/synth-test when `make models` made it, else generated here alike."""
    from synth.dataset import write_dataset

    made = REPO / "data/synth-test/annotations.json"
    if made.is_file():
        return made
    folder = workdir / f"synth-test-{TEST_SEED}"
    if not (folder / "annotations.json").is_file():
        write_dataset(folder, seed=TEST_SEED, count=TEST_COUNT, width=WIDTH, height=HEIGHT)
    return folder / "annotations.json"


def measure_rung(rung: Rung, data: Path, images: int) -> dict:
    from engines.loading import load_engine
    from engines.model_file import read_info
    from engines.training.evaluate import evaluate

    path = REPO / rung.model
    row: dict = {"rung": rung.name, "family": rung.family, "model": rung.model}
    if not path.is_file():
        return {**row, "available": False}
    info = read_info(str(path))
    engine = load_engine(str(path), "cpu", score_threshold=SCORE_FLOOR, threads=THREADS, backend="torch")
    result = evaluate(engine, data, batch_size=1, score_threshold=SCORE_FLOOR, progress=False, limit=images)
    box = result["bbox"]
    return {
        **row,
        "available": True,
        "architecture": info.architecture,
        "images": result["images"],
        "AP": box["AP"],
        "AP50": box["AP50"],
        "VOC07": box["VOC07"],
        "seconds_per_image": result["seconds_per_image"],
        "proposal_seconds_per_image": round(result.get("proposal_seconds", 0.0) / max(1, result["images"]), 4),
        "train_seconds": info.extra.get("train_seconds"),
        "init_from": (info.extra.get("training") or {}).get("init_from"),
        "size_mb": round(path.stat().st_size / 1e6, 1),
    }


def speed_ratios(rows: list[dict]) -> list[dict]:
    """Seconds per image of each paper's rung over Faster R-CNN's: the seeds' and ours."""
    ours = {row["family"]: row["seconds_per_image"] for row in rows if row.get("available") and row["family"]}
    faster = ours.get("Faster R-CNN")
    out = []
    for family in ("R-CNN", "Fast R-CNN"):
        seed = SEED_SECONDS[family] / SEED_SECONDS["Faster R-CNN"]
        mine = None if faster is None or family not in ours else round(ours[family] / faster, 1)
        out.append({"rung": family, "seed_ratio": round(seed, 1), "our_ratio": mine})
    return out


def measure(workdir: Path, images: int) -> dict:
    data = test_split(workdir)
    rows = []
    for rung in RUNGS:
        print(f"ladder: {rung.name}", file=sys.stderr, flush=True)
        rows.append(measure_rung(rung, data, images))
    return {
        "data": str(data.relative_to(REPO)) if data.is_relative_to(REPO) else f"synth-test seed {TEST_SEED}",
        "images": images,
        "threads": THREADS,
        "score_floor": SCORE_FLOOR,
        "rows": rows,
        "ratios": speed_ratios(rows),
        "seed_seconds": SEED_SECONDS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100, help="held-out images evaluated per rung")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        result = {"machine": machine(), **measure(Path(workdir), args.images)}
    print_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
