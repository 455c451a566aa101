"""One held-out frame through each rung's region step, for docs/ladder.md: what R-CNN and
Fast R-CNN classify (selective search boxes; Fast R-CNN's RoIPool snaps them to the
stride-8 feature grid), what Faster R-CNN classifies (its RPN's proposals), and what the
one-stage model scores without any proposals (its candidates before NMS).

    .venv/bin/python -m bench.ladder_pictures [--out docs/images/ladder-regions.jpg] [--shown 150]

Drawn on image 0 of the held-out split (bench/ladder.py's `test_split`); boxes are the
first `shown` of each source in its own ranking, ground truth in white.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from bench.common import REPO
from bench.ladder import RUNGS, test_split

STRIDE = 8  # the Fast R-CNN's feature map (engines/fast_rcnn.py FEATURE_STRIDE)
GREEN, ORANGE, BLUE, PURPLE, WHITE = (60, 200, 60), (255, 150, 30), (40, 120, 255), (190, 70, 220), (255, 255, 255)


def draw(image: np.ndarray, boxes: np.ndarray, colour: tuple[int, int, int], title: str, truth: np.ndarray) -> np.ndarray:
    panel = image.copy()
    for x1, y1, x2, y2 in boxes.round().astype(int):
        cv2.rectangle(panel, (x1, y1), (x2, y2), colour, 1)
    for x1, y1, x2, y2 in truth.round().astype(int):
        cv2.rectangle(panel, (x1, y1), (x2, y2), WHITE, 2)
    cv2.rectangle(panel, (0, 0), (panel.shape[1], 26), (0, 0, 0), -1)
    cv2.putText(panel, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, WHITE, 1, cv2.LINE_AA)
    return panel


def snapped(boxes: np.ndarray, scale: float) -> np.ndarray:
    """Boxes as RoIPool reads them: rounded to whole feature cells (in source pixels)."""
    step = STRIDE / scale
    return np.round(boxes / step) * step


def panels(data: Path, shown: int) -> list[np.ndarray]:
    from engines.inputs import Normalizer
    from engines.loading import load_engine
    from engines.proposals.recall import RpnProposer, dataset_truth
    from engines.selective_search import SelectiveSearch
    from engines.training.data import CocoDataset

    dataset = CocoDataset(data)
    image, truth = dataset.read_image(0), dataset_truth(dataset, 0)
    search = SelectiveSearch(mode="fast", max_side=500, top_n=2000)
    proposals = search(image)
    faster = load_engine("embedded:faster-compact-synth", backend="torch")
    scale = faster.info.input_size[1] / image.shape[1]
    out = [
        draw(image, proposals[:shown], GREEN, f"R-CNN: selective search, {shown} of {len(proposals)} boxes", truth),
        draw(image, snapped(proposals[:shown], scale), ORANGE, "Fast R-CNN RoIPool: the same boxes on the stride-8 grid",
             truth),
        draw(image, RpnProposer(faster, 150)(image)[:shown], BLUE, "Faster R-CNN: its RPN's proposals", truth),
    ]
    one_stage = REPO / next(r.model for r in RUNGS if r.name.startswith("RetinaNet"))
    if one_stage.is_file():
        engine = load_engine(str(one_stage), backend="torch", score_threshold=0.05)
        batch, (geometry,) = Normalizer(engine.info)([image])
        (raw,) = engine.infer(batch, [geometry.resized_size])
        boxes = geometry.to_source(raw.boxes[raw.scores.argsort(descending=True)][:shown].float()).numpy()
        out.append(draw(image, boxes, PURPLE, "one stage: its detections above 0.05, from anchors, no proposals", truth))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs/images/ladder-regions.jpg")
    parser.add_argument("--shown", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        images = panels(test_split(Path(workdir)), args.shown)
    rows = [np.hstack(images[i:i + 2]) for i in range(0, len(images) - 1, 2)]
    if len(images) % 2:
        rows.append(np.hstack([images[-1], np.zeros_like(images[-1])]))
    # JPEG: the scenes' sensor noise makes a PNG of them about a megabyte
    cv2.imwrite(str(args.out), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
