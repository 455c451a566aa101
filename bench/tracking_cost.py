"""What tracking costs per frame with the detector taken out (issue #16): the track stage's
work on one frame, `SourceTracks.frame` (the tracker, 2 zones, 2 lines and the events they
cause), at 10, 50 and 200 objects, for ByteTrack (also with its looks off, to show what
they cost) and for the IoU baseline, and each also without zones and lines (what the tracker and its track events cost alone); and apart
from it, building the frame's message (`Message.of`: its dict and its JSON line), which the
stage does for every frame, tracked or not.

Why synthetic detections: the detector costs hundreds of ms per frame here and would bury
a figure of about a millisecond; and no clip of the synth generator holds 200 objects.
The scene (numpy, seeded, built before the clock starts): N objects of 4 classes on a
1280x720 frame at 25 frames/s, each moving on a straight line at 20-150 px/s and coming
back at the opposite edge when it leaves (so tracks end and start all the time), boxes
jittered by about a pixel, overlapping where objects meet; in each frame about 5 % of the
objects come as low-score candidates instead (what ByteTrack's second association is for).
Every variant gets the same frames, one after the other frame by frame, so a noisy
neighbour slows all alike; the first frames are a warm-up, then every frame is timed.

    .venv/bin/python -m bench.tracking_cost [--frames 300] [--warmup 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.common import COUNTING_LINES, machine, print_result

if TYPE_CHECKING:
    from pipeline.core.types import Detections

WIDTH, HEIGHT, FPS = 1280, 720, 25
OBJECTS = (10, 50, 200)
# the trackers timed: name -> its tracking settings ("looks off": what ByteTrack's looks cost)
TRACKERS = {"bytetrack": {}, "bytetrack, looks off": {"look_gate": 1.0}, "iou": {"method": "iou"}}
CLASSES = ("person", "car", "bicycle", "dog")
SIZES = np.array([[30, 80], [120, 60], [40, 70], [50, 35]], float)  # width, height per class (pixels)
LOW_FRACTION = 0.05
TARGET_MS, TARGET_OBJECTS = 1.0, 50  # issue #16: under 1 ms per frame at 50 objects
ZONES = [
    {"name": "left", "points": [[0.05, 0.5], [0.45, 0.5], [0.45, 0.95], [0.05, 0.95]], "coordinates": "normalized"},
    {"name": "right", "points": [[0.55, 0.2], [0.95, 0.3], [0.9, 0.9], [0.6, 0.8]], "coordinates": "normalized"},
]
LINES = [COUNTING_LINES[1], COUNTING_LINES[3]]  # two of the quality part's lines: the middle one and the horizontal


def scene(objects: int, frames: int, seed: int) -> list[Detections]:
    """`frames` frames of detections of `objects` moving objects (see the module docstring)."""
    from pipeline.core.types import Candidates, Detections, Frame

    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(CLASSES), objects)
    sizes = SIZES[classes] * rng.uniform(0.6, 1.4, (objects, 1))
    start = rng.uniform((0, 0), (WIDTH, HEIGHT), (objects, 2))
    angle = rng.uniform(0, 2 * np.pi, objects)
    velocity = np.stack([np.cos(angle), np.sin(angle)], axis=1) * rng.uniform(20, 150, (objects, 1))
    span = np.array([WIDTH, HEIGHT]) + sizes  # an object leaves by one edge, comes back by the other
    # ByteTrack reads 32 pixels per box of it (its looks) at the same cost whatever they
    # hold; black, every look is the same, so looks never change a pairing here
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    out = []
    for index in range(frames):
        t = index / FPS
        centre = (start + velocity * t + sizes / 2) % span - sizes / 2
        boxes = np.concatenate([centre - sizes / 2, centre + sizes / 2], axis=1) + rng.normal(0, 1.0, (objects, 4))
        boxes = np.clip(boxes, 0, [WIDTH, HEIGHT, WIDTH, HEIGHT]).astype(np.float32)
        seen = (boxes[:, 2] - boxes[:, 0] >= 4) & (boxes[:, 3] - boxes[:, 1] >= 4)  # mostly outside: not detected
        low = rng.random(objects) < LOW_FRACTION
        scores = np.where(low, rng.uniform(0.1, 0.45, objects), rng.uniform(0.5, 0.99, objects)).astype(np.float32)
        high = np.flatnonzero(seen & ~low)
        high = high[np.argsort(-scores[high])]  # a detector's order: highest score first
        weak = np.flatnonzero(seen & low)
        frame = Frame(source="bench", seq=index, pts=t, capture_ts=t, image=image)
        out.append(Detections(
            frame, boxes[high], scores[high], classes[high].astype(np.int64), [CLASSES[c] for c in classes[high]],
            low=Candidates(boxes[weak], scores[weak], classes[weak].astype(np.int64)),
        ))
    return out


def summary(values_s: list[float]) -> dict[str, float]:
    """Median and 95th percentile, in ms."""
    ms = np.array(values_s) * 1000
    return {"median": round(float(np.median(ms)), 4), "p95": round(float(np.percentile(ms, 95)), 4)}


def measure_objects(objects: int, frames: int, warmup: int, seed: int) -> list[dict]:
    """Time every variant (each tracker with and without the zones and lines), frame by frame
    in turn, on one scene of `objects` objects."""
    from pipeline.core.config import TrackingConfig
    from pipeline.core.messages import Message
    from pipeline.core.scene_config import LineConfig, ZoneConfig
    from stages.tracking.source_tracks import SourceSettings, SourceTracks

    zones = [ZoneConfig.model_validate(z) for z in ZONES]
    lines = [LineConfig.model_validate(n) for n in LINES]
    variants = [(name, shapes) for name in TRACKERS for shapes in (True, False)]
    tracks = {(name, shapes): SourceTracks("bench", SourceSettings(TrackingConfig(**TRACKERS[name]),
                                                                   zones if shapes else [], lines if shapes else []),
                                           CLASSES, "bench")
              for name, shapes in variants}
    track_s: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
    message_s: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
    tracked = dict.fromkeys(variants, 0)
    events = dict.fromkeys(variants, 0)
    detected = 0
    for index, detections in enumerate(scene(objects, warmup + frames, seed)):
        for variant in variants:
            started = time.perf_counter()
            ids, frame_events, overlay = tracks[variant].frame(detections)
            between = time.perf_counter()
            Message.of(detections, "bench", ids, tuple(frame_events), overlay)
            ended = time.perf_counter()
            if index >= warmup:
                track_s[variant].append(between - started)
                message_s[variant].append(ended - between)
                tracked[variant] += int(np.count_nonzero(ids))
                events[variant] += len(frame_events)
        if index >= warmup:
            detected += len(detections)
    return [{
        "objects": objects,
        "method": method,
        "zones_lines": with_scene,
        "track_ms": summary(track_s[(method, with_scene)]),
        "message_ms": summary(message_s[(method, with_scene)]),
        "detections_per_frame": round(detected / frames, 1),
        "with_id_per_frame": round(tracked[(method, with_scene)] / frames, 1),
        "events_per_frame": round(events[(method, with_scene)] / frames, 2),
    } for method, with_scene in variants]


def measure(frames: int, warmup: int, objects: tuple[int, ...] = OBJECTS, seed: int = 16) -> dict:
    rows = [row for n in objects for row in measure_objects(n, frames, warmup, seed)]
    for row in rows:
        shapes = "with" if row["zones_lines"] else "without"
        line = (f"{row['objects']:>4} objects, {row['method']:>9} {shapes:>7} zones and lines: tracking "
                f"{row['track_ms']['median']:.3f} ms median, {row['track_ms']['p95']:.3f} p95; message "
                f"{row['message_ms']['median']:.3f} ms")
        if row["objects"] == TARGET_OBJECTS and row["method"] == "bytetrack" and row["zones_lines"]:
            met = row["track_ms"]["median"] <= TARGET_MS
            line += f" (issue #16: at most {TARGET_MS:g} ms: {'met' if met else 'missed'})"
        print(line, file=sys.stderr, flush=True)
    return {
        "frames": frames,
        "warmup": warmup,
        "size": [WIDTH, HEIGHT],
        "fps": FPS,
        "zones": len(ZONES),
        "lines": len(LINES),
        "low_fraction": LOW_FRACTION,
        "rows": rows,
        "target_ms": TARGET_MS,
        "target_objects": TARGET_OBJECTS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracking_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300, help="timed frames per object count")
    parser.add_argument("--warmup", type=int, default=50, help="frames before the timing starts")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.frames, args.warmup)
    print_result({"machine": machine(), **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
