"""Line-crossing counts: the ground truth's, through the pipeline's own Scene, against the run's.

Rules:
- Reference counts: the ground-truth tracks go through the same `Scene`
  (stages/tracking/scene.py) as the pipeline's confirmed tracks, with the source's lines,
  so both are counted by one set of rules (anchor, hysteresis margin, directions). Every
  annotated frame is fed, not only the processed ones: the reference is what really
  crossed. An object keeps its line state while it is out of sight (hidden or outside the
  frame), so a crossing made out of sight counts when it is seen again on the other side.
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
    first: dict[int, float] = {}
    hits: Counter[int] = Counter()
    counts: Counter[Key] = Counter()
    for index in sorted(truth.frames):
        t = truth.pts.get(index, float(index))
        active = []
        for obj in truth.frames[index]:
            first.setdefault(obj.track_id, t)
            hits[obj.track_id] += 1
            active.append(TrackView(
                track_id=obj.track_id, class_id=truth.classes.index(obj.label), box=np.array(obj.box, float),
                score=1.0, first_t=first[obj.track_id], last_t=t, hits=hits[obj.track_id], best_score=1.0,
            ))
        for event in scene.update(active, t):
            if event.type == "line_cross":
                counts[(str(event.line), str(event.direction), truth.classes[event.track.class_id])] += 1
    return counts


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
