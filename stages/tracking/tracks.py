"""What a tracker reports after each frame: confirmed tracks and the ids of detections.

Only confirmed tracks (matched in `min_hits` frames, one of them scoring `confirm_score`) are ever reported: a tentative
track has no id yet, and nothing downstream (messages, zones, lines) sees it.
Times are stream seconds (pts) of the source, never wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

NO_TRACK = 0  # the id of a detection that belongs to no confirmed track (ids start at 1)


class TrackView(NamedTuple):
    """A confirmed track as of the latest update. A NamedTuple, not a dataclass: trackers
    make one per matched track per frame, and a frozen dataclass costs ~5x more to build."""

    track_id: int  # unique per source for the whole run, from 1
    class_id: int
    box: np.ndarray  # 4 float, xyxy source pixels: the last matched detection's box
    score: float  # score of the last matched detection
    first_t: float  # stream time of the first matched frame
    last_t: float  # stream time of the last matched frame
    hits: int  # frames matched so far
    best_score: float  # highest score of a matched detection so far
    first_box: np.ndarray | None = None  # 4 float, xyxy: the first matched detection's box (where it was first seen)


@dataclass(frozen=True)
class TrackUpdate:
    """The result of one `update`."""

    ids: np.ndarray  # int64 per emitted detection (input order): its confirmed track's id, or NO_TRACK
    started: list[TrackView] = field(default_factory=list)  # confirmed in this update
    ended: list[TrackView] = field(default_factory=list)  # unmatched for longer than buffer_s: gone
    active: list[TrackView] = field(default_factory=list)  # confirmed and matched in this update (started included)
