"""Fast R-CNN (Girshick, ICCV 2015) on the compact backbone, over given region proposals.

Rules:
- One backbone pass per image; every RoI is pooled from that one feature map: the compact
  backbone's FPN level '0' (stride 8, 64 channels). The paper pools VGG's conv5 at
  stride 16; our objects are small (many under 32 px at the 320 x 576 input), and at
  stride 16 they would cover one or two feature cells. spatial_scale is 1 / the stride;
  the transform pads images to a multiple of 32, so the feature map is exactly that.
- RoI features: `roi_op` `pool` is torchvision.ops.roi_pool (max pooling over quantized
  cells, as in the paper), `align` is roi_align (bilinear samples, no quantization) with
  the settings of our Faster R-CNN's pooler (sampling ratio 2, aligned=False), so the two
  differ only in the operation. Both 7 x 7. The choice is saved with the weights (the
  module's extra state), so a model file loads with the operation it was trained with;
  setting `roi_op` afterwards runs the same weights the other way.
- Head: two fully connected layers (fc6, fc7; 256 wide as the compact Faster R-CNN's)
  and two sibling outputs: K+1 class scores (softmax) and 4 box offsets per class,
  encoded and decoded with torchvision's BoxCoder weights (10, 10, 5, 5) as in its RoIHeads.
- Training (`engines.roi_sampling.sample_rois`, shared with R-CNN): the ground-truth
  boxes join the proposals; per image `rois_per_image` RoIs, at most `fg_fraction` of
  them foreground (IoU >= fg_iou with a ground-truth box, labelled with that box's
  class), the rest background (best IoU in [bg_iou_low, fg_iou), label 0). Proposals below bg_iou_low are not used (the paper's
  heuristic for hard negatives), except in an image without objects, where every
  proposal is background (else such an image would teach nothing).
- Loss (`fast_rcnn_loss`): cross-entropy over all sampled RoIs plus lambda = 1 times the
  smooth L1 (beta 1, as the paper defines it) of the true class's offsets of foreground
  RoIs, summed and divided by the number of RoIs (the paper's mean over RoIs).
- Input: a list of 3 x H x W float images in [0, 1]; proposals are xyxy in those images'
  pixels, in `targets[i]["proposals"]` when training, the `proposals` argument otherwise.
  Output in eval mode: one `RawOutput` per image (per (proposal, class) candidates above
  `score_floor`, boxes in the input images' pixels), the form of TwoStageEngine's
  candidates, so postprocess (class-wise NMS, thresholds) is the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import roi_align, roi_pool

from engines import compact
from engines.region_forward import detect_in_image_pixels, transformed
from engines.roi_sampling import Sampling, sample_rois
from engines.two_stage import box_candidates
from pipeline.core.errors import ModelError
from pipeline.core.types import RawOutput

ROI_OPS = ("pool", "align")
FEATURE_LEVEL = "0"
FEATURE_STRIDE = compact.FEATURE_STRIDES[0]
POOL_SIZE = 7
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
SMOOTH_L1_BETA = 1.0  # the paper's smooth L1: quadratic below 1, linear above


def fast_rcnn_loss(
    class_logits: torch.Tensor, box_regression: torch.Tensor, labels: torch.Tensor, regression_targets: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The multi-task loss (module docstring) of R RoIs: logits R x (K+1), regression
    R x 4(K+1), labels R, targets R x 4 (encoded offsets to each RoI's matched box)."""
    classification = F.cross_entropy(class_logits, labels)
    foreground = torch.where(labels > 0)[0]
    offsets = box_regression.reshape(len(labels), -1, 4)[foreground, labels[foreground]]
    box = F.smooth_l1_loss(offsets, regression_targets[foreground], beta=SMOOTH_L1_BETA, reduction="sum")
    return {"loss_classifier": classification, "loss_box_reg": box / max(1, labels.numel())}


