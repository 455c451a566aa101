"""The two-stage detector algorithm around its learned parts, shared by every backend.

A backend supplies only the learned, dense parts (`Parts`): the dense network (backbone +
FPN + RPN head), the box head and, for Mask R-CNN, the mask head. Everything between them
is data-dependent and runs here with torchvision's own modules, taken from a model
"skeleton" of the same architecture: anchor generation and decoding, proposal top-k and
NMS, MultiScaleRoIAlign, and per-class box decoding. Because every backend shares this
code, backends can differ only in how they compute the dense parts.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

import torch
import torch.nn.functional as F
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import boxes as box_ops

from engines.base import ModelInfo
from engines.pixel_masks import IMAGE_KEY
from pipeline.core.types import RawOutput

# Candidates per image handed to postprocess (and to the mask head). torchvision keeps
# 100 after NMS; before NMS a few times that is enough to keep every survivor.
MAX_CANDIDATES = 300
MASK_SIZE = 28  # side of a mask head's logits (torchvision's: 14 x 14 RoIs, upsampled twice)


class Parts(Protocol):
    """The learned parts of a two-stage detector, as one backend computes them."""

    def dense(self, images: torch.Tensor) -> tuple[OrderedDict[str, torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """FPN features by name, RPN objectness and box deltas per level."""
        ...

    def box_head(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits (R x K) and box regression (R x 4K) of pooled RoI features."""
        ...

    def mask_head(self, roi_features: torch.Tensor) -> torch.Tensor:
        """Mask logits (R x K x M x M) of pooled RoI features."""
        ...


