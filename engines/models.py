"""Builders for the torchvision two-stage detector family, by architecture name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torchvision.models import detection

from engines.base import ModelInfo
from pipeline.errors import ModelError

# Classes of the synthetic scenes (`detstream synth`), background first.
SYNTH_CLASSES = ("__background__", "person", "car", "bicycle", "dog")


@dataclass(frozen=True)
class Architecture:
    build: Callable[..., torch.nn.Module]
    has_masks: bool
    input_size: tuple[int, int]  # default (height, width), 16:9 and divisible by 32


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
}


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        allowed = ", ".join(sorted(ARCHITECTURES))
        raise ModelError(f"unknown architecture {name!r} (allowed: {allowed})") from None


def build_model(name: str, num_classes: int, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised model; the same seed gives the same weights."""
    arch = architecture(name)
    with torch.random.fork_rng():  # do not disturb the caller's RNG
        torch.manual_seed(seed)
        model = arch.build(weights=None, weights_backbone=None, num_classes=num_classes)
    return model.eval()


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
