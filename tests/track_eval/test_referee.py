"""The referee on hand-made tracks: figures worked out by hand equal the libraries' results."""

from __future__ import annotations

import math

import pytest

from pipeline.track_eval.referee import DontCare, TrackedBox, TruthBox, score

CLASSES = ("person", "car")


def box(x: float, y: float, w: float = 20, h: float = 40) -> tuple[float, float, float, float]:
    return (x, y, x + w, y + h)


# Two people walking right, 100 px apart, for 4 frames.
def a_box(t: int) -> tuple[float, float, float, float]:
    return box(10 + 5 * t, 10)


def b_box(t: int) -> tuple[float, float, float, float]:
    return box(110 + 5 * t, 10)


def two_tracks(frames: int = 4) -> dict[int, list[TruthBox]]:
    return {t: [TruthBox(1, "person", a_box(t)), TruthBox(2, "person", b_box(t))] for t in range(frames)}


def test_hand_worked_example():
    # Ground truth: people A (id 1) and B (id 2) in frames 0-3, 8 boxes to find; in
    # frame 1 also a person C (id 3) 6 px tall: don't care (under 10 px).
    truth = two_tracks()
    truth[1].append(TruthBox(3, "person", box(200, 100, 4, 6)))
    # Tracker: A is track 11 in frames 0-1 and track 13 in frames 2-3 (an ID switch);
    # B is track 12 throughout; track 14 finds C in frame 1 (removed: matched to a
    # don't-care object); track 15 in frame 3 is on nothing (a false positive).
    predicted = {
        0: [TrackedBox(11, "person", a_box(0)), TrackedBox(12, "person", b_box(0))],
        1: [TrackedBox(11, "person", a_box(1)), TrackedBox(12, "person", b_box(1)),
            TrackedBox(14, "person", box(200, 100, 4, 6))],
        2: [TrackedBox(13, "person", a_box(2)), TrackedBox(12, "person", b_box(2))],
        3: [TrackedBox(13, "person", a_box(3)), TrackedBox(12, "person", b_box(3)),
            TrackedBox(15, "person", box(300, 200))],
    }
    result = score(truth, predicted, CLASSES)
    # CLEAR MOT: every object matched in every frame, so FN = 0; FP = 1 (track 15); A's
    # match changes from 11 to 13 in frame 2: 1 ID switch. 8 objects.
    #   MOTA = 1 - (FN + FP + IDSW) / GT = 1 - (0 + 1 + 1) / 8 = 0.75
    #   precision = matches / predictions = 8 / 9, recall = 8 / 8
    assert (result.fn, result.fp, result.id_switches, result.gt_objects) == (0, 1, 1, 8)
    assert result.mota == pytest.approx(0.75)
    assert (result.precision, result.recall) == (pytest.approx(8 / 9), pytest.approx(1.0))
    # IDF1: the best one-to-one identity assignment is A-11 (or A-13, 2 frames either
    # way) and B-12 (4 frames): IDTP = 2 + 4 = 6, IDFN = 8 - 6 = 2, IDFP = 9 - 6 = 3.
    #   IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN) = 12 / 17
    assert result.idf1 == pytest.approx(12 / 17)
    # HOTA: boxes are exact (IoU 1), so at every alpha TP = 8, FN = 0, FP = 1:
    #   DetA = 8 / 9.  AssA averages, over the 8 TPs, TPA / (TPA + FNA + FPA) of the pair:
    #   2 / (2 + 2 + 0), A-13: the same, B-12: 4 / 4 -> (2*0.5 + 2*0.5 + 4*1) / 8 = 0.75
    #   HOTA = sqrt(DetA * AssA) = sqrt(2 / 3)
    assert result.deta == pytest.approx(8 / 9)
    assert result.assa == pytest.approx(0.75)
    assert result.hota == pytest.approx(math.sqrt(2 / 3))
    assert (result.dont_care, result.dont_care_matches, result.predicted, result.frames) == (1, 1, 9, 4)
    assert (result.gt_tracks, result.predicted_tracks) == (2, 4)  # 11, 12, 13, 15


def test_perfect_predictions_score_one():
    truth = two_tracks()
    predicted = {t: [TrackedBox(7 + o.track_id, o.label, o.box) for o in objects] for t, objects in truth.items()}
    result = score(truth, predicted, CLASSES)
    assert (result.mota, result.idf1, result.hota) == (1.0, 1.0, pytest.approx(1.0))
    assert (result.fp, result.fn, result.id_switches) == (0, 0, 0)


