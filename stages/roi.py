"""Regions of interest of one source (`sources[i].roi`): detections outside are dropped.

A detection is kept when the anchor point of its box (bottom centre by default, as for
zones) lies inside at least one ROI polygon; with no polygon everything is kept. Weak
candidates kept for the tracker are filtered the same way, so a track cannot live on
outside the region either. Normalized polygons follow the frame's size.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.scene_config import ZoneConfig
from pipeline.core.shapes import PolygonSet, box_anchors, to_pixels
from pipeline.core.types import Candidates, Detections


class Roi:
    def __init__(self, polygons: list[ZoneConfig]) -> None:
        self.polygons = polygons
        self._size: tuple[int, int] | None = None
        self._sets: list[tuple[str, PolygonSet]] = []

    def _fit(self, width: int, height: int) -> None:
        if self._size != (width, height):
            self._size = (width, height)
            self._sets = [
                (p.anchor, PolygonSet([to_pixels(p.points, p.coordinates == "normalized", width, height)]))
                for p in self.polygons
            ]

    def _inside(self, boxes: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(boxes), bool)
        for anchor, polygon in self._sets:
            inside |= polygon.contains(box_anchors(boxes, anchor))[:, 0]
        return inside

    def keep(self, detections: Detections) -> Detections:
        if not self.polygons:
            return detections
        frame = detections.frame
        self._fit(frame.width, frame.height)
        keep = np.flatnonzero(self._inside(detections.boxes))
        low = detections.low
        if low is not None and len(low):
            weak = self._inside(low.boxes)
            low = Candidates(low.boxes[weak], low.scores[weak], low.class_ids[weak])
        return Detections(
            frame=frame,
            boxes=detections.boxes[keep],
            scores=detections.scores[keep],
            class_ids=detections.class_ids[keep],
            labels=[detections.labels[i] for i in keep],
            masks=None if detections.masks is None else [detections.masks[i] for i in keep],
            low=low,
        )
