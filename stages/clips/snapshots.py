"""Snapshots: a JPEG of the frame with the best-scoring box of a track.

Rules:
- A track's best box is its highest-scoring detection (the detector's score, in the
  frame's message) from its confirmation (its first frame with a `track_id`) until the
  clip it belongs to is closed; ties keep the earlier frame.
- Best frames are kept only for tracks of classes the source's rules can match, and
  forgotten once the track has ended and no open clip needs it. What is held is a
  reference to the frame's Message (no copy): memory is at most one frame per live track
  of those classes.
- `annotated`: the whole frame as the video sink draws it (boxes, labels, ids, zones,
  lines); `crop`: the best box alone, plain pixels, widened by `crop_margin` of its width
  and height on each side, clipped to the frame. Written atomically (pipeline/core/files.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.clips_config import SnapshotConfig
from pipeline.core.files import write_atomic
from pipeline.core.messages import Message
from stages.sinks.draw import annotate


@dataclass(frozen=True)
class Best:
    score: float
    message: Message
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class SnapshotJob:
    """What to write for one track of a clip: its best frame, and where."""

    track_id: int
    best: Best
    paths: dict[str, Path]  # kind (annotated, crop) -> file


class BestBoxes:
    """The best box of each track of one source (see the rules)."""

    def __init__(self, classes: frozenset[str] | None) -> None:
        self.classes = classes
        self.best: dict[int, Best] = {}

    def observe(self, message: Message) -> None:
        for det in message.body["detections"]:
            track_id = det.get("track_id")
            if track_id is None or (self.classes is not None and det["label"] not in self.classes):
                continue
            held = self.best.get(track_id)
            if held is None or det["score"] > held.score:
                self.best[track_id] = Best(det["score"], message, tuple(det["box"]))

    def forget(self, track_ids: set[int]) -> None:
        for track_id in track_ids:
            self.best.pop(track_id, None)


def snapshot_paths(folder: Path, name: str, track_id: int, config: SnapshotConfig) -> dict[str, Path]:
    """Where a track's snapshots of the clip `folder/name.mp4` go (decided when its event is stamped)."""
    paths = {}
    if config.annotated:
        paths["annotated"] = folder / f"{name}-t{track_id}.jpg"
    if config.crop:
        paths["crop"] = folder / f"{name}-t{track_id}-crop.jpg"
    return paths


def crop(image: np.ndarray, box: tuple[float, float, float, float], margin: float) -> np.ndarray:
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(np.floor(x1 - dx))), max(0, int(np.floor(y1 - dy)))
    right, bottom = min(width, int(np.ceil(x2 + dx))), min(height, int(np.ceil(y2 + dy)))
    return image[top:max(bottom, top + 1), left:max(right, left + 1)]


def write_snapshots(job: SnapshotJob, config: SnapshotConfig) -> list[Path]:
    """Write the job's JPEGs; the paths written."""
    written = []
    for kind, path in job.paths.items():
        if kind == "annotated":
            image = annotate(job.best.message)
        else:
            image = crop(job.best.message.detections.frame.image, job.best.box, config.crop_margin)
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, config.quality])
        if not ok:
            raise ValueError(f"JPEG encoding failed for {path.name}")
        write_atomic(path, encoded.tobytes())
        written.append(path)
    return written