class FastRCNN(nn.Module):
    """Backbone, RoI pooling over given proposals, two fc layers, two sibling heads."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        transform: GeneralizedRCNNTransform,
        roi_op: str = "pool",
        sampling: Sampling = Sampling(),
        score_floor: float = 0.05,
    ) -> None:
        super().__init__()
        _check_roi_op(roi_op)
        self.transform = transform
        self.backbone = backbone
        channels = backbone.out_channels
        # names unlike a Faster R-CNN's (roi_heads.*): `init_from` a Faster R-CNN then
        # carries over the backbone only, never a trained detection head
        self.box_head = TwoMLPHead(channels * POOL_SIZE * POOL_SIZE, compact.BOX_REPRESENTATION)
        self.box_predictor = FastRCNNPredictor(compact.BOX_REPRESENTATION, num_classes)
        self.box_coder = BoxCoder(BOX_WEIGHTS)
        self.roi_op = roi_op
        self.sampling = sampling
        self.score_floor = score_floor

    def get_extra_state(self) -> dict[str, str]:
        return {"roi_op": self.roi_op}

    def set_extra_state(self, state: dict[str, str]) -> None:
        self.roi_op = _check_roi_op(state["roi_op"])

    def pool(self, features: torch.Tensor, rois: list[torch.Tensor]) -> torch.Tensor:
        """R x C x 7 x 7 features of the RoIs (xyxy in transformed-image pixels)."""
        scale = 1.0 / FEATURE_STRIDE
        if self.roi_op == "pool":
            return roi_pool(features, rois, POOL_SIZE, scale)
        return roi_align(features, rois, POOL_SIZE, scale, sampling_ratio=2, aligned=False)

    def forward(
        self, images: list[torch.Tensor], targets: list[dict] | None = None, proposals: list[torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor] | list[RawOutput]:
        batch, targets, rois = transformed("fast_rcnn", self.transform, images, targets, proposals, self.training)
        if not self.training:
            return detect_in_image_pixels(self.detect, images, batch, rois)
        samples = [sample_rois(p, t["boxes"], t["labels"], self.sampling) for p, t in zip(rois, targets)]
        rois = [s.rois for s in samples]
        class_logits, box_regression = self._heads(batch.tensors, rois)
        labels = torch.cat([s.labels for s in samples])
        regression_targets = self.box_coder.encode_single(torch.cat([s.matched for s in samples]), torch.cat(rois))
        return fast_rcnn_loss(class_logits, box_regression, labels, regression_targets)

    def detect(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]], proposals: list[torch.Tensor]
    ) -> list[RawOutput]:
        """Candidates of N x 3 x H x W normalized, padded images (the pipeline's input, no
        transform) from their proposals (xyxy, those pixels): the engine's entry point."""
        class_logits, box_regression = self._heads(images, proposals)
        return box_candidates(class_logits, box_regression, proposals, image_sizes, self.box_coder, self.score_floor)

    def _heads(self, images: torch.Tensor, rois: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(images)[FEATURE_LEVEL]
        return self.box_predictor(self.box_head(self.pool(features, rois)))


def _check_roi_op(roi_op: str) -> str:
    if roi_op not in ROI_OPS:
        raise ModelError(f"fast_rcnn roi_op {roi_op!r}: allowed are {', '.join(ROI_OPS)}")
    return roi_op


def fast_rcnn(
    *,
    num_classes: int,
    weights: None = None,
    weights_backbone: None = None,
    roi_op: str = "pool",
    rois_per_image: int = 64,
    fg_fraction: float = 0.25,
    min_size: int = 800,
    max_size: int = 1333,
    image_mean: list[float] | None = None,
    image_std: list[float] | None = None,
) -> FastRCNN:
    """Fast R-CNN on the compact backbone (module docstring); the transform's defaults are
    torchvision's (the trainer passes the input size, so its resize is a no-op)."""
    transform = GeneralizedRCNNTransform(
        min_size, max_size, image_mean or [0.485, 0.456, 0.406], image_std or [0.229, 0.224, 0.225]
    )
    sampling = Sampling(rois_per_image=rois_per_image, fg_fraction=fg_fraction)
    return FastRCNN(compact.backbone(), num_classes, transform, roi_op, sampling)
