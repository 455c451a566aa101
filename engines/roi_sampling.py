"""Mini-batch sampling of region proposals for training (Fast R-CNN and R-CNN alike).

Rules:
- The ground-truth boxes join the proposals (as both papers do: they are the best positives).
- Per image at most `rois_per_image` RoIs, at most `fg_fraction` of them foreground
  (best IoU >= `fg_iou` with a ground-truth box, labelled with that box's class), the rest
  background (best IoU in [`bg_iou_low`, `fg_iou`), label 0), both drawn at random.
  Fast R-CNN leaves out proposals below 0.1 (its hard-negative heuristic); R-CNN's
  fine-tuning takes every proposal under 0.5 as background (`bg_iou_low` 0).
- In an image without objects every proposal is background (else it would teach nothing).
- Foreground first in the result; `matched` is each RoI's ground-truth box (meaningless
  for background), the box a regressor is trained towards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import box_iou

from pipeline.core.errors import ModelError


@dataclass(frozen=True)
class Sampling:
    """The papers' mini-batch sampling of RoIs (per image)."""

    rois_per_image: int = 64
    fg_fraction: float = 0.25
    fg_iou: float = 0.5
    bg_iou_low: float = 0.1

    def __post_init__(self) -> None:
        if self.rois_per_image < 1:
            raise ModelError(f"rois_per_image = {self.rois_per_image}: expected at least 1")
        if not 0.0 <= self.fg_fraction <= 1.0:
            raise ModelError(f"fg_fraction = {self.fg_fraction}: expected a fraction in [0, 1]")
        if not 0.0 <= self.bg_iou_low < self.fg_iou <= 1.0:
            raise ModelError(f"RoI sampling IoU ranges: expected 0 <= bg_iou_low ({self.bg_iou_low}) < fg_iou "
                             f"({self.fg_iou}) <= 1")


@dataclass
class RoiSample:
    """The RoIs of one image chosen for a training step, foreground first."""

    rois: torch.Tensor  # R x 4 xyxy
    labels: torch.Tensor  # R int64, 0 = background
    matched: torch.Tensor  # R x 4, the ground-truth box each RoI is regressed to (meaningless for background)


def sample_rois(
    proposals: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    sampling: Sampling,
    generator: torch.Generator | None = None,
) -> RoiSample:
    """Choose one image's training RoIs as the module docstring says."""
    rois = torch.cat([gt_boxes.to(proposals.dtype), proposals])
    if len(gt_boxes):
        best, which = box_iou(rois, gt_boxes.to(rois.dtype)).max(dim=1)
        foreground = torch.where(best >= sampling.fg_iou)[0]
        background = torch.where((best < sampling.fg_iou) & (best >= sampling.bg_iou_low))[0]
    else:
        which = torch.zeros(len(rois), dtype=torch.int64, device=rois.device)
        foreground = which[:0]
        background = torch.arange(len(rois), device=rois.device)
    n_fg = min(len(foreground), round(sampling.rois_per_image * sampling.fg_fraction))
    foreground = foreground[torch.randperm(len(foreground), generator=generator)[:n_fg].to(rois.device)]
    n_bg = min(len(background), sampling.rois_per_image - n_fg)
    background = background[torch.randperm(len(background), generator=generator)[:n_bg].to(rois.device)]
    keep = torch.cat([foreground, background])
    labels = torch.zeros(len(keep), dtype=torch.int64, device=rois.device)
    matched = torch.zeros((len(keep), 4), dtype=rois.dtype, device=rois.device)
    if len(gt_boxes):
        labels[:n_fg] = gt_labels[which[foreground]]
        matched = gt_boxes.to(rois.dtype)[which[keep]]
    return RoiSample(rois[keep], labels, matched)


