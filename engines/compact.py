"""Compact two-stage detectors for CPU real time, trained from scratch.

torchvision's CPU-friendly Faster R-CNN (MobileNetV3-320-FPN) still spends most of its
time in heads sized for COCO: 256-channel FPN and a 1024-wide box MLP over 256x7x7 RoI
features (12.8 M multiply-adds per RoI). Our scenes have few classes and few objects, so
the compact variants keep the same architecture family with narrow parts:

- backbone: MobileNetV3-Large, width multiplier 0.75, BatchNorm (trainable, no
  pretrained weights), features taken at strides 8, 16 and 32, plus a max-pool level;
- FPN: 64 channels; RPN: one anchor size per level (16, 32, 64, 128 px), aspect ratios
  (h/w) 0.4, 1, 2 and 3 (people stand tall, ~2.7; cars lie wide, ~0.4);
- box head: two 256-wide layers over 64x7x7 RoI features; mask head: four 64-channel
  convolutions at 14x14 up to 28x28 masks;
- fewer proposals and RoI samples than COCO needs (scenes hold at most a few dozen
  objects).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import mobilenet_v3_large
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from engines.pixel_masks import PixelMaskHead, PixelMaskPredictor, PixelMaskRCNN, PixelRoIPool

WIDTH_MULT = 0.75
FPN_CHANNELS = 64
BOX_REPRESENTATION = 256
MASK_CHANNELS = 64
FEATURE_STRIDES = (8, 16, 32)


def _last_block_per_stride(features: nn.Sequential, strides: tuple[int, ...]) -> dict[str, int]:
    """Index of the last block producing each stride (found by a dry run, not hard-coded)."""
    x = torch.zeros(1, 3, 64, 64)
    last: dict[int, int] = {}
    with torch.no_grad():
        for index, block in enumerate(features):
            x = block(x)
            last[64 // x.shape[-1]] = index
    return {str(last[s]): i for i, s in enumerate(strides)}


def backbone() -> BackboneWithFPN:
    """The compact MobileNetV3 + FPN backbone (module docstring): FPN levels '0', '1', '2'
    at strides 8, 16, 32 plus 'pool', FPN_CHANNELS each."""
    features = mobilenet_v3_large(weights=None, width_mult=WIDTH_MULT, norm_layer=nn.BatchNorm2d).features
    was_training = features.training
    features.eval()  # the dry run must not touch BatchNorm statistics
    return_layers = _last_block_per_stride(features, FEATURE_STRIDES)
    features.train(was_training)
    in_channels = [features[int(k)].out_channels for k in return_layers]
    return BackboneWithFPN(
        features, {k: str(v) for k, v in return_layers.items()}, in_channels, FPN_CHANNELS,
        extra_blocks=LastLevelMaxPool(),
    )


def _common(num_classes: int) -> dict:
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,)), aspect_ratios=((0.4, 1.0, 2.0, 3.0),) * 4)
    levels = [str(i) for i in range(len(FEATURE_STRIDES))]
    return dict(
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=500,
        rpn_post_nms_top_n_test=150,
        rpn_batch_size_per_image=128,
        box_roi_pool=MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(FPN_CHANNELS * 7 * 7, BOX_REPRESENTATION),
        box_predictor=FastRCNNPredictor(BOX_REPRESENTATION, num_classes),
        box_batch_size_per_image=128,
        box_detections_per_img=100,
    )


def fasterrcnn_compact(*, num_classes: int, weights: None = None, weights_backbone: None = None, **kwargs) -> FasterRCNN:
    """Compact Faster R-CNN (see module docstring). Trained from scratch only."""
    return FasterRCNN(backbone(), **_common(num_classes), **kwargs)


def maskrcnn_compact(*, num_classes: int, weights: None = None, weights_backbone: None = None, **kwargs) -> MaskRCNN:
    """Compact Mask R-CNN: the compact Faster R-CNN plus a narrow mask head."""
    levels = [str(i) for i in range(len(FEATURE_STRIDES))]
    return MaskRCNN(
        backbone(),
        **_common(num_classes),
        mask_roi_pool=MultiScaleRoIAlign(levels, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(FPN_CHANNELS, (MASK_CHANNELS,) * 4, 1),
        mask_predictor=MaskRCNNPredictor(MASK_CHANNELS, MASK_CHANNELS, num_classes),
        **kwargs,
    )


def maskrcnn_compact_px(*, num_classes: int, weights: None = None, weights_backbone: None = None, **kwargs) -> MaskRCNN:
    """Compact Mask R-CNN whose mask branch also sees the image pixels (engines.pixel_masks).

    Same module names and shapes as `maskrcnn_compact` except the mask head's input and
    the predictor's `refine` block, so a `maskrcnn_compact` model initialises it.
    """
    levels = [str(i) for i in range(len(FEATURE_STRIDES))]
    pool = PixelRoIPool(levels, FPN_CHANNELS)
    return PixelMaskRCNN(
        backbone(),
        **_common(num_classes),
        mask_roi_pool=pool,
        mask_head=PixelMaskHead(FPN_CHANNELS, (MASK_CHANNELS,) * 4, 1),
        mask_predictor=PixelMaskPredictor(MASK_CHANNELS, MASK_CHANNELS, num_classes),
        **kwargs,
    )
