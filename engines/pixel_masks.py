"""A Mask R-CNN mask branch that also sees the input image's own pixels.

The compact model's finest FPN level has stride 8. A bicycle in a 640x360 scene is about
50x30 px, its wheels thin rings with 1-px spokes: at stride 8 a wheel spans two or three
feature cells, so the mask head can only say "somewhere in this disk", with per-pixel
probabilities of 0.3-0.45 that the 0.5 binarization erases (bicycle mask AP 0.000 while
its box AP is 0.73). The pixels at full resolution hold exactly what is missing.

So the RoI pooling also samples the normalized input image at the mask's own resolution
(28x28), and a small refinement at the predictor's output adds a correction computed from
the upsampled mask features and those pixels. The refinement's last layer starts at zero:
a model initialised from a plain Mask R-CNN of the same widths starts with its masks.

All pieces keep one tensor per RoI between pooling, head and predictor (the pixels travel
as 12 extra channels at 14x14, `pixel_unshuffle`d), so the engine split, ONNX export and
TensorRT plans treat the mask head like any other: only its input has more channels. The
image reaches the pooling as `features["image"]`, next to the FPN levels; the box pooling
and the RPN never see it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign, roi_align

IMAGE_KEY = "image"
PIXEL_SIZE = 28  # the mask's resolution; pooled at 14x14 as 3 x 2 x 2 = 12 channels
PIXEL_CHANNELS = 3 * 4
REFINE_CHANNELS = 32


class PixelRoIPool(MultiScaleRoIAlign):
    """FPN features at 14x14 (as torchvision pools them) plus the image at 28x28."""

    def __init__(self, levels: list[str], feature_channels: int) -> None:
        super().__init__(levels, output_size=PIXEL_SIZE // 2, sampling_ratio=2)
        self.out_channels = feature_channels + PIXEL_CHANNELS  # what the mask head takes

    def forward(
        self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor], image_shapes: list[tuple[int, int]]
    ) -> torch.Tensor:
        pooled = super().forward(x, boxes, image_shapes)
        pixels = roi_align(x[IMAGE_KEY], boxes, PIXEL_SIZE, spatial_scale=1.0, sampling_ratio=2, aligned=True)
        return torch.cat([pooled, F.pixel_unshuffle(pixels, 2)], 1)


class PixelMaskHead(MaskRCNNHeads):
    """torchvision's mask head on the feature channels; the pixel channels pass through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, pixels = x[:, :-PIXEL_CHANNELS], x[:, -PIXEL_CHANNELS:]
        return torch.cat([super().forward(features), pixels], 1)


class PixelMaskPredictor(MaskRCNNPredictor):
    """torchvision's predictor plus a correction from the upsampled features and pixels."""

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__(in_channels, dim_reduced, num_classes)
        self.refine = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(dim_reduced + 3, REFINE_CHANNELS, 3, padding=1),
            relu1=nn.ReLU(inplace=True),
            conv2=nn.Conv2d(REFINE_CHANNELS, REFINE_CHANNELS, 3, padding=1),
            relu2=nn.ReLU(inplace=True),
            logits=nn.Conv2d(REFINE_CHANNELS, num_classes, 1),
        ))
        nn.init.zeros_(self.refine.logits.weight)
        nn.init.zeros_(self.refine.logits.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, pixels = x[:, :-PIXEL_CHANNELS], F.pixel_shuffle(x[:, -PIXEL_CHANNELS:], 2)
        upsampled = self.relu(self.conv5_mask(features))
        return self.mask_fcn_logits(upsampled) + self.refine(torch.cat([upsampled, pixels], 1))


class PixelMaskRCNN(MaskRCNN):
    """MaskRCNN whose RoI heads also get the transformed image as `features["image"]`.

    GeneralizedRCNN.forward, with one change: the RPN sees only the FPN levels (its
    anchors are per level), the RoI heads see the image too.
    """

    def forward(self, images, targets=None):  # type: ignore[override]
        original_sizes = [tuple(image.shape[-2:]) for image in images]
        images, targets = self.transform(images, targets)
        features = self.backbone(images.tensors)
        proposals, proposal_losses = self.rpn(images, features, targets)
        with_image = OrderedDict(features)
        with_image[IMAGE_KEY] = images.tensors
        detections, detector_losses = self.roi_heads(with_image, proposals, images.image_sizes, targets)
        if self.training:
            return {**detector_losses, **proposal_losses}
        return self.transform.postprocess(detections, images.image_sizes, original_sizes)
