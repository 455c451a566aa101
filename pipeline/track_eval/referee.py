"""Scoring a tracker against ground truth tracks, with the established libraries.

No metric is computed here: py-motmetrics gives the CLEAR MOT and identity figures (MOTA,
ID switches, FP, FN, precision, recall, IDF1) and TrackEval gives HOTA, DetA and AssA.
This module only prepares what both read, and its rules are:

- Frames: only the frames that have predictions (the processed frames: every `stride`-th
  one) are scored; ground truth of the frames in between is neither a miss nor a match.
  A processed frame where the tracker reported nothing is in `predicted` with no boxes.
- Classes: only `classes` are scored. Ground truth and predictions of other labels are
  dropped (the annotations cannot tell whether such a prediction is right); the dropped
  predictions are counted in `unscored`. Identities are class-agnostic, but a prediction
  only matches ground truth of its own label: across labels the distance is NaN
  (motmetrics: no match possible) and the similarity 0 (TrackEval).
- Matching: IoU of xyxy boxes (torchvision's `box_iou`); CLEAR MOT and IDF1 match at
  IoU >= 0.5 (distance 1 - IoU), HOTA averages its own IoU thresholds 0.05 ... 0.95.
- Don't care, as the MOT benchmarks treat distractors: a ground-truth object whose box is
  under `min_height` pixels tall, or whose `occluded` fraction is above `max_occluded`, is
  neither a miss when no one finds it nor a false positive when someone does. Per
  frame, predictions are first matched one-to-one (Hungarian, IoU >= 0.5, same label,
  highest total IoU) to all ground truth of the frame; a prediction matched to a
  don't-care object is removed before scoring, then the don't-care objects are removed.
  Why these defaults:
  * `max_occluded` 0.5: a ground-truth box covers the *visible* part of an object
    (synth: the tight box of its visible mask). A tracker that keeps the whole object's
    box while it is hidden overlaps that visible box by IoU of about the visible
    fraction, so past half hidden the 0.5 match would call a correct track both a miss
    and a false positive.
  * `min_height` 10 px: a 10 px box shifted by 2 px both ways has IoU 0.47, so below 10 px
    the pixel or two of localisation error (video coding, box regression) decide the 0.5
    match, not the tracker. It is also below the smallest anchor (16 px) of our models.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import motmetrics
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou
from trackeval.metrics import HOTA

MATCH_IOU = 0.5  # CLEAR MOT, IDF1 and the don't-care matching


@dataclass(frozen=True)
class TruthBox:
    """A ground-truth object in one frame."""

    track_id: int
    label: str
    box: tuple[float, float, float, float]  # xyxy pixels
    occluded: float = 0.0  # fraction of the object hidden by others or the frame border
    amodal: tuple[float, float, float, float] | None = None  # xyxy of the whole object, hidden parts included


@dataclass(frozen=True)
class TrackedBox:
    """A tracker's output in one frame: a detection with a confirmed track id."""

    track_id: int
    label: str
    box: tuple[float, float, float, float]  # xyxy pixels
    score: float = 1.0


@dataclass(frozen=True)
class DontCare:
    """Which ground-truth objects are don't care (see the module docstring for why)."""

    min_height: float = 10.0  # pixels: shorter boxes are don't care
    max_occluded: float = 0.5  # more hidden than this is don't care

    def __call__(self, obj: TruthBox) -> bool:
        return obj.box[3] - obj.box[1] < self.min_height or obj.occluded > self.max_occluded


@dataclass(frozen=True)
class TrackScore:
    idf1: float
    mota: float
    hota: float
    deta: float  # HOTA's detection accuracy
    assa: float  # HOTA's association accuracy
    precision: float
    recall: float
    id_switches: int
    fp: int
    fn: int
    gt_objects: int  # ground-truth boxes scored (summed over frames), don't care excluded
    gt_tracks: int  # distinct ground-truth identities among them
    predicted: int  # predicted boxes scored, after removing those on don't-care objects
    predicted_tracks: int
    dont_care: int  # ground-truth boxes that were don't care
    dont_care_matches: int  # predictions removed because they matched a don't-care object
    unscored: int  # predictions of labels that are not scored
    frames: int  # frames scored


@dataclass(frozen=True)
class _Frame:
    """One frame ready for both libraries: the objects and predictions that count."""

    truth: list[TruthBox]
    predicted: list[TrackedBox]
    iou: np.ndarray  # len(truth) x len(predicted), 0 across labels


def _iou(truth: Sequence[TruthBox], predicted: Sequence[TrackedBox]) -> np.ndarray:
    """IoU of every (truth, prediction) pair; 0 where the labels differ."""
    if not truth or not predicted:
        return np.zeros((len(truth), len(predicted)))
    a = torch.tensor([t.box for t in truth], dtype=torch.float64)
    b = torch.tensor([p.box for p in predicted], dtype=torch.float64)
    iou = box_iou(a, b).numpy()
    same = np.array([[t.label == p.label for p in predicted] for t in truth])
    return np.where(same, iou, 0.0)


def _unique_ids(boxes: Sequence[TruthBox] | Sequence[TrackedBox], what: str, frame: int) -> None:
    ids = [b.track_id for b in boxes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"frame {frame}: {what} repeat a track id ({sorted(ids)})")


