"""R-CNN (Girshick et al., CVPR 2014) on the compact backbone, over given region proposals.

Rules:
- Warp (`context_box`, `warp`): each proposal is grown about its centre so that, once
  warped to `warp_size` x `warp_size`, `context_padding` pixels of image context surround
  the original box on every side (the box fills warp_size - 2 * padding pixels per axis),
  then resampled anisotropically to the square by `torchvision.ops.roi_align` on the
  normalized image itself (bilinear, aligned=True: pixel centres at +0.5, 2 x 2 samples
  per output pixel). Context outside the image reads as 0, the normalized image mean,
  which is what the paper fills it with. Paper: 227 px, p = 16. Ours: 64 px, p = 5
  (16 / 227 of 64, rounded): our objects are small (many under 32 px at 320 x 576,
  so 227 px would mostly upsample blur), and the CNN runs once per proposal on a 2-core CPU.
- Feature extractor: the compact backbone (MobileNetV3 + FPN) on the warped crops; its
  FPN level '0' (stride 8: 8 x 8 cells at 64 px) average-pooled to 4 x 4 and flattened,
  then two fully connected layers (fc6, fc7, 256 wide): fc7 is the region's feature.
  Not a global pooling: the 4 x 4 grid keeps where things are in the crop, which the box
  regressor needs (the paper regresses from pool5, a 6 x 6 grid).
- Fine-tuning (training mode `forward(images, targets)`): a (K+1)-way softmax classifier
  (`cls_score`) on fc7 over regions sampled by `engines.roi_sampling` (foreground: IoU
  >= 0.5 with a ground-truth box; background: every other proposal; 25 % foreground:
  the paper's 32 of 128 per batch is 64 RoIs per image at batch_size 2). Loss:
  `loss_classifier` (cross-entropy). No box regression in the CNN, as in the paper.
- Detection uses the per-class linear SVMs and ridge box regressors fitted after
  fine-tuning (engines/training/rcnn_fit.py), kept as buffers: `svm_weight` K x D,
  `svm_bias` K, `bbox_weight` K x 4 x D, `bbox_bias` K x 4 (K classes without the
  background, D = 256), and `fitted` (1 once they are). SVM margins are unbounded;
  the pipeline's thresholds are scores in [0, 1], so a score is the logistic of the
  margin: 0.5 is the SVM's decision boundary. Regressed boxes are the paper's
  (tx, ty, tw, th) offsets (BoxCoder weights 1) of the proposal, per class.
  A model not fitted yet (a checkpoint during fine-tuning) scores with the softmax
  classifier and keeps the proposals' boxes.
- Class-wise NMS is postprocess's (not done here). `detect` takes the pipeline's
  normalized, padded batch (no transform) and proposals in those pixels, and warps and
  scores at most CHUNK proposals per backbone call to bound memory.
- warp_size and context_padding are saved with the weights (the module's extra state),
  so a model file runs with the warp it was trained with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import roi_align

from engines import compact
from engines.region_forward import detect_in_image_pixels, transformed
from engines.roi_sampling import Sampling, sample_rois
from engines.two_stage import class_candidates
from pipeline.core.errors import ModelError
from pipeline.core.types import RawOutput

FEATURE_LEVEL = "0"
GRID = 4  # the pooled grid of the feature level, per side
FEATURE_SIZE = compact.BOX_REPRESENTATION  # length of fc7
CHUNK = 256  # proposals per backbone call at inference
REGRESSION_WEIGHTS = (1.0, 1.0, 1.0, 1.0)  # the paper's (tx, ty, tw, th), unscaled


def context_box(boxes: torch.Tensor, warp_size: int, padding: int) -> torch.Tensor:
    """Boxes (xyxy) grown about their centres so that, warped to warp_size, `padding`
    pixels surround the original box: each side scaled by warp_size / (warp_size - 2 padding)."""
    scale = warp_size / (warp_size - 2 * padding)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (scale / 2)
    return torch.cat([centre - half, centre + half], dim=1)


def warp(images: torch.Tensor, boxes: list[torch.Tensor], warp_size: int, padding: int) -> torch.Tensor:
    """R x 3 x S x S crops of N x 3 x H x W images: each image's boxes (xyxy, its pixels)
    with context, resampled to S x S (module docstring)."""
    grown = [context_box(b, warp_size, padding) for b in boxes]
    return roi_align(images, grown, warp_size, spatial_scale=1.0, sampling_ratio=2, aligned=True)


class RCNN(nn.Module):
    """Warp each proposal, CNN features, per-class SVMs and box regressors."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        transform: GeneralizedRCNNTransform,
        warp_size: int = 64,
        context_padding: int = 5,
        sampling: Sampling = Sampling(bg_iou_low=0.0),
        score_floor: float = 0.05,
    ) -> None:
        super().__init__()
        self.warp_size, self.context_padding = _check_warp(warp_size, context_padding)
        self.transform = transform
        self.backbone = backbone
        # names unlike a Faster R-CNN's (roi_heads.*): `init_from` one carries over the backbone only
        self.head = TwoMLPHead(backbone.out_channels * GRID * GRID, FEATURE_SIZE)
        self.cls_score = nn.Linear(FEATURE_SIZE, num_classes)
        classes = num_classes - 1
        self.register_buffer("svm_weight", torch.zeros(classes, FEATURE_SIZE))
        self.register_buffer("svm_bias", torch.zeros(classes))
        self.register_buffer("bbox_weight", torch.zeros(classes, 4, FEATURE_SIZE))
        self.register_buffer("bbox_bias", torch.zeros(classes, 4))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.box_coder = BoxCoder(REGRESSION_WEIGHTS)
        self.sampling = sampling
        self.score_floor = score_floor

    def get_extra_state(self) -> dict[str, int]:
        return {"warp_size": self.warp_size, "context_padding": self.context_padding}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.warp_size, self.context_padding = _check_warp(int(state["warp_size"]), int(state["context_padding"]))

    def features(self, images: torch.Tensor, rois: list[torch.Tensor]) -> torch.Tensor:
        """R x D fc7 features of the RoIs (xyxy in the pixels of the normalized images)."""
        crops = warp(images, rois, self.warp_size, self.context_padding)
        level = self.backbone(crops)[FEATURE_LEVEL]
        return self.head(F.adaptive_avg_pool2d(level, GRID))

    def region_features(self, images: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        """`features` of each image's boxes, all images' in order, CHUNK boxes per backbone call."""
        flat = [(i, b[start : start + CHUNK]) for i, b in enumerate(boxes) for start in range(0, len(b), CHUNK)]
        parts = [self.features(images[i : i + 1], [chunk]) for i, chunk in flat]
        return torch.cat(parts) if parts else images.new_zeros((0, FEATURE_SIZE))

    def forward(
        self, images: list[torch.Tensor], targets: list[dict] | None = None, proposals: list[torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor] | list[RawOutput]:
        batch, targets, rois = transformed("rcnn", self.transform, images, targets, proposals, self.training)
        if not self.training:
            return detect_in_image_pixels(self.detect, images, batch, rois)
        samples = [sample_rois(p, t["boxes"], t["labels"], self.sampling) for p, t in zip(rois, targets)]
        logits = self.cls_score(self.features(batch.tensors, [s.rois for s in samples]))
        return {"loss_classifier": F.cross_entropy(logits, torch.cat([s.labels for s in samples]))}

    def detect(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]], proposals: list[torch.Tensor]
    ) -> list[RawOutput]:
        """Candidates of N x 3 x H x W normalized, padded images (the pipeline's input, no
        transform) from their proposals (xyxy, those pixels): the engine's entry point."""
        features = self.region_features(images, proposals)
        rois = torch.cat(proposals) if proposals else images.new_zeros((0, 4))
        classes = self.svm_weight.shape[0]
        if bool(self.fitted):
            scores = torch.sigmoid(features @ self.svm_weight.T + self.svm_bias)
            offsets = torch.einsum("rd,kcd->rkc", features, self.bbox_weight) + self.bbox_bias
            boxes = self.box_coder.decode(offsets.reshape(len(rois), classes * 4), [rois]).reshape(len(rois), classes, 4)
        else:
            scores = F.softmax(self.cls_score(features), -1)[:, 1:]
            boxes = rois[:, None].expand(len(rois), classes, 4)
        # a background column for the shared candidate maker, which drops column 0
        scores = torch.cat([scores.new_zeros((len(rois), 1)), scores], dim=1)
        boxes = torch.cat([rois[:, None], boxes], dim=1)
        return class_candidates(scores, boxes, [len(p) for p in proposals], image_sizes, self.score_floor)


