"""Model output maths: final selection and mapping back to the source frame.

Score threshold, class-wise NMS and top-k live here (not in the engine) so they are
runtime settings. Boxes go back to source pixels through the recorded geometry; masks
are pasted into the source frame, binarized and stored as COCO RLE. Used by the
postprocess stage and by evaluation, so both score exactly what the pipeline emits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import batched_nms

from engines.base import ModelInfo
from pipeline.core.config import ModelConfig
from pipeline.core.types import Detections, Frame, Geometry, RawOutput


@dataclass(frozen=True)
class Selection:
    score_threshold: float
    nms_iou: float
    top_k: int

    @classmethod
    def for_model(cls, config: ModelConfig, info: ModelInfo) -> Selection:
        """The run's selection: the configured settings, the model's own score threshold unless set."""
        threshold = config.score_threshold if config.score_threshold is not None else info.score_threshold
        return cls(score_threshold=threshold, nms_iou=config.nms_iou, top_k=config.top_k)

    def keep(self, raw: RawOutput) -> torch.Tensor:
        """Indices of the candidates that survive, best first."""
        above = torch.where(raw.scores >= self.score_threshold)[0]
        kept = batched_nms(raw.boxes[above], raw.scores[above], raw.labels[above], self.nms_iou)
        return above[kept[: self.top_k]]


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
    frame: Frame, geometry: Geometry, raw: RawOutput, selection: Selection, class_names: tuple[str, ...]
) -> Detections:
    raw = RawOutput(
        raw.boxes.float().cpu(),
        raw.scores.float().cpu(),
        raw.labels.cpu(),
        None if raw.mask_logits is None else raw.mask_logits.float().cpu(),
    )
    keep = selection.keep(raw)
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
    )
