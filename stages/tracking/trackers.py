"""The tracker interface and the one place a `tracking.method` picks its class.

A tracker belongs to one source. `update` takes one frame's emitted detections and the
low-score candidates (ByteTrack's second association) at stream time `t` (seconds), and
the frame's image (ByteTrack reads how boxes look; None: it does without);
`end_all` ends every track (a reconnect, the end of the source) but keeps the id counter,
so ids stay unique per source for the whole run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from pipeline.core.config import TrackingConfig
from pipeline.core.types import Candidates
from stages.tracking.bytetrack import ByteTracker
from stages.tracking.iou_tracker import IouTracker
from stages.tracking.records import IdCounter
from stages.tracking.tracks import TrackUpdate, TrackView


class Tracker(Protocol):
    ids: IdCounter  # its last id: a source's next tracker goes on from it (ids unique per run)

    def update(
        self, t: float, detections: Candidates, low: Candidates, image: np.ndarray | None = None
    ) -> TrackUpdate: ...

    def end_all(self) -> list[TrackView]: ...


# `tracking.method` -> the class; the config's Literal lists the same names.
TRACKERS: dict[str, Callable[[TrackingConfig], Tracker]] = {"bytetrack": ByteTracker, "iou": IouTracker}


def make_tracker(settings: TrackingConfig) -> Tracker:
    """A new tracker for one source, of the kind `settings.method` names."""
    return TRACKERS[settings.method](settings)