def _check_warp(warp_size: int, padding: int) -> tuple[int, int]:
    if warp_size < 16:
        raise ModelError(f"rcnn warp_size = {warp_size}: expected at least 16 pixels")
    if not 0 <= 2 * padding < warp_size:
        raise ModelError(f"rcnn context_padding = {padding}: expected 0 <= padding < warp_size / 2 ({warp_size / 2:g}), "
                         "so the box keeps some pixels of the warp")
    return warp_size, padding


def rcnn(
    *,
    num_classes: int,
    weights: None = None,
    weights_backbone: None = None,
    warp_size: int = 64,
    context_padding: int = 5,
    rois_per_image: int = 64,
    fg_fraction: float = 0.25,
    min_size: int = 800,
    max_size: int = 1333,
    image_mean: list[float] | None = None,
    image_std: list[float] | None = None,
) -> RCNN:
    """R-CNN on the compact backbone (module docstring); the transform's defaults are
    torchvision's (the trainer passes the input size, so its resize is a no-op)."""
    transform = GeneralizedRCNNTransform(
        min_size, max_size, image_mean or [0.485, 0.456, 0.406], image_std or [0.229, 0.224, 0.225]
    )
    # fine-tuning takes every proposal under IoU 0.5 as background (no 0.1 floor)
    sampling = Sampling(rois_per_image=rois_per_image, fg_fraction=fg_fraction, bg_iou_low=0.0)
    return RCNN(compact.backbone(), num_classes, transform, warp_size, context_padding, sampling)