def test_a_prediction_on_a_tiny_object_is_neither_a_false_positive_nor_is_the_object_a_miss():
    tiny = TruthBox(5, "person", box(50, 50, 8, 9))  # 9 px tall
    truth = {0: [tiny], 1: [tiny]}
    predicted = {0: [TrackedBox(1, "person", tiny.box)], 1: []}  # found in frame 0, not in frame 1
    result = score(truth, predicted, CLASSES)
    assert (result.fp, result.fn, result.gt_objects, result.predicted) == (0, 0, 0, 0)
    assert (result.dont_care, result.dont_care_matches) == (2, 1)
    # at 10 px it counts: found once, missed once
    counted = TruthBox(5, "person", box(50, 50, 8, 10))
    result = score({0: [counted], 1: [counted]}, {0: [TrackedBox(1, "person", counted.box)], 1: []}, CLASSES)
    assert (result.fp, result.fn, result.gt_objects) == (0, 1, 2)


def test_a_mostly_hidden_object_is_dont_care_and_the_thresholds_are_settings():
    hidden = TruthBox(5, "car", box(50, 50, 60, 30), occluded=0.6)
    predicted = {0: [TrackedBox(1, "car", box(50, 50, 60, 30))]}
    result = score({0: [hidden]}, predicted, CLASSES)
    assert (result.fp, result.fn, result.dont_care) == (0, 0, 1)
    result = score({0: [hidden]}, predicted, CLASSES, DontCare(max_occluded=0.7))
    assert (result.fp, result.fn, result.dont_care, result.mota) == (0, 0, 0, 1.0)


def test_only_one_prediction_per_dont_care_object_is_removed():
    # one-to-one, as the MOT benchmarks match: a second box on the same tiny object is a duplicate
    tiny = TruthBox(5, "person", box(50, 50, 8, 8))
    predicted = {0: [TrackedBox(1, "person", tiny.box), TrackedBox(2, "person", box(50, 51, 8, 8))]}
    result = score({0: [tiny]}, predicted, CLASSES)
    assert (result.dont_care_matches, result.fp, result.fn) == (1, 1, 0)


def test_a_prediction_only_matches_its_own_class():
    truth = {0: [TruthBox(1, "person", a_box(0))]}
    result = score(truth, {0: [TrackedBox(1, "car", a_box(0))]}, CLASSES)
    assert (result.fp, result.fn, result.mota) == (1, 1, -1.0)
    # labels outside the scored classes are dropped and counted, never false positives
    result = score(truth, {0: [TrackedBox(1, "person", a_box(0)), TrackedBox(2, "truck", b_box(0))]}, CLASSES)
    assert (result.fp, result.fn, result.unscored, result.mota) == (0, 0, 1, 1.0)


def test_a_dont_care_object_of_another_class_removes_nothing():
    tiny = TruthBox(5, "person", box(50, 50, 8, 8))
    result = score({0: [tiny]}, {0: [TrackedBox(1, "car", tiny.box)]}, CLASSES)
    assert (result.dont_care, result.dont_care_matches, result.fp) == (1, 0, 1)


def test_with_a_stride_only_the_processed_frames_are_scored():
    truth = two_tracks(frames=7)
    # every 3rd frame processed: 0, 3, 6; frames 1, 2, 4, 5 are not misses
    predicted = {t: [TrackedBox(o.track_id, o.label, o.box) for o in truth[t]] for t in (0, 3, 6)}
    result = score(truth, predicted, CLASSES)
    assert (result.frames, result.gt_objects, result.fn, result.mota, result.idf1) == (3, 6, 0, 1.0, 1.0)
    # a processed frame where the tracker reported nothing still counts: its objects are misses
    predicted[6] = []
    result = score(truth, predicted, CLASSES)
    assert (result.frames, result.gt_objects, result.fn) == (3, 6, 2)


def test_a_frame_without_ground_truth_is_an_error():
    with pytest.raises(ValueError, match=r"frames \[9\]"):
        score(two_tracks(), {9: []}, CLASSES)
    with pytest.raises(ValueError, match="repeat a track id"):
        score(two_tracks(), {0: [TrackedBox(1, "person", a_box(0)), TrackedBox(1, "person", b_box(0))]}, CLASSES)
