"""Proposal recall against ground truth: how many objects a proposal source can still find.

Rules:
- Recall at N proposals and IoU t is the fraction of ground-truth boxes (all images
  pooled, crowd boxes left out) whose best IoU with any of the image's first N proposals
  is at least t. One proposal may cover several objects: this measures what the second
  stage could still find, not a detector's matching (as in Hosang et al.'s proposal study).
- An image with fewer than N proposals is measured with all it has; the report gives
  the mean number available, so a flat curve is not mistaken for a saturated one.
- Boxes are xyxy in source pixels on both sides; IoU is torchvision.ops.box_iou.
- The RPN is measured with its post-NMS top-N raised to the largest N (and its per-level
  pre-NMS top-N to at least that), since a detector keeps far fewer at test time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from engines.base import Engine
from engines.inputs import Normalizer
from engines.two_stage import TwoStageEngine
from pipeline.core.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from engines.training.data import CocoDataset

COUNTS = (100, 300, 1000, 2000)
IOUS = (0.5, 0.7)

Proposer = Callable[[np.ndarray], np.ndarray]  # RGB image -> N x 4 xyxy source-pixel boxes, best first


def best_ious(proposals: np.ndarray, truth: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """len(counts) x G: each ground-truth box's best IoU with the first N proposals."""
    if any(count < 1 for count in counts):
        raise ConfigError(f"proposal counts must be positive, got {list(counts)}")
    out = np.zeros((len(counts), len(truth)), np.float32)  # no proposals: best IoU 0
    if len(truth) and len(proposals):
        iou = box_iou(torch.as_tensor(proposals, dtype=torch.float32), torch.as_tensor(truth, dtype=torch.float32))
        for row, count in enumerate(counts):
            out[row] = iou[:count].max(dim=0).values.numpy()
    return out


def recall(best: list[np.ndarray], thresholds: Sequence[float]) -> np.ndarray:
    """len(counts) x len(thresholds) recall from the per-image `best_ious` arrays."""
    pooled = np.concatenate(best, axis=1) if best else np.zeros((0, 0), np.float32)
    if pooled.shape[1] == 0:
        raise ConfigError("proposal recall: the images have no (non-crowd) ground-truth boxes")
    return np.stack([(pooled >= t).mean(axis=1) for t in thresholds], axis=1)


@dataclass
class RecallReport:
    """Recall of one proposal source; `recall[i, j]` is at counts[i] and ious[j]."""

    name: str
    counts: tuple[int, ...]
    ious: tuple[float, ...]
    recall: np.ndarray
    mean_proposals: float
    seconds_per_image: float


def measure(
    name: str,
    proposer: Proposer,
    samples: Iterable[tuple[np.ndarray, np.ndarray]],
    counts: Sequence[int] = COUNTS,
    ious: Sequence[float] = IOUS,
) -> RecallReport:
    """Run `proposer` on each (RGB image, G x 4 xyxy ground truth) and measure its recall.
    Images are taken one at a time: a large set need not fit in memory."""
    best, available, seconds = [], [], 0.0
    for image, truth in samples:
        start = time.perf_counter()
        boxes = proposer(image)
        seconds += time.perf_counter() - start
        available.append(len(boxes))
        best.append(best_ious(boxes, truth, counts))
    return RecallReport(
        name,
        tuple(counts),
        tuple(ious),
        recall(best, ious),
        float(np.mean(available)) if available else 0.0,
        seconds / max(1, len(available)),
    )


class RpnProposer:
    """A two-stage engine's RPN as a `Proposer`: letterboxed like `run`, boxes mapped back
    to source pixels with the preprocess geometry. Raises the engine's RPN top-N in place:
    use an engine loaded for this measurement only."""

    def __init__(self, engine: Engine, top_n: int) -> None:
        if not isinstance(engine, TwoStageEngine):
            raise ModelError(f"{engine.info.name}: RPN proposals need a two-stage (R-CNN) engine")
        rpn = engine.skeleton.rpn
        rpn._post_nms_top_n = {**rpn._post_nms_top_n, "testing": top_n}
        rpn._pre_nms_top_n = {**rpn._pre_nms_top_n, "testing": max(top_n, rpn._pre_nms_top_n["testing"])}
        self.engine = engine
        self.normalize = Normalizer(engine.info)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        batch, (geometry,) = self.normalize([image])
        (boxes,) = self.engine.proposals(batch, [geometry.resized_size])
        return geometry.to_source(boxes.float().cpu()).numpy().astype(np.float32)


def dataset_samples(dataset: CocoDataset, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, non-crowd ground truth) of the first `count` images, read one at a time:
    decoded again for each source, cheap next to either search, and memory stays flat."""
    for index in range(count):
        yield dataset.read_image(index), dataset_truth(dataset, index)


def dataset_truth(dataset: CocoDataset, index: int) -> np.ndarray:
    """Non-crowd ground-truth boxes of image `index`, xyxy in its pixels."""
    record = dataset.records[index]
    boxes = [i.box for i in dataset.annotations.instances[record.id] if not i.iscrowd]
    return np.array(boxes, np.float32).reshape(-1, 4)


def report_rows(reports: Sequence[RecallReport]) -> list[dict[str, Any]]:
    """The reports as JSON rows: source, mean proposals, seconds per image, recall by "IOU@N"."""
    return [
        {
            "source": r.name,
            "mean_proposals": round(r.mean_proposals, 1),
            "seconds_per_image": round(r.seconds_per_image, 4),
            "recall": {f"{iou}@{n}": round(float(r.recall[i, j]), 4)
                       for i, n in enumerate(r.counts) for j, iou in enumerate(r.ious)},
        }
        for r in reports
    ]
