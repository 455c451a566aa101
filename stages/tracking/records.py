"""The mutable record a tracker keeps per track, and the confirmation rule of both trackers.

Rules:
- A track starts tentative (`track_id` is NO_TRACK) from one emitted detection.
- It is confirmed in the first update where its matched frames have reached `min_hits`
  *and* one of them scored at least `confirm_score` (ByteTrack starts tracks only from
  detections above a higher threshold than it matches; we ask it of any of the first
  frames, so a real object need not be confident at once). Only then does it take the
  next id of its tracker's `IdCounter` (from 1, never reused, never reset). Why: a
  detector's false positives tend to repeat where they come from (a part of a car read
  as a dog, frame after frame) but rarely with a confident score, and every track that
  is confirmed can enter zones and cross lines. The IoU baseline confirms on min_hits
  alone (confirm_score 0): it stays the plain tracker it is compared with.
- `report` confirms the tracks that are due and describes them in detection order, so
  both trackers report (and number new tracks) the same way.
- `box`, `score`, `best_score` and `hits` describe emitted detections only. `last_t` is
  the last time anything matched the track, a low-score candidate included (that is what
  kept it alive), so `last_t - first_t` is how long it was followed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stages.tracking.tracks import NO_TRACK, TrackUpdate, TrackView


@dataclass(slots=True)
class Track:
    class_id: int
    box: np.ndarray  # xyxy of the last matched emitted detection (never mutated in place)
    score: float
    first_t: float
    last_t: float
    best_score: float
    hits: int = 1
    track_id: int = NO_TRACK
    unseen_s: float = 0.0  # stream time since the last match, summed from forward steps
    tracked: bool = True  # matched in the latest update (ByteTrack's "tracked", else "lost")
    first_box: np.ndarray | None = None  # the box it started from

    @classmethod
    def start(cls, t: float, box: np.ndarray, score: float, class_id: int) -> Track:
        return cls(class_id, box, score, first_t=t, last_t=t, best_score=score, first_box=box)

    @property
    def confirmed(self) -> bool:
        return self.track_id != NO_TRACK

    def hit(self, t: float, box: np.ndarray, score: float) -> None:
        """Matched by an emitted detection at `t`."""
        self.box, self.score = box, score
        self.best_score = max(self.best_score, score)
        self.hits += 1
        self.last_t, self.unseen_s, self.tracked = t, 0.0, True  # as seen(t), without a call per track

    def seen(self, t: float) -> None:
        """Matched by anything at `t` (a low-score candidate only keeps it alive)."""
        self.last_t = t
        self.unseen_s = 0.0
        self.tracked = True

    def view(self) -> TrackView:
        return TrackView(
            self.track_id, self.class_id, self.box, self.score, self.first_t, self.last_t, self.hits, self.best_score,
            self.first_box,
        )


class IdCounter:
    """Hands out track ids 1, 2, 3 ... for one tracker's lifetime."""

    def __init__(self) -> None:
        self.last = NO_TRACK

    def confirm(self, track: Track, min_hits: int, confirm_score: float) -> bool:
        """Give `track` its id if it has just become due (see the module rules); True when
        that happened."""
        if track.confirmed or track.hits < min_hits or track.best_score < confirm_score:
            return False
        self.last += 1
        track.track_id = self.last
        return True


def report(
    owners: Sequence[Track | None], ended: list[TrackView], ids: IdCounter, min_hits: int, confirm_score: float = 0.0
) -> TrackUpdate:
    """One update's report; `owners[i]` is the track emitted detection i now belongs to.

    Tracks due are confirmed here, in detection order, so new ids follow the input order.
    """
    before = ids.last  # ids above this one are confirmed in this update
    track_ids = [NO_TRACK] * len(owners)
    started: list[TrackView] = []
    active: list[TrackView] = []
    for det, track in enumerate(owners):
        if track is None:
            continue
        if track.track_id == NO_TRACK and not ids.confirm(track, min_hits, confirm_score):
            continue
        track_ids[det] = track.track_id
        view = track.view()
        active.append(view)
        if track.track_id > before:
            started.append(view)
    return TrackUpdate(ids=np.array(track_ids, np.int64), started=started, ended=ended, active=active)