def _prepare(truth: Sequence[TruthBox], predicted: Sequence[TrackedBox], rule: DontCare) -> tuple[_Frame, int, int]:
    """The frame's scored objects and predictions; the don't-care count and removed predictions."""
    iou = _iou(truth, predicted)
    # one-to-one, highest total IoU, among pairs at or above the match IoU (as the MOT
    # benchmarks remove predictions on distractors)
    rows, cols = linear_sum_assignment(-np.where(iou >= MATCH_IOU, iou, 0.0))
    on_dont_care = {c for r, c in zip(rows, cols) if iou[r, c] >= MATCH_IOU and rule(truth[r])}
    keep_truth = [i for i, obj in enumerate(truth) if not rule(obj)]
    keep_predicted = [j for j in range(len(predicted)) if j not in on_dont_care]
    prepared = _Frame(
        [truth[i] for i in keep_truth],
        [predicted[j] for j in keep_predicted],
        iou[np.ix_(keep_truth, keep_predicted)],
    )
    return prepared, len(truth) - len(keep_truth), len(on_dont_care)


def _clear_and_identity(frames: Mapping[int, _Frame]) -> dict[str, float]:
    """py-motmetrics: CLEAR MOT and the identity measures, one accumulator for the sequence."""
    acc = motmetrics.MOTAccumulator(auto_id=False)
    for index, frame in frames.items():
        # distance 1 - IoU; NaN (never a match) below the match IoU and across labels
        distances = np.where(frame.iou >= MATCH_IOU, 1.0 - frame.iou, np.nan)
        acc.update(
            [t.track_id for t in frame.truth], [p.track_id for p in frame.predicted], distances, frameid=index
        )
    names = ["mota", "idf1", "num_switches", "num_false_positives", "num_misses", "precision", "recall"]
    summary = motmetrics.metrics.create().compute(acc, metrics=names, name="sequence")
    return {name: summary[name].iloc[0] for name in names}


def _hota(frames: Mapping[int, _Frame]) -> dict[str, float]:
    """TrackEval's HOTA for the sequence: ids renumbered 0.. contiguous, as it requires."""
    truth_ids = sorted({t.track_id for f in frames.values() for t in f.truth})
    tracker_ids = sorted({p.track_id for f in frames.values() for p in f.predicted})
    truth_index = {tid: i for i, tid in enumerate(truth_ids)}
    tracker_index = {tid: i for i, tid in enumerate(tracker_ids)}
    data = {
        "num_timesteps": len(frames),
        "num_gt_ids": len(truth_ids),
        "num_tracker_ids": len(tracker_ids),
        "num_gt_dets": sum(len(f.truth) for f in frames.values()),
        "num_tracker_dets": sum(len(f.predicted) for f in frames.values()),
        "gt_ids": [np.array([truth_index[t.track_id] for t in f.truth], dtype=int) for f in frames.values()],
        "tracker_ids": [np.array([tracker_index[p.track_id] for p in f.predicted], dtype=int) for f in frames.values()],
        "similarity_scores": [f.iou.astype(float) for f in frames.values()],
    }
    res = HOTA().eval_sequence(data)
    # the headline figures average the alpha (IoU threshold) curve, as TrackEval's reports do
    return {name: float(np.mean(res[name])) for name in ("HOTA", "DetA", "AssA")}


def score(
    truth: Mapping[int, Sequence[TruthBox]],
    predicted: Mapping[int, Sequence[TrackedBox]],
    classes: Collection[str],
    rule: DontCare = DontCare(),
) -> TrackScore:
    """Score the frames of `predicted` (frame index -> the tracker's boxes) against `truth`
    (frame index -> objects; every scored frame must be there, empty if nothing is in view)."""
    if not predicted:
        raise ValueError("no frames to score")
    missing = sorted(set(predicted) - set(truth))
    if missing:
        raise ValueError(f"frames {missing[:5]} have predictions but no ground-truth entry")
    scored = set(classes)
    frames: dict[int, _Frame] = {}
    dont_care = removed = unscored = 0
    for index in sorted(predicted):
        objects = [t for t in truth[index] if t.label in scored]
        boxes = [p for p in predicted[index] if p.label in scored]
        _unique_ids(objects, "ground-truth objects", index)
        _unique_ids(boxes, "predictions", index)
        unscored += len(predicted[index]) - len(boxes)
        frames[index], n_dont_care, n_removed = _prepare(objects, boxes, rule)
        dont_care += n_dont_care
        removed += n_removed
    clear = _clear_and_identity(frames)
    hota = _hota(frames)
    return TrackScore(
        idf1=float(clear["idf1"]),
        mota=float(clear["mota"]),
        hota=hota["HOTA"],
        deta=hota["DetA"],
        assa=hota["AssA"],
        precision=float(clear["precision"]),
        recall=float(clear["recall"]),
        id_switches=int(clear["num_switches"]),
        fp=int(clear["num_false_positives"]),
        fn=int(clear["num_misses"]),
        gt_objects=sum(len(f.truth) for f in frames.values()),
        gt_tracks=len({t.track_id for f in frames.values() for t in f.truth}),
        predicted=sum(len(f.predicted) for f in frames.values()),
        predicted_tracks=len({p.track_id for f in frames.values() for p in f.predicted}),
        dont_care=dont_care,
        dont_care_matches=removed,
        unscored=unscored,
        frames=len(frames),
    )
