"""Draw detections on a frame with OpenCV: boxes, labels with scores, mask overlays."""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from pipeline.core.types import Detections

# Distinct RGB colours, picked by class id.
PALETTE = np.array(
    [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
     (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)],
    dtype=np.uint8,
)
MASK_ALPHA = 0.45


def color(class_id: int) -> tuple[int, int, int]:
    return tuple(int(c) for c in PALETTE[class_id % len(PALETTE)])  # type: ignore[return-value]


def annotate(detections: Detections) -> np.ndarray:
    """A copy of the frame with the detections drawn on it (RGB uint8)."""
    image = detections.frame.image.copy()
    if detections.masks:
        for rle, class_id in zip(detections.masks, detections.class_ids):
            mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)
            tint = np.array(color(int(class_id)), dtype=np.float32)
            image[mask] = (image[mask] * (1 - MASK_ALPHA) + tint * MASK_ALPHA).astype(np.uint8)
    thickness = max(1, round(image.shape[0] / 360))
    for box, score, class_id, label in zip(detections.boxes, detections.scores, detections.class_ids, detections.labels):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        rgb = color(int(class_id))
        cv2.rectangle(image, (x1, y1), (x2, y2), rgb, thickness)
        text = f"{label} {score:.2f}"
        scale = 0.4 * thickness
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - th - base - 2)
        left = max(0, min(x1, image.shape[1] - tw - 2))  # keep the label inside the frame
        cv2.rectangle(image, (left, top), (left + tw + 2, top + th + base + 2), rgb, -1)
        cv2.putText(image, text, (left + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image
