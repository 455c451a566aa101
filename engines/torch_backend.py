"""PyTorch backend: runs a torchvision R-CNN without its internal transform.

Preprocessing (resize, pad, normalize) is done by the pipeline's preprocess stage and
the final selection (threshold, class-wise NMS, top-k) by postprocess, so this backend
returns every candidate above a score floor. The split mirrors the compiled backends:
dense part (backbone + FPN + RPN head), proposals, box head, mask head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import boxes as box_ops

from engines.base import ModelInfo
from pipeline.types import RawOutput

# Candidates per image handed to postprocess (and to the mask head). torchvision keeps
# 100 after NMS; before NMS a few times that is enough to keep every survivor.
MAX_CANDIDATES = 300


class TorchEngine:
    def __init__(
        self,
        model: GeneralizedRCNN,
        info: ModelInfo,
        device: str = "cpu",
        score_floor: float = 0.05,
    ) -> None:
        self.info = info
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.score_floor = score_floor

    @torch.inference_mode()
    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[RawOutput]:
        images = images.to(self.device, non_blocking=True)
        heads = self.model.roi_heads
        features = self.model.backbone(images)
        proposals, _ = self.model.rpn(ImageList(images, image_sizes), features)
        box_features = heads.box_head(heads.box_roi_pool(features, proposals, image_sizes))
        class_logits, box_regression = heads.box_predictor(box_features)
        outputs = self._candidates(class_logits, box_regression, proposals, image_sizes)
        if self.info.has_masks:
            self._add_masks(features, outputs, image_sizes)
        return outputs

    def _candidates(
        self,
        class_logits: torch.Tensor,
        box_regression: torch.Tensor,
        proposals: list[torch.Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[RawOutput]:
        """Per-class boxes and scores above the floor, as torchvision's
        `postprocess_detections` computes them, minus its NMS and top-k."""
        counts = [len(p) for p in proposals]
        all_boxes = self.model.roi_heads.box_coder.decode(box_regression, proposals)
        all_scores = F.softmax(class_logits, -1)
        num_classes = all_scores.shape[-1]
        outputs = []
        for boxes, scores, size in zip(all_boxes.split(counts), all_scores.split(counts), image_sizes):
            boxes = box_ops.clip_boxes_to_image(boxes, size)
            labels = torch.arange(num_classes, device=boxes.device).expand_as(scores)
            # drop the background column, one candidate per (proposal, class)
            boxes = boxes[:, 1:].reshape(-1, 4)
            scores = scores[:, 1:].reshape(-1)
            labels = labels[:, 1:].reshape(-1)
            keep = torch.where(scores >= self.score_floor)[0]
            keep = keep[box_ops.remove_small_boxes(boxes[keep], min_size=1e-2)]
            keep = keep[scores[keep].argsort(descending=True)[:MAX_CANDIDATES]]
            outputs.append(RawOutput(boxes[keep], scores[keep], labels[keep]))
        return outputs

    def _add_masks(
        self,
        features: dict[str, torch.Tensor],
        outputs: list[RawOutput],
        image_sizes: list[tuple[int, int]],
    ) -> None:
        # Masks depend only on their own box, so running the head on all candidates and
        # letting postprocess drop the suppressed ones gives torchvision's masks exactly.
        heads = self.model.roi_heads
        boxes = [o.boxes for o in outputs]
        logits = heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(features, boxes, image_sizes)))
        labels = torch.cat([o.labels for o in outputs])
        logits = logits[torch.arange(len(labels), device=labels.device), labels]
        for output, part in zip(outputs, logits.split([len(b) for b in boxes])):
            output.mask_logits = part
