"""The part of R-CNN's and Fast R-CNN's `forward` they share: the model's own transform
(training, and eval outside the pipeline) applied to images and their proposals, and the
eval outputs mapped back to the images' pixels. The pipeline calls `detect` directly."""

from __future__ import annotations

from typing import Callable

import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

from pipeline.core.errors import ModelError
from pipeline.core.types import RawOutput


def transformed(
    name: str,
    transform: GeneralizedRCNNTransform,
    images: list[torch.Tensor],
    targets: list[dict] | None,
    proposals: list[torch.Tensor] | None,
    training: bool,
) -> tuple[ImageList, list[dict] | None, list[torch.Tensor]]:
    """The transformed batch, its targets and the proposals scaled alike (the transform
    resizes the targets' boxes, not the proposals); in training the proposals come from
    the targets."""
    if training:
        if targets is None or any("proposals" not in t for t in targets):
            raise ModelError(f"{name} training needs targets with boxes, labels and proposals")
        proposals = [t["proposals"] for t in targets]
    elif proposals is None or len(proposals) != len(images):
        raise ModelError(f"{name} needs one proposal tensor per image ({len(images)} images)")
    original_sizes = [tuple(image.shape[-2:]) for image in images]
    batch, targets = transform(images, targets)
    rois = [resize_boxes(p.to(batch.tensors.dtype), old, new)
            for p, old, new in zip(proposals, original_sizes, batch.image_sizes)]
    return batch, targets, rois


def detect_in_image_pixels(
    detect: Callable[[torch.Tensor, list[tuple[int, int]], list[torch.Tensor]], list[RawOutput]],
    images: list[torch.Tensor],
    batch: ImageList,
    rois: list[torch.Tensor],
) -> list[RawOutput]:
    """`detect` on the transformed batch, boxes mapped back to the input images' pixels."""
    outputs = detect(batch.tensors, batch.image_sizes, rois)
    for output, new, image in zip(outputs, batch.image_sizes, images):
        output.boxes = resize_boxes(output.boxes, new, tuple(image.shape[-2:]))
    return outputs
