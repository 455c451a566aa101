"""PyTorch backend: the reference. Runs a torchvision R-CNN's learned parts eagerly.

Preprocessing (resize, pad, normalize) is the pipeline's preprocess stage and the final
selection (threshold, class-wise NMS, top-k) is postprocess, so the model's own
transform and `postprocess_detections` are never used here.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from engines.base import ModelInfo
from engines.two_stage import TwoStageEngine


class TorchParts:
    def __init__(self, model: GeneralizedRCNN) -> None:
        self.model = model

    def dense(self, images: torch.Tensor) -> tuple[OrderedDict[str, torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        features = self.model.backbone(images)
        objectness, deltas = self.model.rpn.head(list(features.values()))
        return features, objectness, deltas

    def box_head(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        heads = self.model.roi_heads
        return heads.box_predictor(heads.box_head(roi_features))

    def mask_head(self, roi_features: torch.Tensor) -> torch.Tensor:
        heads = self.model.roi_heads
        return heads.mask_predictor(heads.mask_head(roi_features))


class TorchEngine(TwoStageEngine):
    backend = "PyTorch"

    def __init__(
        self, model: GeneralizedRCNN, info: ModelInfo, device: str = "cpu", score_floor: float = 0.05,
        mask_floor: float | None = None,
    ) -> None:
        self.device = torch.device(device)
        model = model.to(self.device).eval()
        super().__init__(model, TorchParts(model), info, score_floor, mask_floor)

    @property
    def model(self) -> GeneralizedRCNN:
        return self.skeleton

    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]):  # type: ignore[override]
        return super().infer(images.to(self.device, non_blocking=True), image_sizes)
