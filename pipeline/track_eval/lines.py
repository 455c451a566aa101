"""Line-crossing counts: the ground truth's, through the pipeline's own Scene, against the run's.

Rules:
- Reference counts: the ground-truth tracks go through the same `Scene`
  (stages/tracking/scene.py) as the pipeline's confirmed tracks, with the source's lines,
  so both are counted by one set of rules (anchor, hysteresis margin, hold, directions).
  The reference is what really crossed:
  * every annotated frame is fed, not only the processed ones;
  * an object is placed by its amodal box (hidden parts included), clipped to the frame
    since lines are drawn on the frame, where the annotation has one (synth writes it);
    its visible box moves whenever others hide a part of it, its feet do not;
  * an object keeps its line state while it is out of sight (hidden or outside the
    frame), so a crossing made out of sight counts when it is seen again on the other side;
  * the last frame ends every object (`end_track(final=True)`), as the end of a source
    ends the run's tracks, so a crossing still being held then counts on both sides.
- The run's counts are its `line_cross` events (the events file next to the jsonl sink's).
- Counts are by line, direction and class name, for the scored classes only; rows where
  both counts are 0 are left out.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.scene_config import LineConfig
from pipeline.track_eval.referee import TruthBox
from pipeline.track_eval.truth import GroundTruth
from stages.tracking.scene import Scene
from stages.tracking.tracks import TrackView

Key = tuple[str, str, str]  # line, direction, class name


@dataclass(frozen=True)
class LineCount:
    line: str
    direction: str
    label: str
    truth: int  # crossings of the ground-truth tracks
    tracked: int  # the run's line_cross events


def truth_crossings(truth: GroundTruth, lines: list[LineConfig], size: tuple[int, int]) -> Counter[Key]:
    """The ground-truth tracks' crossings of `lines` in frames of `size` (width, height)."""
    scene = Scene([], lines, size[0], size[1], f"{truth.video} (ground truth)", truth.classes)
    limits = np.array([size[0], size[1], size[0], size[1]], float)  # x1, y1, x2, y2 at most
    first: dict[int, float] = {}
    hits: Counter[int] = Counter()
    counts: Counter[Key] = Counter()
    views: dict[int, TrackView] = {}  # every object's latest view
    last = max(truth.frames)
    for index in sorted(truth.frames):
        t = truth.pts.get(index, float(index))
        active = []
        for obj in truth.frames[index]:
            first.setdefault(obj.track_id, t)
            hits[obj.track_id] += 1
            views[obj.track_id] = view = TrackView(
                track_id=obj.track_id, class_id=truth.classes.index(obj.label), box=placed_box(obj, limits),
                score=1.0, first_t=first[obj.track_id], last_t=t, hits=hits[obj.track_id], best_score=1.0,
            )
            active.append(view)
        events = scene.update(active, t)
        if index == last:  # the video ends: so does every object
            events += [e for view in views.values() for e in scene.end_track(view, t, final=True)]
        for event in events:
            if event.type == "line_cross":
                counts[(str(event.line), str(event.direction), truth.classes[event.track.class_id])] += 1
    return counts


def placed_box(obj: TruthBox, limits: np.ndarray) -> np.ndarray:
    """The box that places a ground-truth object on the lines: its amodal box (hidden parts
    included) clipped to the frame (`limits`: width, height, width, height), else its
    visible box."""
    if obj.amodal is None:
        return np.array(obj.box, float)
    return np.clip(np.array(obj.amodal, float), 0.0, limits)


def tracked_crossings(events: Path) -> Counter[Key]:
    """The run's line_cross events, counted (no file: the run had no events)."""
    counts: Counter[Key] = Counter()
    if not events.exists():
        return counts
    with open(events, encoding="utf-8") as lines:
        for line in lines:
            event = json.loads(line)
            if event["type"] == "line_cross":
                counts[(event["line"], event["direction"], event["label"])] += 1
    return counts


def compare_lines(
    lines: list[LineConfig], truth: Counter[Key], tracked: Counter[Key], classes: tuple[str, ...]
) -> list[LineCount]:
    """Both counts per line, direction and scored class, in config order."""
    rows = []
    for line in lines:
        for direction in line.directions:
            for label in classes:
                key = (line.name, direction, label)
                if truth[key] or tracked[key]:
                    rows.append(LineCount(line.name, direction, label, truth[key], tracked[key]))
    return rows