class TwoStageEngine:
    """An `Engine`: the shared algorithm driving one backend's `Parts`.

    `score_floor`: candidates scoring less are never produced. `mask_floor` (default: the
    score floor): the mask head runs only on candidates scoring at least this; the others
    get zero logits. A tracker's weak candidates (down to tracking.low_score) are never
    emitted, so they need no mask: without this floor a Mask R-CNN run with tracking on
    spent about half again as long per frame on masks nobody sees (measured on the
    embedded mask model: 37 candidates instead of 20 per frame, 109 instead of 69 ms).
    """

    def __init__(
        self, skeleton: GeneralizedRCNN, parts: Parts, info: ModelInfo, score_floor: float, mask_floor: float | None = None
    ) -> None:
        self.info = info
        self.skeleton = skeleton.eval()
        self.parts = parts
        self.score_floor = score_floor
        self.mask_floor = score_floor if mask_floor is None else max(mask_floor, score_floor)

    @torch.inference_mode()
    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[RawOutput]:
        heads = self.skeleton.roi_heads
        features, objectness, deltas = self.parts.dense(images)
        proposals = self._proposals(images, image_sizes, features, objectness, deltas)
        box_features = heads.box_roi_pool(features, proposals, image_sizes)
        class_logits, box_regression = self.parts.box_head(box_features)
        outputs = self._candidates(class_logits, box_regression, proposals, image_sizes)
        if self.info.has_masks:
            self._add_masks(features, images, outputs, image_sizes)
        return outputs

    @torch.inference_mode()
    def proposals(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """The RPN's proposals of each image (xyxy, model-input pixels, best first), as
        `infer` computes them before the box head: for measuring the RPN on its own."""
        features, objectness, deltas = self.parts.dense(images)
        return self._proposals(images, image_sizes, features, objectness, deltas)

    def _proposals(
        self,
        images: torch.Tensor,
        image_sizes: list[tuple[int, int]],
        features: OrderedDict[str, torch.Tensor],
        objectness: list[torch.Tensor],
        deltas: list[torch.Tensor],
    ) -> list[torch.Tensor]:
        """torchvision's `RegionProposalNetwork.forward` (inference), head outputs given."""
        rpn = self.skeleton.rpn
        image_list = ImageList(images, image_sizes)
        anchors = rpn.anchor_generator(image_list, list(features.values()))
        per_level = [o[0].numel() for o in objectness]
        flat_objectness, flat_deltas = concat_box_prediction_layers(objectness, deltas)
        proposals = rpn.box_coder.decode(flat_deltas, anchors).view(len(anchors), -1, 4)
        boxes, _ = rpn.filter_proposals(proposals, flat_objectness, image_sizes, per_level)
        return boxes

    def _candidates(
        self,
        class_logits: torch.Tensor,
        box_regression: torch.Tensor,
        proposals: list[torch.Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[RawOutput]:
        box_coder = self.skeleton.roi_heads.box_coder
        return box_candidates(class_logits, box_regression, proposals, image_sizes, box_coder, self.score_floor)

    def _add_masks(
        self,
        features: OrderedDict[str, torch.Tensor],
        images: torch.Tensor,
        outputs: list[RawOutput],
        image_sizes: list[tuple[int, int]],
    ) -> None:
        # Masks depend only on their own box, so running the head on every candidate that
        # may be emitted and letting postprocess drop the suppressed ones gives
        # torchvision's masks exactly; candidates under the mask floor are never emitted.
        wanted = [o.scores >= self.mask_floor for o in outputs]
        boxes = [o.boxes[w] for o, w in zip(outputs, wanted)]
        if not sum(len(b) for b in boxes):  # nothing to segment: do not call the head on 0 RoIs
            for output in outputs:
                output.mask_logits = output.boxes.new_zeros((len(output.boxes), MASK_SIZE, MASK_SIZE))
            return
        # the image too, for mask branches that read pixels (engines.pixel_masks);
        # poolers of plain FPN levels take only the levels they are named for
        pooled = self.skeleton.roi_heads.mask_roi_pool({**features, IMAGE_KEY: images}, boxes, image_sizes)
        logits = self.parts.mask_head(pooled)
        labels = torch.cat([o.labels[w] for o, w in zip(outputs, wanted)])
        logits = logits[torch.arange(len(labels), device=labels.device), labels]
        for output, w, part in zip(outputs, wanted, logits.split([len(b) for b in boxes])):
            output.mask_logits = output.boxes.new_zeros((len(output.boxes), *part.shape[1:]))
            output.mask_logits[w] = part.to(output.mask_logits.dtype)


def box_candidates(
    class_logits: torch.Tensor,
    box_regression: torch.Tensor,
    proposals: list[torch.Tensor],
    image_sizes: list[tuple[int, int]],
    box_coder: BoxCoder,
    score_floor: float,
) -> list[RawOutput]:
    """Per-class boxes and scores above the floor, as torchvision's
    `postprocess_detections` computes them, minus its NMS and top-k (which postprocess
    does): the one place that turns a box head's outputs into candidates (two-stage
    engines and Fast R-CNN alike)."""
    all_boxes = box_coder.decode(box_regression, proposals)
    all_scores = F.softmax(class_logits, -1)
    return class_candidates(all_scores, all_boxes, [len(p) for p in proposals], image_sizes, score_floor)


def class_candidates(
    all_scores: torch.Tensor,
    all_boxes: torch.Tensor,
    counts: list[int],
    image_sizes: list[tuple[int, int]],
    score_floor: float,
) -> list[RawOutput]:
    """Candidates from per-class scores R x (K+1) and boxes R x (K+1) x 4 of the
    proposals of all images (`counts` per image; column 0, the background, is dropped):
    clipped, above the floor, not degenerate, best MAX_CANDIDATES first."""
    num_classes = all_scores.shape[-1]
    outputs = []
    for boxes, scores, size in zip(all_boxes.split(counts), all_scores.split(counts), image_sizes):
        boxes = box_ops.clip_boxes_to_image(boxes, size)
        labels = torch.arange(num_classes, device=boxes.device).expand_as(scores)
        # drop the background column, one candidate per (proposal, class)
        boxes = boxes[:, 1:].reshape(-1, 4)
        scores = scores[:, 1:].reshape(-1)
        labels = labels[:, 1:].reshape(-1)
        keep = torch.where(scores >= score_floor)[0]
        keep = keep[box_ops.remove_small_boxes(boxes[keep], min_size=1e-2)]
        keep = keep[scores[keep].argsort(descending=True)[:MAX_CANDIDATES]]
        outputs.append(RawOutput(boxes[keep], scores[keep], labels[keep]))
    return outputs
