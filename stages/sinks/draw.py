"""Draw a frame's message with OpenCV: boxes, labels with scores and track ids, mask
overlays, and where the source is tracked, each track's trail and the source's zones and
lines with their running counts."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from pipeline.core.messages import Message, Overlay

# Distinct RGB colours, picked by class id.
PALETTE = np.array(
    [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
     (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)],
    dtype=np.uint8,
)
MASK_ALPHA = 0.45
SCENE_COLOR = (255, 215, 0)
TRAIL_POINTS = 32  # anchor points kept per track
TRAIL_FORGET = 50  # frames without a track before its trail is dropped


def color(class_id: int) -> tuple[int, int, int]:
    return tuple(int(c) for c in PALETTE[class_id % len(PALETTE)])  # type: ignore[return-value]


class Trails:
    """The recent bottom-centre points of each track of one source (drawing state)."""

    def __init__(self) -> None:
        self.points: dict[int, deque[tuple[int, int]]] = {}
        self.last_seen: dict[int, int] = {}
        self.frames = 0

    def add(self, message: Message) -> None:
        self.frames += 1
        for det in message.body["detections"]:
            track_id = det.get("track_id")
            if track_id is None:
                continue
            x1, _, x2, y2 = det["box"]
            self.points.setdefault(track_id, deque(maxlen=TRAIL_POINTS)).append((round((x1 + x2) / 2), round(y2)))
            self.last_seen[track_id] = self.frames
        for track_id in [t for t, seen in self.last_seen.items() if self.frames - seen > TRAIL_FORGET]:
            del self.points[track_id], self.last_seen[track_id]


def _label(image: np.ndarray, text: str, x: int, y: int, rgb: tuple[int, int, int], thickness: int) -> None:
    scale = 0.4 * thickness
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    top = max(0, y - th - base - 2)
    left = max(0, min(x, image.shape[1] - tw - 2))  # keep the label inside the frame
    cv2.rectangle(image, (left, top), (left + tw + 2, top + th + base + 2), rgb, -1)
    cv2.putText(image, text, (left + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _total(by_class: dict[str, int]) -> int:
    return sum(by_class.values())


def _scene(image: np.ndarray, overlay: Overlay, thickness: int) -> None:
    for name, polygon in overlay.zones.items():
        points = np.round(polygon).astype(np.int32)
        cv2.polylines(image, [points], True, SCENE_COLOR, thickness, cv2.LINE_AA)
        inside = _total(overlay.counts.get(name, {}).get("inside", {}))
        _label(image, f"{name}: {inside} inside", int(points[:, 0].min()), int(points[:, 1].min()) + 14 * thickness,
               (90, 90, 0), thickness)
    for name, segment in overlay.lines.items():
        (x1, y1), (x2, y2) = np.round(segment).astype(int)
        cv2.arrowedLine(image, (x1, y1), (x2, y2), SCENE_COLOR, thickness, cv2.LINE_AA, tipLength=0.03)
        counts = overlay.counts.get(name, {})
        text = f"{name}: " + " ".join(f"{direction} {_total(by_class)}" for direction, by_class in counts.items())
        _label(image, text, x1 + 4 * thickness, y1, (90, 90, 0), thickness)  # at the arrow's tail


def annotate(message: Message, trails: Trails | None = None) -> np.ndarray:
    """A copy of the frame with the message drawn on it (RGB uint8). `trails`: the
    source's trail state, updated with this frame."""
    detections = message.detections
    image = detections.frame.image.copy()
    if detections.masks:
        for rle, class_id in zip(detections.masks, detections.class_ids):
            mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)
            tint = np.array(color(int(class_id)), dtype=np.float32)
            image[mask] = (image[mask] * (1 - MASK_ALPHA) + tint * MASK_ALPHA).astype(np.uint8)
    thickness = max(1, round(image.shape[0] / 360))
    if message.overlay is not None:
        _scene(image, message.overlay, thickness)
    if trails is not None:
        trails.add(message)
        for points in trails.points.values():
            if len(points) > 1:
                cv2.polylines(image, [np.array(points, np.int32)], False, (255, 255, 255), thickness, cv2.LINE_AA)
    for det in message.body["detections"]:
        x1, y1, x2, y2 = (int(round(v)) for v in det["box"])
        rgb = color(det["class_id"])
        cv2.rectangle(image, (x1, y1), (x2, y2), rgb, thickness)
        track = f" #{det['track_id']}" if det.get("track_id") else ""
        _label(image, f"{det['label']} {det['score']:.2f}{track}", x1, y1, rgb, thickness)
    return image
