"""Payloads that flow between stages:

    Frame -> (preprocess) FrameBatch -> (detect) Inference -> (postprocess) Detections

Each payload is a plain dataclass. `Inference` and `Detections` check their shapes on
construction so a backend that returns the wrong layout fails where the mistake is
made, with a message that says what was expected. What sinks receive is
`pipeline.core.messages.Message`: the Detections with their message, serialised once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Frame:
    """One decoded image of one source."""

    source: str  # source id (name given in config, or derived from the URI)
    seq: int  # per-source sequence number, 0-based, counts kept frames
    pts: float  # presentation time in seconds on the stream clock
    capture_ts: float  # unix wall-clock seconds when the frame was decoded
    image: np.ndarray  # H x W x 3 uint8, RGB
    # monotonic time at which each stage handed the frame on; used for latency_ms
    stamps: dict[str, float] = field(default_factory=dict)
    # connection number of a live source (0 first, +1 per reconnect): pts restart with it
    session: int = 0

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def stamp(self, stage: str) -> None:
        self.stamps[stage] = time.monotonic()


@dataclass(frozen=True)
class Geometry:
    """What preprocess did to one frame, so postprocess can undo it exactly.

    input = source * scale, placed at (pad_x, pad_y) inside the model input. The x and y
    scales differ slightly because the resized size is rounded to whole pixels.
    """

    source_size: tuple[int, int]  # (height, width) of the source frame
    resized_size: tuple[int, int]  # (height, width) after scaling, before padding
    pad_x: int = 0
    pad_y: int = 0

    @property
    def scale_xy(self) -> tuple[float, float]:
        return (
            self.resized_size[1] / self.source_size[1],
            self.resized_size[0] / self.source_size[0],
        )

    def to_source(self, boxes: torch.Tensor) -> torch.Tensor:
        """Map xyxy boxes from model-input pixels to source pixels, clipped to the frame."""
        sx, sy = self.scale_xy
        offset = boxes.new_tensor([self.pad_x, self.pad_y, self.pad_x, self.pad_y])
        out = (boxes - offset) / boxes.new_tensor([sx, sy, sx, sy])
        height, width = self.source_size
        out[:, 0::2] = out[:, 0::2].clamp(0, width)
        out[:, 1::2] = out[:, 1::2].clamp(0, height)
        return out

    def to_input(self, boxes: torch.Tensor) -> torch.Tensor:
        """Map xyxy boxes from source pixels to model-input pixels (`to_source`'s inverse)."""
        sx, sy = self.scale_xy
        offset = boxes.new_tensor([self.pad_x, self.pad_y, self.pad_x, self.pad_y])
        return boxes * boxes.new_tensor([sx, sy, sx, sy]) + offset


@dataclass(frozen=True)
class SourceEnd:
    """A source is through: nothing more of it will come.

    In band (`frames` None): it travels behind the source's last frame through the
    queues and stages (each passes it on), so whoever gets it has had every frame of the
    source. Out of band (`frames` N, batch's per-file marker): sent straight to the track
    stage, which waits until it has seen N frames of the source (files are lossless).
    """

    source: str
    frames: int | None = None


@dataclass
class FrameBatch:
    """Frames (of one or more sources) stacked for the engine: images is N x 3 x H x W
    float32, normalized; `geometry[i]` says how frame i was scaled and padded."""

    frames: list[Frame]
    images: torch.Tensor
    geometry: list[Geometry]
    # region proposals per frame (P x 4 xyxy, model-input pixels), for models that take
    # them (R-CNN, Fast R-CNN): the proposals stage fills them in; None for the others
    proposals: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class RawOutput:
    """Candidate detections for one image, in model-input pixels, before selection.

    `mask_logits` (K x M x M, per candidate, for the candidate's class) is present only
    for models with a mask head.
    """

    boxes: torch.Tensor  # K x 4 xyxy
    scores: torch.Tensor  # K
    labels: torch.Tensor  # K, int64 class ids (index into class_names)
    mask_logits: torch.Tensor | None = None


@dataclass
class Inference:
    """The engine's candidates for each frame of a batch (detect -> postprocess)."""

    batch: FrameBatch
    outputs: list[RawOutput]  # one per frame, in the batch's order

    def __post_init__(self) -> None:
        if len(self.outputs) != len(self.batch):
            raise ValueError(f"Inference.outputs: expected {len(self.batch)} outputs (one per frame), got {len(self.outputs)}")


def _check_shape(name: str, array: np.ndarray, expected: tuple[int | None, ...], owner: str = "Detections") -> None:
    ok = array.ndim == len(expected) and all(
        e is None or e == a for e, a in zip(expected, array.shape)
    )
    if not ok:
        shown = tuple("*" if e is None else e for e in expected)
        raise ValueError(f"{owner}.{name}: expected shape {shown}, got {array.shape}")


@dataclass
class Candidates:
    """Boxes of one frame with scores and class ids, in source pixels (a tracker's input)."""

    boxes: np.ndarray  # N x 4 float32, xyxy
    scores: np.ndarray  # N float32
    class_ids: np.ndarray  # N int64

    def __post_init__(self) -> None:
        n = len(self.boxes)
        _check_shape("boxes", self.boxes, (n, 4), "Candidates")
        _check_shape("scores", self.scores, (n,), "Candidates")
        _check_shape("class_ids", self.class_ids, (n,), "Candidates")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass
class Detections:
    """Final detections of one frame, in source pixels.

    `low`: candidates below the emitted thresholds (down to tracking.low_score) that a
    tracker may use to keep its tracks alive; never emitted.
    """

    frame: Frame
    boxes: np.ndarray  # N x 4 float32, xyxy
    scores: np.ndarray  # N float32
    class_ids: np.ndarray  # N int64
    labels: list[str]
    masks: list[dict] | None = None  # N COCO RLEs ({"size": [h, w], "counts": str})
    low: Candidates | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        _check_shape("boxes", self.boxes, (n, 4))
        _check_shape("scores", self.scores, (n,))
        _check_shape("class_ids", self.class_ids, (n,))
        if len(self.labels) != n:
            raise ValueError(f"Detections.labels: expected {n} labels, got {len(self.labels)}")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError(f"Detections.masks: expected {n} masks, got {len(self.masks)}")

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def candidates(self) -> Candidates:
        """The emitted detections as a tracker's input."""
        return Candidates(self.boxes, self.scores, self.class_ids)
