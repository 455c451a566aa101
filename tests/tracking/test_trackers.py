"""ByteTracker and IouTracker on small scripted scenes: identities, memory, rules."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.config import TrackingConfig
from pipeline.core.types import Candidates
from stages.tracking.bytetrack import ByteTracker
from stages.tracking.iou_tracker import IouTracker
from stages.tracking.trackers import make_tracker
from stages.tracking.tracks import NO_TRACK, TrackUpdate

FPS = 30
NONE = Candidates.empty()
PERSON, BICYCLE = 0, 1
Frames = list[tuple[float, Candidates, Candidates]]  # (t, detections, low) per update


def box(cx: float, cy: float, w: float = 40, h: float = 80) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def frame(*boxes: list[float], classes: list[int] | None = None, score: float = 0.9) -> Candidates:
    n = len(boxes)
    return Candidates(
        np.array(boxes, np.float32).reshape(n, 4),
        np.full(n, score, np.float32),
        np.array(classes if classes is not None else [PERSON] * n, np.int64),
    )


def run(tracker, frames: Frames) -> list[TrackUpdate]:
    return [tracker.update(t, detections, low) for t, detections, low in frames]


def walker(speed: float, times: list[float], x0: float = 100, y: float = 200) -> Frames:
    """One person moving right at `speed` px/s, seen at `times`."""
    return [(t, frame(box(x0 + speed * t, y)), NONE) for t in times]


def ids_of(updates: list[TrackUpdate], index: int = 0) -> list[int]:
    return [int(u.ids[index]) for u in updates]


def test_make_tracker_picks_the_method():
    assert isinstance(make_tracker(TrackingConfig(method="bytetrack")), ByteTracker)
    assert isinstance(make_tracker(TrackingConfig(method="iou")), IouTracker)


def crossing_scene() -> Frames:
    """Two people of the same size walk towards each other at 150 px/s on the same line.
    They pass between frames 39 and 40, so each one's box at 40 is exactly where the
    other one was at 39."""
    frames = []
    for f in range(80):
        offset = 150 * (f - 39.5) / FPS
        frames.append((f / FPS, frame(box(300 + offset, 200), box(300 - offset, 200)), NONE))
    return frames


def test_bytetrack_keeps_ids_through_a_crossing():
    updates = run(ByteTracker(TrackingConfig()), crossing_scene())
    a, b = ids_of(updates, 0), ids_of(updates, 1)
    assert a[:2] == b[:2] == [NO_TRACK, NO_TRACK]  # min_hits = 3
    assert set(a[2:]) == {1} and set(b[2:]) == {2}
    assert all(not u.ended for u in updates)


def test_iou_baseline_swaps_ids_at_the_crossing():
    updates = run(IouTracker(TrackingConfig()), crossing_scene())
    a, b = ids_of(updates, 0), ids_of(updates, 1)
    assert (a[39], b[39]) == (1, 2)
    assert (a[40], b[40]) == (2, 1)  # it has no motion: it follows the identical box


def test_short_occlusion_keeps_the_id():
    # 60 px/s: after 0.5 s unseen the box moved 30 px of its 40 px width (IoU 0.14 with
    # where it was): the prediction, not the old box, finds it again
    times = [f / FPS for f in range(30)] + [f / FPS for f in range(45, 70)]
    updates = run(ByteTracker(TrackingConfig(buffer_s=1.0)), walker(60, times))
    assert set(ids_of(updates)[2:]) == {1}
    assert all(not u.ended for u in updates)


def test_long_occlusion_ends_the_track_once_and_a_new_id_follows():
    tracker = ByteTracker(TrackingConfig(buffer_s=1.0))
    seen = walker(60, [f / FPS for f in range(30)])
    unseen = [(f / FPS, NONE, NONE) for f in range(30, 75)]
    back = walker(60, [f / FPS for f in range(75, 90)])
    updates = run(tracker, seen + unseen + back)
    ended = [(t, view) for (t, _, _), u in zip(seen + unseen + back, updates) for view in u.ended]
    assert len(ended) == 1
    t_end, view = ended[0]
    assert view.track_id == 1 and view.last_t == pytest.approx(29 / FPS)
    assert 1.0 < t_end - view.last_t <= 1.0 + 1.5 / FPS  # the first update past buffer_s
    after = ids_of(updates[75:])
    assert after[:2] == [NO_TRACK, NO_TRACK] and set(after[2:]) == {2}
    assert [v.track_id for u in updates[75:] for v in u.started] == [2]


@pytest.mark.parametrize("step", [1, 3])
def test_thinned_frames_keep_one_id(step):
    times = [f / FPS for f in range(0, 90, step)]
    updates = run(ByteTracker(TrackingConfig()), walker(120, times))
    assert set(ids_of(updates)[2:]) == {1}


def fast_mover_with_gaps() -> Frames:
    """240 px/s, 15 frames at 30 fps, then one frame in 10: each jump (80 px) is twice the
    box width, so successive boxes do not overlap at all."""
    times = [f / FPS for f in range(15)] + [f / FPS for f in range(20, 120, 10)]
    return walker(240, times, x0=50)


def test_fast_mover_with_gaps_is_followed_by_its_velocity():
    updates = run(ByteTracker(TrackingConfig()), fast_mover_with_gaps())
    assert set(ids_of(updates)[2:]) == {1}


def test_iou_baseline_loses_the_fast_mover_at_every_gap():
    updates = run(IouTracker(TrackingConfig(min_hits=1)), fast_mover_with_gaps())
    ids = ids_of(updates)
    assert set(ids[:15]) == {1}
    assert ids[15:] == list(range(2, 12))  # a new track at every sparse frame


def low_scene(with_low: bool) -> Frames:
    """A person seen at 0.9 for 10 frames, then only as a 0.3 candidate for 1 s, then at
    0.9 again; moving 30 px/s."""
    frames = []
    for f in range(60):
        t = f / FPS
        here = box(100 + 30 * t, 200)
        if 10 <= f < 40:
            frames.append((t, NONE, frame(here, score=0.3) if with_low else NONE))
        else:
            frames.append((t, frame(here), NONE))
    return frames


def test_low_candidates_keep_a_track_alive():
    updates = run(ByteTracker(TrackingConfig(buffer_s=0.5)), low_scene(with_low=True))
    assert all(not u.ended for u in updates)
    assert set(ids_of(updates[2:10]) + ids_of(updates[40:])) == {1}
    # a low candidate is never reported: no ids, and the track is not active meanwhile
    assert all(len(u.ids) == 0 and not u.active for u in updates[10:40])


def test_without_low_candidates_the_same_track_ends():
    for tracker in (ByteTracker(TrackingConfig(buffer_s=0.5)), IouTracker(TrackingConfig(buffer_s=0.5))):
        updates = run(tracker, low_scene(with_low=False))
        assert [v.track_id for u in updates for v in u.ended] == [1]
        assert set(ids_of(updates[42:])) == {2}


def test_low_candidates_never_start_tracks():
    tracker = ByteTracker(TrackingConfig(min_hits=1))
    updates = run(tracker, [(f / FPS, NONE, frame(box(100, 200), score=0.3)) for f in range(20)])
    assert all(not u.started and not u.active and not u.ended for u in updates)
    assert tracker.end_all() == []
    assert tracker.update(1.0, frame(box(100, 200)), NONE).ids.tolist() == [1]


def test_low_candidates_do_not_refind_a_lost_track():
    # step 3 only continues tracks matched in the previous update
    tracker = ByteTracker(TrackingConfig(min_hits=1, buffer_s=0.2))
    tracker.update(0.0, frame(box(100, 200)), NONE)
    tracker.update(1 / FPS, NONE, NONE)  # lost
    updates = run(tracker, [(f / FPS, NONE, frame(box(100, 200), score=0.3)) for f in range(2, 12)])
    assert [v.track_id for u in updates for v in u.ended] == [1]


@pytest.mark.parametrize("tracker_class", [ByteTracker, IouTracker])
def test_unconfirmed_detections_have_no_id(tracker_class):
    tracker = tracker_class(TrackingConfig(min_hits=3))
    here = frame(box(100, 200))
    # seen twice, missed once (a tentative track is dropped at once), then seen again
    frames = [(0.0, here), (0.1, here), (0.2, NONE), (0.3, here), (0.4, here)]
    updates = run(tracker, [(t, detections, NONE) for t, detections in frames])
    assert [u.ids.tolist() for u in updates] == [[0], [0], [], [0], [0]]
    assert all(not u.started and not u.active and not u.ended for u in updates)
    confirmed = tracker.update(0.5, here, NONE)
    assert confirmed.ids.tolist() == [1]
    assert [v.track_id for v in confirmed.started] == [v.track_id for v in confirmed.active] == [1]
    assert confirmed.active[0].hits == 3 and confirmed.active[0].first_t == 0.3


@pytest.mark.parametrize("tracker_class", [ByteTracker, IouTracker])
def test_rider_and_bicycle_keep_distinct_ids_and_classes(tracker_class):
    tracker = tracker_class(TrackingConfig())
    classes_by_id: dict[int, set[int]] = {}
    for f in range(60):
        x = 100 + 90 * f / FPS
        rider, bicycle = box(x, 150, 40, 100), box(x, 200, 80, 60)  # IoU about 0.3
        # the detector's order changes from frame to frame
        if f % 2:
            detections = frame(rider, bicycle, classes=[PERSON, BICYCLE])
        else:
            detections = frame(bicycle, rider, classes=[BICYCLE, PERSON])
        update = tracker.update(f / FPS, detections, NONE)
        for view in update.active:
            classes_by_id.setdefault(view.track_id, set()).add(view.class_id)
        if f >= 2:
            assert sorted(update.ids.tolist()) == [1, 2]
    assert classes_by_id in ({1: {PERSON}, 2: {BICYCLE}}, {1: {BICYCLE}, 2: {PERSON}})


@pytest.mark.parametrize("tracker_class", [ByteTracker, IouTracker])
def test_a_detection_never_continues_a_track_of_another_class(tracker_class):
    tracker = tracker_class(TrackingConfig(min_hits=1))
    here = box(100, 200)
    assert tracker.update(0.0, frame(here, classes=[BICYCLE]), NONE).ids.tolist() == [1]
    update = tracker.update(1 / FPS, frame(here, classes=[PERSON]), NONE)
    assert update.ids.tolist() == [2]
    assert [(v.track_id, v.class_id) for v in update.active] == [(2, PERSON)]


@pytest.mark.parametrize("tracker_class", [ByteTracker, IouTracker])
def test_empty_frames(tracker_class):
    tracker = tracker_class(TrackingConfig(min_hits=1))
    first = tracker.update(0.0, NONE, NONE)
    assert first.ids.dtype == np.int64 and first.ids.shape == (0,)
    assert not (first.started or first.active or first.ended)
    tracker.update(0.1, frame(box(100, 200)), NONE)
    quiet = tracker.update(0.2, NONE, NONE)
    assert quiet.ids.shape == (0,) and not quiet.active


@pytest.mark.parametrize("tracker_class", [ByteTracker, IouTracker])
def test_time_going_backwards_or_repeating_does_not_break_tracks(tracker_class):
    tracker = tracker_class(TrackingConfig())
    times = [0.0, 0.1, 0.2, 0.1, 0.1, 0.05, 0.15, 0.25]  # a source whose clock stutters
    updates = run(tracker, [(t, frame(box(100, 200)), NONE) for t in times])
    assert ids_of(updates)[2:] == [1] * 6
    assert all(not u.ended for u in updates)


def test_lost_tracks_age_only_by_forward_time():
    # a clock jump backwards neither ends a lost track nor freezes it forever
    tracker = ByteTracker(TrackingConfig(min_hits=1, buffer_s=0.5))
    tracker.update(10.0, frame(box(100, 200)), NONE)
    assert not tracker.update(0.0, NONE, NONE).ended  # jump back: dt = 0
    assert not tracker.update(0.4, NONE, NONE).ended
    assert [v.track_id for v in tracker.update(0.6, NONE, NONE).ended] == [1]


@pytest.mark.parametrize("tracker_class", [ByteTracker, IouTracker])
def test_end_all_returns_confirmed_tracks_and_keeps_the_counter(tracker_class):
    tracker = tracker_class(TrackingConfig(min_hits=2))
    a, b, c = box(100, 200), box(300, 200), box(500, 200)
    tracker.update(0.0, frame(a, b), NONE)
    tracker.update(0.1, frame(a, b), NONE)  # a and b confirmed: 1 and 2
    last = tracker.update(0.2, frame(a, c), NONE)  # b unmatched (lost for ByteTrack), c tentative
    assert last.ids.tolist() == [1, 0]
    ended = tracker.end_all()
    expected = [1, 2] if tracker_class is ByteTracker else [1]  # the baseline already ended b
    assert sorted(v.track_id for v in ended) == expected
    assert tracker.end_all() == []
    tracker.update(5.0, frame(c), NONE)
    assert tracker.update(5.1, frame(c), NONE).ids.tolist() == [3]


def test_views_report_the_detection_not_the_prediction():
    tracker = ByteTracker(TrackingConfig(min_hits=1))
    for f, score in enumerate([0.5, 0.9, 0.7]):
        update = tracker.update(f / FPS, frame(box(100 + 3 * f, 200), score=score), NONE)
    view = update.active[0]
    np.testing.assert_array_equal(view.box, np.array(box(106, 200), np.float32))
    assert (view.score, view.best_score, view.hits) == (pytest.approx(0.7), pytest.approx(0.9), 3)
    assert (view.first_t, view.last_t) == (0.0, 2 / FPS)


def scored_walker(scores: list[float]) -> Frames:
    """One person walking right, detected with `scores[i]` in frame i."""
    return [(f / FPS, frame(box(100 + 3 * f, 200), score=s), NONE) for f, s in enumerate(scores)]


def test_a_track_waits_for_one_confident_detection():
    # min_hits is reached at frame 2, but the first detection at confirm_score comes at frame 5:
    # the id comes with it, and the track_start is reported then, once
    scores = [0.6, 0.7, 0.75, 0.6, 0.79, 0.8, 0.6, 0.6]
    updates = run(ByteTracker(TrackingConfig(min_hits=3, confirm_score=0.8)), scored_walker(scores))
    assert ids_of(updates) == [NO_TRACK] * 5 + [1, 1, 1]
    assert [len(u.started) for u in updates] == [0] * 5 + [1, 0, 0]
    assert updates[5].started[0].best_score == pytest.approx(0.8)


def test_a_track_never_confident_never_gets_an_id():
    updates = run(ByteTracker(TrackingConfig(min_hits=1, confirm_score=0.8)), scored_walker([0.7] * 20))
    assert ids_of(updates) == [NO_TRACK] * 20
    assert not any(u.started or u.active for u in updates)


def test_the_iou_baseline_stays_plain_min_hits_alone_confirm():
    updates = run(IouTracker(TrackingConfig(min_hits=3, confirm_score=0.8)), scored_walker([0.7] * 5))
    assert ids_of(updates) == [NO_TRACK, NO_TRACK, 1, 1, 1]


def test_confirm_score_zero_confirms_on_min_hits_alone():
    updates = run(ByteTracker(TrackingConfig(min_hits=2, confirm_score=0.0)), scored_walker([0.55] * 4))
    assert ids_of(updates) == [NO_TRACK, 1, 1, 1]


def test_confirm_score_outside_0_1_is_a_config_error():
    from pipeline.core.config import load_config
    from pipeline.core.errors import ConfigError

    with pytest.raises(ConfigError, match="confirm_score"):
        load_config(None, {"tracking": {"confirm_score": 1.5}})
