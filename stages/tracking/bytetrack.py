"""ByteTrack-style tracking: a Kalman motion model, three associations, and memory.

Rules of one `update(t, detections, low, image)`:
1. Every track is predicted to `t` (stream seconds). Time that goes backwards or repeats
   (t <= the previous t) counts as dt = 0: nothing moves, nothing ages, nothing fails.
2. Emitted detections vs confirmed tracks, tracked and lost: Hungarian on 1 - IoU of the
   predicted box, pairs need IoU >= match_iou and the same class. Where the choice is
   close (the detection has IoU >= match_iou with another track, or the track with
   another detection), the pair also needs looks (stages/tracking/appearance.py) at most
   `look_gate` apart: two people walking past each other come out of their overlap with
   their own identities, where IoU and motion alone often swap them. An isolated pair
   is never refused for its look (light changes, a person turns): that would only break
   the track in two.
3. Confirmed tracks still unmatched that were matched in the previous update ("tracked",
   not "lost") vs the low-score candidates, IoU >= low_match_iou. A low match updates the
   motion model and keeps the track alive, but a low candidate never starts a track, has
   no id in the output, and leaves the track out of `active` (no emitted detection of
   this frame carries its id).
4. Tentative tracks vs the emitted detections left, buffered IoU >= match_iou: both
   boxes grown by TENTATIVE_BUFFER of their size on every side (matching.buffered). A
   tentative track has no velocity yet, so its prediction is its last box; with frames
   thinned by stride or max_fps a narrow moving box (a cyclist: tall and thin, moving
   sideways) is further than its own width from it, plain IoU is 0, and the object
   would never be confirmed. Flicker is min_hits' job. The buffered boxes reach
   neighbours too, so here looks must always be at most `look_gate` apart.
   A tentative track left unmatched is deleted at once.
5. Every emitted detection still unmatched starts a tentative track. A track is confirmed,
   and gets an id, in the first update where its emitted matches have reached min_hits
   and one of them scored confirm_score (stages/tracking/records.py; also on the very
   first frame of a video: unlike ByteTrack, min_hits always rules).
6. A track's look starts as its first detection's and follows its emitted matches (a
   moving average, LOOK_RATE per match), but only from detections that overlap no other
   (IoU < CROWDED_IOU): where boxes overlap, a box's bands mix two objects.
7. A confirmed track unmatched for more than buffer_s of stream time ends: it is reported
   once in `ended` and forgotten. Until then it is "lost" and step 2 can re-find it.
   Unmatched time is summed from the forward steps of the clock: t - last_t for a steady
   clock, and after a jump backwards tracks neither end at once nor linger until the
   clock catches up with their last_t.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pipeline.core.config import TrackingConfig
from pipeline.core.types import Candidates
from stages.tracking.kalman import KalmanBoxes
from stages.tracking.appearance import BANDS, distance, looks
from stages.tracking.matching import assign, buffered, class_iou, iou
from stages.tracking.records import IdCounter, Track, report
from stages.tracking.tracks import NO_TRACK, TrackUpdate, TrackView


def nonzero(mask: np.ndarray) -> np.ndarray:
    """Indices where a 1-d mask is True (np.flatnonzero without its Python-level overhead)."""
    return mask.nonzero()[0]


# how much a tentative track's box and a detection grow for step 4 (of their width and height, each side)
TENTATIVE_BUFFER = 0.5
# Rule 6: a new look weighs this much in a track's look (about the last 5 matches count).
LOOK_RATE = 0.2
# Rule 6: a detection overlapping another by this much IoU or more does not update a look.
CROWDED_IOU = 0.3


def _no_looks(n: int) -> np.ndarray:
    """Looks of `n` tracks that have none yet."""
    return np.full((n, BANDS, 3), np.nan, np.float32)


class Pairs(NamedTuple):
    """Matches of one update: track rows with indices into detections or low candidates."""

    rows: np.ndarray
    picks: np.ndarray


class ByteTracker:
    """One source's tracks. Not thread-safe: one stage thread owns it."""

    def __init__(self, settings: TrackingConfig) -> None:
        self.settings = settings
        self.tracks: list[Track] = []
        self.kalman = KalmanBoxes()  # row i is the motion of tracks[i]
        self.looks = _no_looks(0)  # row i is the look of tracks[i]; NaN: none (no image yet)
        self.ids = IdCounter()
        self.t: float | None = None  # stream time of the previous update

    def update(
        self, t: float, detections: Candidates, low: Candidates, image: np.ndarray | None = None
    ) -> TrackUpdate:
        """One frame at stream time `t`, by the rules of the module docstring (`image`: the
        frame, H x W x 3, for the looks; None or `look_gate` 1: IoU and motion only)."""
        dt = 0.0 if self.t is None or t <= self.t else t - self.t
        self.t = t
        lost = np.array([not track.tracked for track in self.tracks], bool)
        self.kalman.hold_size(lost)
        self.kalman.predict(dt)
        seen = None if image is None or self.settings.look_gate >= 1 else looks(image, detections.boxes)
        high, weak, tentative, fresh = self._associate(detections, low, seen)
        self.kalman.correct(
            np.concatenate([high.rows, weak.rows, tentative.rows]),
            np.concatenate([detections.boxes[high.picks], low.boxes[weak.picks], detections.boxes[tentative.picks]]),
        )

        boxes = np.array(detections.boxes, np.float32)  # a copy: views must not alias the input
        scores = detections.scores.tolist()
        owners: list[Track | None] = [None] * len(detections)
        rows, dets = np.concatenate([high.rows, tentative.rows]), np.concatenate([high.picks, tentative.picks])
        for row, det in zip(rows.tolist(), dets.tolist()):
            self.tracks[row].hit(t, boxes[det], scores[det])
            owners[det] = self.tracks[row]
        if seen is not None and len(rows):
            self._learn_looks(rows, dets, detections.boxes, seen)
        for row in weak.rows.tolist():
            self.tracks[row].seen(t)
        matched = np.zeros(len(self.tracks), bool)
        matched[high.rows] = matched[weak.rows] = matched[tentative.rows] = True
        ended = self._forget(matched, dt)

        classes = detections.class_ids.tolist()
        for det in fresh.tolist():
            owners[det] = track = Track.start(t, boxes[det], scores[det], classes[det])
            self.tracks.append(track)
        if len(fresh):
            self.kalman.add(detections.boxes[fresh])
            self.looks = np.concatenate([self.looks, _no_looks(len(fresh)) if seen is None else seen[fresh]])
        return report(owners, ended, self.ids, self.settings.min_hits, self.settings.confirm_score)

    def _learn_looks(self, rows: np.ndarray, dets: np.ndarray, boxes: np.ndarray, seen: np.ndarray) -> None:
        """Rule 6: track rows[i] matched detection dets[i] (of `boxes`, looks `seen`)."""
        crowd = iou(boxes[dets], boxes)
        crowd[np.arange(len(dets)), dets] = 0.0  # a box overlaps itself
        alone = crowd.max(axis=1) < CROWDED_IOU
        rows, dets = rows[alone], dets[alone]
        self.looks[rows] = (1 - LOOK_RATE) * self.looks[rows] + LOOK_RATE * seen[dets]

    def _rule_out_unlike(
        self, overlap: np.ndarray, asked: np.ndarray, rows: np.ndarray, dets: np.ndarray, seen: np.ndarray
    ) -> None:
        """Steps 2 and 4: zero the cells of `overlap` (track rows `rows` x detections `dets`,
        looks `seen`) where `asked` holds and the two look more than look_gate apart. Only
        those few pairs are compared; a track with no look (NaN) is never ruled out."""
        cells = asked.nonzero()
        unlike = distance(self.looks[rows[cells[0]]], seen[dets[cells[1]]]) > self.settings.look_gate
        overlap[cells[0][unlike], cells[1][unlike]] = 0.0

    def _associate(
        self, detections: Candidates, low: Candidates, seen: np.ndarray | None
    ) -> tuple[Pairs, Pairs, Pairs, np.ndarray]:
        """Steps 2 to 4 of the module rules, on the predicted boxes: the matches of
        confirmed tracks with detections, of tracked ones with low candidates, of
        tentative ones with detections; and the detections left over. `seen`: the
        detections' looks, or None."""
        settings = self.settings
        tracks = self.tracks
        classes = np.array([track.class_id for track in tracks], np.int64)
        confirmed = np.array([track.track_id for track in tracks], np.int64) != NO_TRACK
        tracked = np.array([track.tracked for track in tracks], bool)
        # One overlap matrix for all three steps: columns are the detections, then the
        # low candidates (one IoU call costs less than two at these sizes).
        n = len(detections)
        overlap = np.zeros((len(tracks), n + len(low)), np.float32)
        if overlap.size:
            boxes = np.concatenate([detections.boxes, low.boxes])
            box_classes = np.concatenate([detections.class_ids, low.class_ids])
            overlap = class_iou(self.kalman.boxes(), classes, boxes, box_classes)
        if seen is not None:  # step 2: looks decide only a close choice
            near = overlap[:, :n] >= settings.match_iou
            close = near & ((near.sum(axis=1) > 1)[:, None] | (near.sum(axis=0) > 1)[None, :])
            self._rule_out_unlike(overlap[:, :n], close, np.arange(len(tracks)), np.arange(n), seen)

        def match(pool: np.ndarray, picks: np.ndarray, gate: float) -> Pairs:
            """Pairs among track rows `pool` and columns `picks` of `overlap`, IoU >= gate."""
            if not len(pool) or not len(picks):  # often so for steps 3 and 4: skip the maths
                return Pairs(pool[:0], picks[:0])
            rows, cols = assign(overlap[pool][:, picks], gate)
            return Pairs(pool[rows], picks[cols])

        high = match(nonzero(confirmed), np.arange(n), settings.match_iou)
        waiting = confirmed & tracked
        waiting[high.rows] = False
        weak = match(nonzero(waiting), np.arange(n, n + len(low)), settings.low_match_iou)
        free = np.ones(n, bool)
        free[high.picks] = False
        tentative = Pairs(np.zeros(0, np.intp), np.zeros(0, np.intp))
        pool, picks = nonzero(~confirmed), nonzero(free)
        if len(pool) and len(picks):
            grown = class_iou(buffered(self.kalman.boxes()[pool], TENTATIVE_BUFFER), classes[pool],
                              buffered(detections.boxes[picks], TENTATIVE_BUFFER), detections.class_ids[picks])
            if seen is not None:  # step 4: looks must always agree
                self._rule_out_unlike(grown, grown >= settings.match_iou, pool, picks, seen)
            rows, cols = assign(grown, settings.match_iou)
            tentative = Pairs(pool[rows], picks[cols])
        free[tentative.picks] = False
        return high, Pairs(weak.rows, weak.picks - n), tentative, nonzero(free)  # weak: indices into low

    def _forget(self, matched: np.ndarray, dt: float) -> list[TrackView]:
        """Age the unmatched tracks by `dt`: drop tentative ones, end confirmed ones unseen
        for more than buffer_s; returns the ended ones."""
        ended: list[TrackView] = []
        keep = matched.copy()
        for row in nonzero(~matched).tolist():
            track = self.tracks[row]
            track.tracked = False
            track.unseen_s += dt
            if track.confirmed and track.unseen_s <= self.settings.buffer_s:
                keep[row] = True  # lost: step 2 may find it again
            elif track.confirmed:
                ended.append(track.view())
        if not keep.all():
            self.tracks = [track for track, kept in zip(self.tracks, keep.tolist()) if kept]
            self.kalman.keep(keep)
            self.looks = self.looks[keep]
        return ended

    def end_all(self) -> list[TrackView]:
        """End every confirmed track now (lost ones included); tentative ones are dropped.

        The id counter stays, so ids remain unique for the tracker's lifetime.
        """
        ended = [track.view() for track in self.tracks if track.confirmed]
        self.tracks = []
        self.kalman = KalmanBoxes()
        self.looks = _no_looks(0)
        self.t = None  # a reconnected source may restart its clock
        return ended
