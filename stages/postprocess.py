"""Postprocess stage: final selection and mapping back to the source frame.

Score threshold, class-wise NMS and top-k live here (not in the engine) so they are
runtime settings. Boxes go back to source pixels through the recorded geometry; masks
are pasted into the source frame, binarized and stored as COCO RLE.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import batched_nms

from pipeline.context import RunContext
from pipeline.queues import END, Channel
from pipeline.types import Detections, Frame, Geometry, RawOutput
from stages.base import Stage


@dataclass(frozen=True)
class Selection:
    score_threshold: float
    nms_iou: float
    top_k: int

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


class Postprocess(Stage):
    def __init__(
        self,
        source: Channel,
        outputs: list[Channel],
        selection: Selection,
        class_names: tuple[str, ...],
        ctx: RunContext,
    ) -> None:
        super().__init__("postprocess", ctx)
        self.input = source
        self.outputs = outputs
        self.selection = selection
        self.class_names = class_names

    def work(self) -> None:
        while (item := self.input.get()) is not END:
            batch, raw_outputs = item
            self.metrics.arrived(batch.frames)
            for frame, geometry, raw in zip(batch.frames, batch.geometry, raw_outputs):
                started = time.monotonic()  # the unit of work here is one frame
                detections = finish_frame(frame, geometry, raw, self.selection, self.class_names)
                frame.stamp(self.name)
                self.metrics.served((frame,), started)
                for output in self.outputs:
                    output.put(detections)
                self.ctx.count(self.name)
        for output in self.outputs:
            output.put(END)
