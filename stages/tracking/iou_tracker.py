"""The plain IoU tracker: the baseline ByteTrack is compared with (`tracking.method: iou`).

Rules: no motion model and no memory. Each update pairs the emitted detections with the
previous update's tracks greedily, highest IoU first (IoU >= match_iou, same class);
unmatched detections start tentative tracks; a track not matched in this update ends at
once (reported in `ended` if it was confirmed). Confirmation, ids and reports follow the
same rules as ByteTracker (min_hits, ids from 1 never reused), except that
`confirm_score` is not used: the baseline stays the plain tracker of issue #16. `low` and
`image` are ignored (no second association, no looks).
"""

from __future__ import annotations

import numpy as np

from pipeline.core.config import TrackingConfig
from pipeline.core.types import Candidates
from stages.tracking.matching import assign_greedy, class_iou
from stages.tracking.records import IdCounter, Track, report
from stages.tracking.tracks import TrackUpdate, TrackView


class IouTracker:
    """One source's tracks. Not thread-safe: one stage thread owns it."""

    def __init__(self, settings: TrackingConfig) -> None:
        self.settings = settings
        self.tracks: list[Track] = []
        self.ids = IdCounter()

    def update(
        self, t: float, detections: Candidates, low: Candidates, image: np.ndarray | None = None
    ) -> TrackUpdate:
        previous = self.tracks
        last_boxes = np.array([track.box for track in previous], np.float32).reshape(-1, 4)
        last_classes = np.array([track.class_id for track in previous], np.int64)
        overlap = class_iou(last_boxes, last_classes, detections.boxes, detections.class_ids)
        rows, cols = assign_greedy(overlap, self.settings.match_iou)

        boxes = np.array(detections.boxes, np.float32)  # a copy: views must not alias the input
        scores = detections.scores.tolist()
        classes = detections.class_ids.tolist()
        owners: list[Track | None] = [None] * len(detections)
        for row, det in zip(rows.tolist(), cols.tolist()):
            previous[row].hit(t, boxes[det], scores[det])
            owners[det] = previous[row]
        matched = np.zeros(len(previous), bool)
        matched[rows] = True
        ended = [track.view() for track, hit in zip(previous, matched.tolist()) if not hit and track.confirmed]
        self.tracks = [
            owner if owner is not None else Track.start(t, boxes[det], scores[det], classes[det])
            for det, owner in enumerate(owners)
        ]
        return report(self.tracks, ended, self.ids, self.settings.min_hits)

    def end_all(self) -> list[TrackView]:
        """End every confirmed track now; tentative ones are dropped; the id counter stays."""
        ended = [track.view() for track in self.tracks if track.confirmed]
        self.tracks = []
        return ended
