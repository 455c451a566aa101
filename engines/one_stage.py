"""RetinaNet (Lin et al., ICCV 2017) on the compact backbone: the one-stage reference.

Rules:
- torchvision's `RetinaNet` as it is (its head, focal loss, anchor matching and
  `postprocess_detections`), on the compact MobileNetV3 + FPN backbone of
  engines/compact.py, built by the same function as the compact Faster R-CNN's. Module
  names and shapes of `backbone.*` are therefore the same, so `init_from` a compact
  Faster R-CNN model file starts the whole backbone (MobileNetV3 body and FPN) from it;
  the head starts from torchvision's initialisation (it has no counterpart in an R-CNN).
- Anchors on all four FPN levels ('0', '1', '2' at strides 8, 16, 32 and 'pool' at 64),
  base sizes 16, 32, 64 and 128 px as the compact RPN's (our objects are small: many under
  32 px at the 320 x 576 input), each with the paper's three octave scales (2^0, 2^1/3,
  2^2/3: a one-stage detector has no second stage to correct a poorly matched anchor) and
  the compact RPN's aspect ratios (h/w) 0.4, 1, 2 and 3 (cars lie wide, people stand
  tall): 12 anchors per position.
- Classes as torchvision's RetinaNet counts them: `num_classes` includes the background,
  whose sigmoid column never gets a positive and is dropped by the engine.
- Training returns the loss dict with the `loss_` prefix the training loop shows
  (`loss_classification`, `loss_bbox_regression`); inference runs through
  engines/one_stage_engine.py on the pipeline's normalized batch, not this module's forward.
- Trained from scratch or `init_from` only: no pretrained weights exist for it.
"""

from __future__ import annotations

from torch import Tensor
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.retinanet import RetinaNet

from engines import compact

BASE_SIZES = (16, 32, 64, 128)  # one per FPN level: '0', '1', '2', 'pool'
OCTAVE_SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
ASPECT_RATIOS = (0.4, 1.0, 2.0, 3.0)
TOPK_PER_LEVEL = 300  # candidates per level before NMS: scenes hold at most a few dozen objects
DETECTIONS_PER_IMAGE = 300  # the two-stage engines hand postprocess at most this many (two_stage.MAX_CANDIDATES)


def anchor_generator() -> AnchorGenerator:
    sizes = tuple(tuple(round(base * scale) for scale in OCTAVE_SCALES) for base in BASE_SIZES)
    return AnchorGenerator(sizes=sizes, aspect_ratios=(ASPECT_RATIOS,) * len(BASE_SIZES))


class CompactRetinaNet(RetinaNet):
    """torchvision's RetinaNet whose training losses carry the `loss_` prefix."""

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):  # type: ignore[override]
        result = super().forward(images, targets)
        if self.training:
            return {f"loss_{name}": value for name, value in result.items()}
        return result


def retinanet_compact(
    *, num_classes: int, weights: None = None, weights_backbone: None = None, **kwargs
) -> CompactRetinaNet:
    """RetinaNet on the compact backbone (module docstring). Trained from scratch only."""
    return CompactRetinaNet(
        compact.backbone(),
        num_classes,
        anchor_generator=anchor_generator(),
        topk_candidates=TOPK_PER_LEVEL,
        detections_per_img=DETECTIONS_PER_IMAGE,
        **kwargs,
    )
