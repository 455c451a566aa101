"""Model output maths: final selection and mapping back to the source frame.

Score thresholds (per class), the kept classes, class-wise NMS and top-k live here (not
in the engine) so they are runtime settings. Class names in engines.base.PLACEHOLDER_CLASSES (the
background, torchvision's `N/A` placeholders for unused COCO ids) are never emitted,
whatever the settings. Class names in the settings are checked against the model's
here, once it has loaded: a ConfigError names the key, the bad name and the allowed
ones. Boxes go back to source pixels through the recorded geometry; masks
are pasted into the source frame, binarized and stored as COCO RLE. Used by the
postprocess stage and by evaluation, so both score exactly what the pipeline emits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import batched_nms

from engines.base import PLACEHOLDER_CLASSES, ModelInfo
from pipeline.core.config import ModelConfig
from pipeline.core.errors import ConfigError
from pipeline.core.types import Candidates, Detections, Frame, Geometry, RawOutput


@dataclass(frozen=True, eq=False)
class Selection:
    """Which candidates become detections.

    `thresholds[label]` is the score a candidate of that label needs; `inf` for a label
    that is never emitted (not kept, background, `N/A`).
    """

    thresholds: torch.Tensor
    nms_iou: float
    top_k: int

    @classmethod
    def uniform(cls, score_threshold: float, nms_iou: float, top_k: int, class_names: tuple[str, ...]) -> Selection:
        """One threshold for every class of `class_names`."""
        return cls.per_class({name: score_threshold for name in class_names}, nms_iou, top_k, class_names)

    @classmethod
    def per_class(cls, scores: dict[str, float], nms_iou: float, top_k: int, class_names: tuple[str, ...]) -> Selection:
        """`scores[name]` for the classes in `scores`; the others are never emitted, nor
        are PLACEHOLDER_CLASSES names, whatever `scores` says."""
        values = [math.inf if name in PLACEHOLDER_CLASSES else scores.get(name, math.inf) for name in class_names]
        return cls(torch.tensor(values, dtype=torch.float32), nms_iou, top_k)

    @classmethod
    def for_model(cls, config: ModelConfig, info: ModelInfo, key: str = "model") -> Selection:
        """The selection `config` asks for: its classes (default: all) with their thresholds
        (the class's own, else `score_threshold`, else the model's). `key` names the
        settings in errors (`model`, `sources.1`)."""
        allowed = [name for name in info.class_names if name not in PLACEHOLDER_CLASSES]
        _check_names(config.classes or (), f"{key}.classes", allowed, info.name)
        _check_names(config.score_thresholds, f"{key}.score_thresholds", allowed, info.name)
        default = config.score_threshold if config.score_threshold is not None else info.score_threshold
        scores = {name: config.score_thresholds.get(name, default) for name in config.classes or allowed}
        return cls.per_class(scores, config.nms_iou, config.top_k, info.class_names)

    @property
    def labels(self) -> frozenset[int]:
        """The labels this selection can emit."""
        return frozenset(torch.where(self.thresholds.isfinite())[0].tolist())

    @property
    def floor(self) -> float:
        """The lowest threshold of an emitted label: the engine must produce candidates down to it."""
        finite = self.thresholds[self.thresholds.isfinite()]
        return float(finite.min()) if len(finite) else math.inf

    def lowered(self, low_score: float) -> Selection:
        """The same labels down to `low_score` (a tracker's weak candidates), without the top-k
        cut: with per-class thresholds a weak candidate may outscore an emitted detection."""
        low = torch.minimum(self.thresholds, torch.tensor(low_score, dtype=torch.float32))
        return Selection(torch.where(self.thresholds.isfinite(), low, self.thresholds), self.nms_iou, 2**31 - 1)

    def keep(self, raw: RawOutput) -> torch.Tensor:
        """Indices of the candidates that survive, best first."""
        above = torch.where(raw.scores >= self.thresholds[raw.labels])[0]
        kept = batched_nms(raw.boxes[above], raw.scores[above], raw.labels[above], self.nms_iou)
        return above[kept[: self.top_k]]


def _check_names(names: Iterable[str], key: str, allowed: list[str], model: str) -> None:
    for name in names:
        if name not in allowed:
            raise ConfigError(f"{key}: {name!r} is not a class of model {model} (allowed: {', '.join(allowed)})")


def encode_masks(logits: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> list[dict]:
    """Paste per-box mask logits into a `size` frame, threshold at 0.5, encode as RLE."""
    rles = []
    # one mask at a time: a full-frame float mask per detection would cost ~4 MB each
    for logit, box in zip(logits, boxes):
        pasted = paste_masks_in_image(logit.sigmoid()[None, None], box[None], size)[0, 0]
        binary = np.asfortranarray((pasted >= 0.5).numpy().astype(np.uint8))
        rle = mask_utils.encode(binary)
        rles.append({"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")})
    return rles


def finish_frame(
    frame: Frame,
    geometry: Geometry,
    raw: RawOutput,
    selection: Selection,
    class_names: tuple[str, ...],
    low_score: float | None = None,
) -> Detections:
    """The frame's detections; with `low_score`, also the candidates from it up to the
    emitted thresholds (`Detections.low`, after the same NMS: a weaker box never removes
    a stronger one, so the emitted detections are the same either way)."""
    raw = RawOutput(
        raw.boxes.float().cpu(),
        raw.scores.float().cpu(),
        raw.labels.cpu(),
        None if raw.mask_logits is None else raw.mask_logits.float().cpu(),
    )
    low = None
    if low_score is None:
        keep = selection.keep(raw)
    else:
        both = selection.lowered(low_score).keep(raw)
        strong = raw.scores[both] >= selection.thresholds[raw.labels[both]]
        keep, weak = both[strong][: selection.top_k], both[~strong][: selection.top_k]
        low = Candidates(
            geometry.to_source(raw.boxes[weak]).numpy().astype(np.float32),
            raw.scores[weak].numpy().astype(np.float32),
            raw.labels[weak].numpy().astype(np.int64),
        )
    boxes = geometry.to_source(raw.boxes[keep])
    class_ids = raw.labels[keep]
    masks = None
    if raw.mask_logits is not None:
        masks = encode_masks(raw.mask_logits[keep], boxes, geometry.source_size)
    return Detections(
        frame=frame,
        boxes=boxes.numpy().astype(np.float32),
        scores=raw.scores[keep].numpy().astype(np.float32),
        class_ids=class_ids.numpy().astype(np.int64),
        labels=[class_names[i] for i in class_ids.tolist()],
        masks=masks,
        low=low,
    )
