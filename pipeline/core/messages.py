"""The message every sink writes: schema `detstream.detections/v1`, one per frame.

The schema is documented in docs/message-schema.md; `validate_message` is the executable
form of that document and is what the tests (and consumers, if they like) check against.
The track stage builds each frame's `Message` once (with the frame's events, schema
pipeline/core/events.py); every sink writes the same line.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.events import EVENT_NAMESPACE, Event
from pipeline.core.types import Detections

SCHEMA = "detstream.detections/v1"
STAGES = ("decode", "preprocess", "proposals", "detect", "postprocess", "track")  # proposals: R-CNN, Fast R-CNN only


def event_id(source: str, seq: int) -> str:
    """Deterministic id of frame `seq` of `source`: a retry of the same frame has the same id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{source}/{seq}"))


def latency_ms(stamps: dict[str, float]) -> dict[str, float]:
    """Time from the previous stage's hand-off to this stage's hand-off (queue wait included)."""
    out: dict[str, float] = {}
    previous = stamps.get("start")
    for stage in STAGES:
        if stage in stamps and previous is not None:
            out[stage] = round((stamps[stage] - previous) * 1000.0, 3)
            previous = stamps[stage]
    if "start" in stamps and previous is not None:
        out["total"] = round((previous - stamps["start"]) * 1000.0, 3)
    return out


def to_message(detections: Detections, model: str, track_ids: np.ndarray | None = None) -> dict[str, Any]:
    """The frame's message; with `track_ids` (0: no confirmed track) each detection gets `track_id`."""
    frame = detections.frame
    items = []
    for i in range(len(detections)):
        item: dict[str, Any] = {
            "box": [round(float(v), 2) for v in detections.boxes[i]],
            "score": round(float(detections.scores[i]), 4),
            "class_id": int(detections.class_ids[i]),
            "label": detections.labels[i],
        }
        if track_ids is not None:
            item["track_id"] = int(track_ids[i]) or None
        if detections.masks is not None:
            item["mask"] = detections.masks[i]
        items.append(item)
    return {
        "schema": SCHEMA,
        "event_id": event_id(frame.source, frame.seq),
        "source": frame.source,
        "seq": frame.seq,
        "pts": round(frame.pts, 6),
        "capture_ts": round(frame.capture_ts, 6),
        "session": frame.session,
        "width": frame.width,
        "height": frame.height,
        "model": model,
        "detections": items,
        "latency_ms": latency_ms(frame.stamps),
    }


@dataclass(frozen=True)
class Overlay:
    """What an annotated frame shows beyond its boxes: its source's zones and lines (pixels)
    and their running counts by class name."""

    zones: dict[str, np.ndarray]  # name -> K x 2 polygon
    lines: dict[str, np.ndarray]  # name -> 2 x 2 segment
    counts: dict[str, dict[str, dict[str, int]]]  # zone or line -> group -> class -> n


@dataclass(frozen=True)
class Message:
    """What sinks receive: one frame's detections and its message, serialised once, with
    the events the frame caused and what to draw over it."""

    detections: Detections
    body: dict[str, Any]
    line: str  # `body` as compact JSON, without a newline
    events: tuple[Event, ...] = ()
    overlay: Overlay | None = None

    @classmethod
    def of(
        cls,
        detections: Detections,
        model: str,
        track_ids: np.ndarray | None = None,
        events: tuple[Event, ...] = (),
        overlay: Overlay | None = None,
    ) -> Message:
        body = to_message(detections, model, track_ids)
        return cls(detections, body, json.dumps(body, separators=(",", ":")), events, overlay)


_TOP_LEVEL: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "event_id": str,
    "source": str,
    "seq": int,
    "pts": (int, float),
    "capture_ts": (int, float),
    "width": int,
    "height": int,
    "model": str,
    "detections": list,
    "latency_ms": dict,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_message(message: Any) -> list[str]:
    """Problems with `message` against schema v1; an empty list means valid."""
    if not isinstance(message, dict):
        return [f"message is {type(message).__name__}, expected an object"]
    problems = []
    for key, kind in _TOP_LEVEL.items():
        if key not in message:
            problems.append(f"missing {key!r}")
        elif not isinstance(message[key], kind) or isinstance(message[key], bool):
            problems.append(f"{key!r} has type {type(message[key]).__name__}")
    if problems:
        return problems
    # added within v1: checked when present, so messages of earlier v1 writers stay valid
    session = message.get("session", 0)
    if not isinstance(session, int) or isinstance(session, bool) or session < 0:
        problems.append(f"'session' {session!r} is not an int >= 0")
    if message["seq"] < 0:
        problems.append(f"'seq' {message['seq']} is negative")
    if message["schema"] != SCHEMA:
        problems.append(f"schema is {message['schema']!r}, expected {SCHEMA!r}")
    if message["event_id"] != event_id(message["source"], message["seq"]):
        problems.append("event_id does not match source and seq")
    for i, det in enumerate(message["detections"]):
        if not isinstance(det, dict):
            problems.append(f"detections[{i}] is {type(det).__name__}, expected an object")
            continue
        box = det.get("box")
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)
                and box[0] <= box[2] and box[1] <= box[3]):
            problems.append(f"detections[{i}].box {box!r} is not [x1, y1, x2, y2]")
        elif not (0 <= box[0] and box[2] <= message["width"] and 0 <= box[1] and box[3] <= message["height"]):
            problems.append(f"detections[{i}].box {box!r} is outside the {message['width']}x{message['height']} frame")
        if not isinstance(det.get("score"), float) or not 0 <= det["score"] <= 1:
            problems.append(f"detections[{i}].score {det.get('score')!r} is not in [0, 1]")
        if not isinstance(det.get("class_id"), int) or not isinstance(det.get("label"), str):
            problems.append(f"detections[{i}] needs an int class_id and a str label")
        track_id = det.get("track_id")  # added within v1: null or absent means no confirmed track
        if track_id is not None and (not isinstance(track_id, int) or isinstance(track_id, bool) or track_id < 1):
            problems.append(f"detections[{i}].track_id {track_id!r} is not null or an int >= 1")
        mask = det.get("mask")
        if mask is not None and (not isinstance(mask, dict) or mask.get("size") != [message["height"], message["width"]] or not isinstance(mask.get("counts"), str)):
            problems.append(f"detections[{i}].mask is not a COCO RLE of the frame size")
    return problems
