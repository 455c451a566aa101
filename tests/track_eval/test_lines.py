"""Line crossings: ground-truth tracks through the pipeline's Scene, against the run's events."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pipeline.core.scene_config import LineConfig
from pipeline.track_eval.lines import LineCount, compare_lines, tracked_crossings, truth_crossings
from pipeline.track_eval.referee import TruthBox
from pipeline.track_eval.truth import GroundTruth

CLASSES = ("person", "car")
# horizontal, from (0, 100) to (200, 100): moving down across it is `in` (scene.py's picture)
GATE = LineConfig(name="gate", points=[(0, 100), (200, 100)])


def at(track_id: int, label: str, x: float, y: float) -> TruthBox:
    """An object whose box has its bottom centre (the default anchor) at (x, y)."""
    return TruthBox(track_id, label, (x - 10, y - 40, x + 10, y))


def truth(frames: dict[int, list[TruthBox]]) -> GroundTruth:
    return GroundTruth(Path("gt.json"), "v.mp4", frames, {i: i / 25 for i in frames}, CLASSES, (640, 360))


def test_ground_truth_crossings_by_direction_and_class():
    frames = {
        # person 1 walks down across the gate; car 2 drives up across it; person 3 stays above
        0: [at(1, "person", 50, 80), at(2, "car", 150, 130), at(3, "person", 100, 60)],
        1: [at(1, "person", 50, 95), at(2, "car", 150, 110), at(3, "person", 100, 62)],
        2: [at(1, "person", 50, 120), at(2, "car", 150, 80), at(3, "person", 100, 60)],
        3: [at(1, "person", 50, 140)],
    }
    counts = truth_crossings(truth(frames), [GATE], (640, 360))
    assert counts == Counter({("gate", "in", "person"): 1, ("gate", "out", "car"): 1})


def test_a_crossing_out_of_sight_counts_when_the_object_is_seen_again():
    # person 1 is above the gate in frame 0, hidden (not annotated) in frames 1-2, below it in frame 3
    frames = {0: [at(1, "person", 50, 70)], 1: [], 2: [], 3: [at(1, "person", 60, 140)]}
    assert truth_crossings(truth(frames), [GATE], (640, 360)) == Counter({("gate", "in", "person"): 1})


def test_the_reference_places_objects_by_their_amodal_box_clipped_to_the_frame():
    # person 1 walks down across the gate (y = 100) behind a parked car that hides
    # everything below y = 95: its visible box never reaches the line, its feet do
    def walker(i: int) -> TruthBox:
        bottom = 80.0 + 4 * i
        return TruthBox(1, "person", (40, bottom - 40, 60, min(bottom, 95.0)), 0.2, (40, bottom - 40, 60, bottom))

    frames = {i: [walker(i)] for i in range(16)}  # feet from y = 80 to 140
    assert truth_crossings(truth(frames), [GATE], (640, 360)) == Counter({("gate", "in", "person"): 1})
    without = {i: [TruthBox(o.track_id, o.label, o.box) for o in objs] for i, objs in frames.items()}
    assert truth_crossings(truth(without), [GATE], (640, 360)) == Counter()
    # a person near the camera whose feet are below the frame: placed at the frame's bottom
    # edge, where the lines drawn on the frame end (so it crosses a vertical line drawn to it)
    side = LineConfig(name="side", points=[(100, 360), (100, 0)])
    tall = {i: [TruthBox(1, "person", (x, 100, x + 40, 360), 0.1, (x, 100, x + 40, 420))]
            for i, x in enumerate([20, 40, 60, 80, 100, 120, 140, 160])}
    assert truth_crossings(truth(tall), [side], (640, 360)) == Counter({("side", "in", "person"): 1})


def test_the_runs_events_are_counted_and_compared(tmp_path):
    events = tmp_path / "v.events.jsonl"
    lines = [
        {"type": "track_start", "label": "person"},
        {"type": "line_cross", "line": "gate", "direction": "in", "label": "person"},
        {"type": "line_cross", "line": "gate", "direction": "in", "label": "person"},
        {"type": "line_cross", "line": "gate", "direction": "in", "label": "truck"},  # not a scored class
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    tracked = tracked_crossings(events)
    assert tracked_crossings(tmp_path / "none.events.jsonl") == Counter()  # no events: no file
    reference = Counter({("gate", "in", "person"): 1, ("gate", "out", "car"): 1})
    assert compare_lines([GATE], reference, tracked, CLASSES) == [
        LineCount("gate", "in", "person", truth=1, tracked=2),
        LineCount("gate", "out", "car", truth=1, tracked=0),
    ]
