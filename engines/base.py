"""The engine interface: what the detect stage needs from any backend.

A backend (PyTorch now; ONNX Runtime and TensorRT later) is one class in its own module
with an `info` attribute and an `infer` method. Stages only see this interface.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch

from pipeline.core.types import RawOutput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Class names that stand for no class: the background (label 0) and the COCO category ids
# that COCO leaves unused (torchvision's COCO metadata names them "N/A"). Such labels are
# never a detection.
PLACEHOLDER_CLASSES = frozenset({"__background__", "N/A"})


@dataclass(frozen=True)
class ModelInfo:
    """Everything the pipeline needs to feed a model and read its output."""

    name: str
    architecture: str
    class_names: tuple[str, ...]  # index = label id; index 0 is the background; see PLACEHOLDER_CLASSES
    input_size: tuple[int, int]  # (height, width) of the padded model input
    mean: tuple[float, float, float] = IMAGENET_MEAN  # on [0, 1] RGB
    std: tuple[float, float, float] = IMAGENET_STD
    score_threshold: float = 0.5
    has_masks: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # training fingerprint, mAP, ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        data = dict(data)
        for key in ("class_names", "input_size", "mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


class Engine(Protocol):
    """A loaded model ready to run on batches of preprocessed images."""

    info: ModelInfo

    def infer(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]], proposals: list[torch.Tensor] | None = None
    ) -> list[RawOutput]:
        """Run on N x 3 x H x W normalized images.

        `image_sizes` holds each image's (height, width) before padding, so boxes can be
        clipped to the real image. `proposals` (one P x 4 xyxy tensor per image, input
        pixels) only for models that classify given regions (engines/region_engine.py);
        the others compute their own. Returns one `RawOutput` per image, boxes in input
        pixels.
        """
        ...


def describe_engine(engine: Engine) -> str:
    """What runs the model, for the line a run starts with: backend (engine class), device, threads.

    A backend class names itself in `backend` (e.g. "ONNX Runtime"); its `device` and
    `threads` attributes, when it has them, say where it runs (else: CPU, torch's threads).
    """
    backend = getattr(engine, "backend", type(engine).__name__)
    device = getattr(engine, "device", "cpu")
    threads = getattr(engine, "threads", None) or torch.get_num_threads()
    return f"{backend} ({type(engine).__name__}) on {device}, {threads} threads"
