"""The scene of one source: zone enter/exit with dwell, line crossings with direction and
hysteresis, frame-size handling, counts per class name."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pipeline.core.scene_config import LineConfig, ZoneConfig
from stages.tracking.scene import Scene, SceneEvent
from stages.tracking.tracks import TrackView

CLASSES = ("person", "car")


def track(track_id: int, x: float, y: float, t: float = 0.0, class_id: int = 0, first_t: float = 0.0) -> TrackView:
    """A confirmed track whose box has its bottom centre (the default anchor) at (x, y)."""
    box = np.array([x - 10, y - 40, x + 10, y], float)
    return TrackView(track_id, class_id, box, 0.9, first_t, t, 3, 0.9)


def walk(scene: Scene, path: list[tuple[float, float]], track_id: int = 1, dt: float = 1.0) -> list[SceneEvent]:
    """One track along the anchor positions of `path`, one update each, t = 0, dt, 2 dt ..."""
    events = []
    for k, (x, y) in enumerate(path):
        events += scene.update([track(track_id, x, y, k * dt)], k * dt)
    return events


def line(**settings) -> LineConfig:
    """A line without the time hold (`hold_s` 0) unless given: most tests here take one
    update per second and test the other rules."""
    return LineConfig(**{"hold_s": 0.0, **settings})


def gate(**settings) -> Scene:
    """The concrete picture: a horizontal line from (0, 100) to (200, 100) in a 640x360 frame.
    Walking from point 1 to point 2 goes right on screen, so the right-hand side is below
    the line (image y grows downward): moving down across it is `in`."""
    return Scene([], [line(name="gate", points=[(0, 100), (200, 100)], **settings)], 640, 360, "cam", CLASSES)


def square(**settings) -> ZoneConfig:
    return ZoneConfig(name="door", points=[(100, 100), (300, 100), (300, 300), (100, 300)], **settings)


def test_enter_and_exit_with_dwell():
    scene = Scene([square()], [], 640, 360, "cam", CLASSES)
    events = walk(scene, [(50, 200), (150, 200), (200, 200), (250, 250), (350, 250)], dt=0.5)
    assert [(e.type, e.zone, e.t) for e in events] == [("zone_enter", "door", 0.5), ("zone_exit", "door", 2.0)]
    enter, exit_ = events
    assert exit_.dwell_s == pytest.approx(1.5) and enter.dwell_s is None
    assert enter.counts == {"inside": {"person": 1}, "entered": {"person": 1}, "exited": {}}
    assert exit_.counts == {"inside": {"person": 0}, "entered": {"person": 1}, "exited": {"person": 1}}
    assert enter.track.track_id == 1 and scene.counts()["door"] == exit_.counts


def test_a_track_first_seen_inside_enters_in_that_frame():
    scene = Scene([square()], [], 640, 360, "cam", CLASSES)
    events = scene.update([track(7, 200, 200, t=4.0, first_t=3.8)], 4.0)
    assert [(e.type, e.t) for e in events] == [("zone_enter", 4.0)]
    assert scene.update([track(7, 201, 200, t=4.1)], 4.1) == []  # still inside: nothing new


def test_the_center_anchor_places_tracks_by_the_middle_of_their_box():
    scene = Scene([square(anchor="center")], [], 640, 360, "cam", CLASSES)
    # bottom centre (200, 110) inside, box centre (200, 90) outside the square
    assert scene.update([track(1, 200, 110)], 0.0) == []
    assert [e.type for e in scene.update([track(1, 200, 150, t=1.0)], 1.0)] == ["zone_enter"]


def test_line_crossing_direction_names_follow_the_picture():
    scene = gate()
    events = walk(scene, [(100, 80), (100, 120)])  # down across the line
    assert [(e.type, e.line, e.direction, e.t) for e in events] == [("line_cross", "gate", "in", 1.0)]
    assert events[0].counts == {"in": {"person": 1}, "out": {}}
    events = walk(scene, [(100, 120), (100, 80)], track_id=2)  # up across it
    assert [e.direction for e in events] == ["out"]
    assert scene.counts()["gate"] == {"in": {"person": 1}, "out": {"person": 1}}

    named = gate(directions=("down", "up"))
    assert [e.direction for e in walk(named, [(50, 60), (50, 140), (50, 60)])] == ["down", "up"]

    # a vertical line walked downward on screen: the right-hand side is to the left (x < 0 side)
    down = Scene([], [line(name="v", points=[(300, 0), (300, 200)])], 640, 360, "cam", CLASSES)
    assert [e.direction for e in walk(down, [(320, 100), (280, 100)])] == ["in"]


def test_jitter_on_the_line_counts_once():
    path = [(100, 80), (100, 99), (100, 101), (100, 98), (100, 103), (100, 97), (100, 104), (100, 99),
            (100, 120), (100, 102), (100, 98), (100, 103), (100, 96), (100, 121)]  # fmt: skip
    assert [e.direction for e in walk(gate(), path)] == ["in"]
    # with margin_px 0 only the band of a fifth of the box's height (8 px here) is left: the
    # wobbles wider than that count again and again, narrower ones still do not
    assert [e.direction for e in walk(gate(margin_px=0), path)] == ["in"]
    wide = [(100, 80), (100, 91), (100, 110), (100, 90), (100, 111), (100, 89), (100, 120)]
    assert [e.direction for e in walk(gate(margin_px=0), wide)] == ["in", "out", "in", "out", "in"]


def test_a_big_object_walking_along_a_line_is_not_counted():
    # a 300 px tall person whose box bottom jitters by +-12 px around the line: the band is
    # a fifth of its height (60 px), wider than margin_px, so no side is ever taken
    scene = gate()
    events = []
    for k, dy in enumerate([0, 12, -12, 10, -11, 12, -12, 9]):
        box = np.array([90.0, 100 + dy - 300, 110.0, 100 + dy])
        events += scene.update([TrackView(1, 0, box, 0.9, 0.0, float(k), 3, 0.9)], float(k))
    assert events == []


def test_a_wide_margin_waits_until_the_track_is_clear_of_the_line():
    events = walk(gate(margin_px=20), [(100, 80), (100, 115), (100, 119), (100, 121)])
    assert [(e.direction, e.t) for e in events] == [("in", 3.0)]


def test_crossing_in_then_out_counts_both():
    events = walk(gate(), [(100, 50), (100, 150), (100, 140), (100, 50)])
    assert [e.direction for e in events] == ["in", "out"]
    assert events[-1].counts == {"in": {"person": 1}, "out": {"person": 1}}


def test_jumps_between_updates_still_count_when_the_path_crosses_the_segment():
    # frames thinned by stride: one update far above, the next far below
    assert [e.direction for e in walk(gate(), [(100, 20), (100, 300)])] == ["in"]
    # both anchors beyond the segment's ends, but the path between them crosses it at x = 100
    assert [e.direction for e in walk(gate(), [(-50, 50), (250, 150)])] == ["in"]
    # passing beside the segment (x = 300 > 200) is no crossing, however far the jump
    assert walk(gate(), [(300, 20), (300, 300)]) == []


def test_going_around_the_end_of_the_line_is_no_crossing():
    assert walk(gate(), [(150, 80), (250, 80), (250, 120), (150, 120)]) == []


def test_a_frame_with_no_tracks_changes_nothing():
    scene = Scene([square()], [line(name="gate", points=[(0, 100), (200, 100)])], 640, 360, "cam", CLASSES)
    assert scene.update([], 0.0) == []
    assert [e.type for e in scene.update([track(1, 150, 90)], 1.0)] == []
    assert scene.update([], 2.0) == []  # the track is not matched in this frame: it stays where it was
    events = scene.update([track(1, 150, 150, t=3.0)], 3.0)
    assert sorted(e.type for e in events) == ["line_cross", "zone_enter"]


def test_counts_are_per_class_name():
    scene = gate()
    scene.update([track(1, 50, 50), track(2, 80, 50, class_id=1), track(3, 120, 50, class_id=1)], 0.0)
    events = scene.update([track(1, 50, 150), track(2, 80, 150, class_id=1), track(3, 120, 150, class_id=1)], 1.0)
    assert [e.track.track_id for e in events] == [1, 2, 3]
    assert events[-1].counts == {"in": {"person": 1, "car": 2}, "out": {}}


def test_a_zone_outside_the_frame_warns_once_and_never_fires(caplog):
    far = ZoneConfig(name="yard", points=[(1000, 1000), (1100, 1000), (1100, 1100)])
    away = line(name="road", points=[(700, 0), (700, 300)])
    with caplog.at_level(logging.WARNING, logger="detstream"):
        scene = Scene([far], [away], 640, 360, "cam-3", CLASSES)
        for k in range(5):  # even anchors outside the frame never fire the shapes outside it
            inside_yard, across_road = track(1, 1080, 1050, k), track(2, 750 - 50 * k, 100, k)
            assert scene.update([inside_yard, across_road], float(k)) == []
        scene.resize(640, 360)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert all("cam-3" in w and "640x360" in w and "wholly outside" in w for w in warnings)
    assert any("zone 'yard'" in w for w in warnings) and any("line 'road'" in w for w in warnings)
    assert scene.counts() == {"yard": {"inside": {}, "entered": {}, "exited": {}}, "road": {"in": {}, "out": {}}}


def test_normalized_and_pixel_coordinates_give_the_same_events():
    pixel = Scene(
        [ZoneConfig(name="z", points=[(64, 36), (320, 36), (320, 180), (64, 180)])],
        [line(name="l", points=[(0, 180), (640, 180)])],
        640, 360, "cam", CLASSES,
    )  # fmt: skip
    normalized = Scene(
        [ZoneConfig(name="z", points=[(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.1, 0.5)], coordinates="normalized")],
        [line(name="l", points=[(0, 0.5), (1, 0.5)], coordinates="normalized")],
        640, 360, "cam", CLASSES,
    )  # fmt: skip
    path = [(20, 20), (100, 100), (200, 150), (300, 200), (400, 300), (300, 100), (500, 100)]
    def summary(events: list[SceneEvent]) -> list[tuple]:
        return [(e.type, e.zone, e.line, e.direction, e.t, e.dwell_s) for e in events]
    expected = summary(walk(pixel, path))
    assert len(expected) == 6 and summary(walk(normalized, path)) == expected
    np.testing.assert_allclose(normalized.zones_px["z"], pixel.zones_px["z"])
    np.testing.assert_allclose(normalized.lines_px["l"], pixel.lines_px["l"])


def test_resize_rescales_normalized_shapes_and_keeps_counts():
    middle = line(name="l", points=[(0, 0.5), (1, 0.5)], coordinates="normalized")
    scene = Scene([], [middle], 640, 360, "cam", CLASSES)
    walk(scene, [(100, 100), (100, 300)])
    assert scene.counts()["l"] == {"in": {"person": 1}, "out": {}}
    scene.resize(1280, 720)
    np.testing.assert_allclose(scene.lines_px["l"], [[0, 360], [1280, 360]])
    assert scene.counts()["l"] == {"in": {"person": 1}, "out": {}}
    events = walk(scene, [(100, 500), (100, 200)], track_id=2)
    assert [e.direction for e in events] == ["out"]
    assert events[0].counts == {"in": {"person": 1}, "out": {"person": 1}}


def test_end_track_exits_its_zones_and_forgets_its_line_state():
    scene = Scene([square()], [line(name="gate", points=[(0, 150), (400, 150)])], 640, 360, "cam", CLASSES)
    scene.update([track(1, 200, 120, t=1.0)], 1.0)
    scene.update([track(1, 200, 130, t=2.5)], 2.5)
    last = track(1, 200, 130, t=2.5)
    events = scene.end_track(last, 4.0)  # ended after buffer_s without a match: dwell up to last_t
    assert [(e.type, e.zone, e.t, e.dwell_s) for e in events] == [("zone_exit", "door", 4.0, 1.5)]
    assert events[0].counts["inside"] == {"person": 0} and scene.end_track(last, 5.0) == []
    # seen again (the same id, as a test of forgetting): no path from before the end, so no crossing
    assert [e.type for e in scene.update([track(1, 200, 180, t=6.0)], 6.0)] == ["zone_enter"]


def test_many_tracks_come_and_go():
    scene = Scene([square()], [line(name="gate", points=[(0, 200), (640, 200)])], 640, 360, "cam", CLASSES)
    total = 0
    for wave in range(3):  # more tracks than the first allocation, ended and replaced
        ids = range(1 + 100 * wave, 101 + 100 * wave)
        scene.update([track(i, 5 + i % 100 * 6, 180, t=wave) for i in ids], wave)
        total += len(scene.update([track(i, 5 + i % 100 * 6, 220, t=wave + 0.5) for i in ids], wave + 0.5))
        for i in ids:
            scene.end_track(track(i, 5 + i % 100 * 6, 220, t=wave + 0.5), wave + 0.9)
    assert scene.counts()["gate"]["in"] == {"person": 300}
    assert scene.counts()["door"]["entered"] == scene.counts()["door"]["exited"]
    assert scene.counts()["door"]["inside"] == {"person": 0}


def test_a_crossing_counts_once_held_for_hold_s():
    # one update every 0.04 s (25 frames/s); hold 0.2 s: the crossing counts in the update
    # 0.2 s after the first one on the other side, updates inside the band included
    ys = [80, 90, 99, 101, 120, 121, 100, 122, 123, 124]  # below from t = 0.16 on (band 8 px)
    events = walk(gate(hold_s=0.2), [(100, y) for y in ys], dt=0.04)
    assert [(e.direction, round(e.t, 2)) for e in events] == [("in", 0.36)]


def test_an_excursion_shorter_than_the_hold_is_flicker():
    # a box's bottom jumps below the line for 0.12 s (others hide the feet) and comes back
    ys = [80, 80, 120, 120, 120, 80, 80, 80, 80]
    assert walk(gate(hold_s=0.2), [(100, y) for y in ys], dt=0.04) == []
    # the same excursion, held 0.2 s, is a crossing; coming back and holding is another
    ys = [80, 80, 120, 120, 120, 120, 120, 120, 80, 80, 80, 80, 80, 80]
    assert [e.direction for e in walk(gate(hold_s=0.2), [(100, y) for y in ys], dt=0.04)] == ["in", "out"]


def test_thinned_frames_hold_by_stream_time():
    # every 3rd frame (0.12 s apart): on the other side from 0.12, held at 0.36 (0.24 >= 0.2)
    events = walk(gate(hold_s=0.2), [(100, 80), (100, 120), (100, 121), (100, 122)], dt=0.12)
    assert [(e.direction, round(e.t, 2)) for e in events] == [("in", 0.36)]


def test_a_crossing_still_held_when_the_source_ends_counts_then():
    scene = gate(hold_s=0.2)
    walk(scene, [(100, 80), (100, 120)], dt=0.04)  # below since 0.04: not yet held
    last = track(1, 100, 120, t=0.04)
    assert scene.end_track(last, 0.04) == []  # an ordinary end (unmatched too long): nothing
    walk(scene, [(100, 80), (100, 120)], track_id=2, dt=0.04)
    events = scene.end_track(track(2, 100, 120, t=0.04), 0.04, final=True)  # the source ended
    assert [(e.type, e.direction, e.track.track_id) for e in events] == [("line_cross", "in", 2)]
    # never across: nothing to count at the end either
    walk(scene, [(100, 80), (100, 85)], track_id=3, dt=0.04)
    assert scene.end_track(track(3, 100, 85, t=0.04), 0.04, final=True) == []


def test_a_path_starts_where_the_track_was_first_seen():
    # tentative above the line, confirmed (started) already below it: the crossing counts
    first = np.array([90.0, 40.0, 110.0, 80.0])  # bottom centre (100, 80), above
    confirmed = TrackView(1, 0, np.array([90.0, 80.0, 110.0, 120.0]), 0.9, 0.0, 0.08, 3, 0.9, first)
    scene = gate()
    events = scene.update([confirmed], 0.08, [confirmed])
    assert [(e.direction, e.t) for e in events] == [("in", 0.08)]
    # without the first box (or not started in this update) its path starts here: nothing
    late = confirmed._replace(track_id=2, first_box=None)
    assert gate().update([late], 0.08, [late]) == [] and gate().update([confirmed], 0.08) == []


def boxes_walk(scene: Scene, boxes: list[tuple[float, float, float, float]], dt: float = 1.0) -> list[SceneEvent]:
    events = []
    for k, box in enumerate(boxes):
        events += scene.update([TrackView(1, 0, np.array(box, float), 0.9, 0.0, k * dt, 3, 0.9)], k * dt)
    return events


def test_a_box_that_changes_shape_across_the_line_is_no_crossing():
    # a person standing above the gate (feet at y = 90), whose box the detector stretches
    # down to y = 130 and back, top edge fixed at y = 40: the anchor crossed, the person did not
    stretched = [(90, 40, 110, 90), (90, 40, 110, 90), (90, 40, 110, 130), (90, 40, 110, 130), (90, 40, 110, 90)]
    assert boxes_walk(gate(), stretched) == []
    # the same anchor path on a box that moves whole is a crossing each way
    moved = [(90, 40, 110, 90), (90, 40, 110, 90), (90, 80, 110, 130), (90, 80, 110, 130), (90, 40, 110, 90)]
    assert [e.direction for e in boxes_walk(gate(), moved)] == ["in", "out"]


def test_an_object_coming_towards_the_camera_still_crosses():
    # feet move down 60 px while the head moves 15 px (a quarter: perspective of a low
    # camera): the centre moves 37.5 px, more than CENTRE_SHARE of the feet's 60
    boxes = [(90, 20, 110, 70), (90, 20, 110, 70), (85, 35, 115, 130)]
    assert [e.direction for e in boxes_walk(gate(), boxes)] == ["in"]
    # the centre anchor is the box's centre: the rule never stops it
    centre = Scene([], [line(name="gate", points=[(0, 100), (200, 100)], anchor="center")], 640, 360, "cam", CLASSES)
    assert [e.direction for e in boxes_walk(centre, [(90, 40, 110, 90), (90, 80, 110, 160)])] == ["in"]
