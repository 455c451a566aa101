"""Builders of the detectors by architecture name: torchvision's two-stage family, our compact
variants, Fast R-CNN over region proposals and the one-stage reference (RetinaNet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torchvision.models import WeightsEnum, detection
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

from engines import compact, fast_rcnn, one_stage, rcnn
from engines.base import ModelInfo
from pipeline.core.errors import ModelError

# Classes of the synthetic scenes (`detstream synth`), background first.
SYNTH_CLASSES = ("__background__", "person", "car", "bicycle", "dog")
COCO_CLASSES = 91  # torchvision's COCO heads (80 classes plus unused ids)


# How an architecture runs (which engine class drives it):
TWO_STAGE = "two_stage"  # RPN + RoI heads, split into exportable parts (engines/two_stage.py)
REGIONS = "regions"  # classifies region proposals given from outside: selective search (engines/region_engine.py)
ONE_STAGE = "one_stage"  # dense boxes and scores straight from the feature maps, no proposals (engines/one_stage_engine.py)
KINDS = (TWO_STAGE, REGIONS, ONE_STAGE)


@dataclass(frozen=True)
class Architecture:
    build: Callable[..., torch.nn.Module]
    has_masks: bool
    input_size: tuple[int, int]  # default (height, width), 16:9 and divisible by 32
    pretrained: bool = True  # torchvision publishes COCO / ImageNet weights for it
    kind: str = TWO_STAGE

    @property
    def proposals(self) -> bool:
        """Takes region proposals from outside (selective search): it has no RPN."""
        return self.kind == REGIONS


ARCHITECTURES: dict[str, Architecture] = {
    "fasterrcnn_resnet50_fpn": Architecture(detection.fasterrcnn_resnet50_fpn, False, (512, 896)),
    "fasterrcnn_resnet50_fpn_v2": Architecture(detection.fasterrcnn_resnet50_fpn_v2, False, (512, 896)),
    "fasterrcnn_mobilenet_v3_large_fpn": Architecture(
        detection.fasterrcnn_mobilenet_v3_large_fpn, False, (512, 896)
    ),
    "fasterrcnn_mobilenet_v3_large_320_fpn": Architecture(
        detection.fasterrcnn_mobilenet_v3_large_320_fpn, False, (320, 576)
    ),
    "maskrcnn_resnet50_fpn": Architecture(detection.maskrcnn_resnet50_fpn, True, (512, 896)),
    "maskrcnn_resnet50_fpn_v2": Architecture(detection.maskrcnn_resnet50_fpn_v2, True, (512, 896)),
    "fasterrcnn_compact": Architecture(compact.fasterrcnn_compact, False, (320, 576), pretrained=False),
    "maskrcnn_compact": Architecture(compact.maskrcnn_compact, True, (320, 576), pretrained=False),
    "maskrcnn_compact_px": Architecture(compact.maskrcnn_compact_px, True, (384, 672), pretrained=False),
    "fast_rcnn": Architecture(fast_rcnn.fast_rcnn, False, (320, 576), pretrained=False, kind=REGIONS),
    "rcnn": Architecture(rcnn.rcnn, False, (320, 576), pretrained=False, kind=REGIONS),
    "retinanet_compact": Architecture(one_stage.retinanet_compact, False, (320, 576), pretrained=False, kind=ONE_STAGE),
}


def takes_proposals(name: str) -> bool:
    """True for an architecture that classifies given regions (R-CNN, Fast R-CNN); False for
    the others, and for a name we do not build (an engine passed in, as the tests' are)."""
    return name in ARCHITECTURES and ARCHITECTURES[name].proposals


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        allowed = ", ".join(sorted(ARCHITECTURES))
        raise ModelError(f"unknown architecture {name!r} (allowed: {allowed})") from None


def build_model(
    name: str,
    num_classes: int,
    seed: int = 0,
    weights: WeightsEnum | None = None,
    weights_backbone: str | None = None,
    **kwargs,
) -> torch.nn.Module:
    """A model with `num_classes` outputs (background included).

    `weights` (torchvision's weights enum of this architecture) starts from that trained
    detector, built as torchvision builds it (frozen BatchNorm in a pretrained backbone),
    and replaces its class heads; engines/torchvision_models.py `coco_start` passes it and
    turns download and cache errors into clear ones. `weights_backbone="imagenet"` starts
    the backbone from ImageNet (downloads once into torch's cache, one clear message when
    that is impossible). The same seed gives the same random initialisation.
    """
    arch = architecture(name)
    if (weights or weights_backbone) and not arch.pretrained:
        raise ModelError(f"{name} has no pretrained weights: it is trained from scratch (weights: none)")
    with torch.random.fork_rng():  # do not disturb the caller's RNG
        torch.manual_seed(seed)
        if weights is not None:
            model = arch.build(weights=weights, **kwargs)
            _replace_heads(model, num_classes)
            return model.eval()
        backbone = "DEFAULT" if weights_backbone == "imagenet" else None
        try:
            model = arch.build(weights=None, weights_backbone=backbone, num_classes=num_classes, **kwargs)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad cache file a RuntimeError
            raise ModelError(
                f"cannot load torchvision's ImageNet backbone weights for {name}: {exc}. Offline? Put the weight "
                f"file in {torch.hub.get_dir()}/checkpoints/, or train from scratch (weights_backbone: none)"
            ) from exc
    return model.eval()


def _replace_heads(model: torch.nn.Module, num_classes: int) -> None:
    """Swap COCO's class-specific predictors for fresh ones with `num_classes`."""
    heads = model.roi_heads
    if num_classes == COCO_CLASSES:
        return
    heads.box_predictor = FastRCNNPredictor(heads.box_predictor.cls_score.in_features, num_classes)
    if heads.mask_predictor is not None:
        in_channels = heads.mask_predictor.conv5_mask.in_channels
        hidden = heads.mask_predictor.conv5_mask.out_channels
        heads.mask_predictor = MaskRCNNPredictor(in_channels, hidden, num_classes)


def untrained(name: str, class_names: tuple[str, ...] = SYNTH_CLASSES) -> tuple[torch.nn.Module, ModelInfo]:
    """An untrained model with the synthetic classes: plumbing runs, detections are noise."""
    arch = architecture(name)
    info = ModelInfo(
        name=f"{name}-untrained",
        architecture=name,
        class_names=class_names,
        input_size=arch.input_size,
        has_masks=arch.has_masks,
    )
    return build_model(name, len(class_names)), info
