"""Event messages: schema `detstream.events/v1`, one JSON object per event.

The tracking stage (stages/track.py) emits them: `track_start`, `track_end`,
`zone_enter`, `zone_exit` (with `dwell_s`) and `line_cross` (with `direction`). The
schema is documented in docs/message-schema.md; `validate_event` is its executable form.
Event ids are deterministic (UUIDv5 of source, track, type, place and frame), so a retry
of the same event has the same id and consumers deduplicate them like detections.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline.core.messages import EVENT_NAMESPACE

EVENTS_SCHEMA = "detstream.events/v1"
TRACK_TYPES = ("track_start", "track_end")
ZONE_TYPES = ("zone_enter", "zone_exit")
EVENT_TYPES = (*TRACK_TYPES, *ZONE_TYPES, "line_cross")


def track_event_id(source: str, track_id: int, kind: str, place: str | None, seq: int) -> str:
    """Deterministic id: the same event of the same track at the same frame has the same id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{source}/track/{track_id}/{kind}/{place or ''}/{seq}"))


@dataclass(frozen=True)
class Event:
    """One event and its JSON line (serialised once for every sink)."""

    body: dict[str, Any]
    line: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Event:
        return cls(body, json.dumps(body, separators=(",", ":")))

    @property
    def type(self) -> str:
        return str(self.body["type"])

    @property
    def source(self) -> str:
        return str(self.body["source"])


@dataclass(frozen=True)
class EventBatch:
    """Events that belong to no frame (tracks ended at the end of a source or of the run)."""

    source: str
    events: tuple[Event, ...]


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "event_id": str,
    "type": str,
    "source": str,
    "session": int,
    "seq": int,
    "pts": (int, float),
    "capture_ts": (int, float),
    "track_id": int,
    "class_id": int,
    "label": str,
    "box": list,
    "score": float,
    "counts": dict,
    "model": str,
}
# fields only some types carry, with their types
_BY_TYPE: dict[str, dict[str, type | tuple[type, ...]]] = {
    "track_start": {},
    "track_end": {"first_t": (int, float), "last_t": (int, float), "hits": int},
    "zone_enter": {"zone": str},
    "zone_exit": {"zone": str, "dwell_s": (int, float)},
    "line_cross": {"line": str, "direction": str},
}


def _typed(value: Any, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def validate_event(event: Any) -> list[str]:
    """Problems with `event` against schema events/v1; an empty list means valid."""
    if not isinstance(event, dict):
        return [f"event is {type(event).__name__}, expected an object"]
    problems = [f"missing {key!r}" for key in _REQUIRED if key not in event]
    problems += [f"{key!r} has type {type(event[key]).__name__}" for key, kind in _REQUIRED.items()
                 if key in event and not _typed(event[key], kind)]
    if problems:
        return problems
    if event["schema"] != EVENTS_SCHEMA:
        problems.append(f"schema is {event['schema']!r}, expected {EVENTS_SCHEMA!r}")
    kind = event["type"]
    if kind not in _BY_TYPE:
        return problems + [f"type {kind!r} is not one of {', '.join(EVENT_TYPES)}"]
    for key, field_type in _BY_TYPE[kind].items():
        if key not in event:
            problems.append(f"{kind} needs {key!r}")
        elif not _typed(event[key], field_type):
            problems.append(f"{key!r} has type {type(event[key]).__name__}")
    if problems:
        return problems
    place = event.get("zone") or event.get("line")
    if event["event_id"] != track_event_id(event["source"], event["track_id"], kind, place, event["seq"]):
        problems.append("event_id does not match source, track_id, type, place and seq")
    if event["track_id"] < 1 or event["seq"] < 0 or event["session"] < 0:
        problems.append("track_id must be >= 1, seq and session >= 0")
    box = event["box"]
    if not (len(box) == 4 and all(_typed(v, (int, float)) for v in box) and box[0] <= box[2] and box[1] <= box[3]):
        problems.append(f"box {box!r} is not [x1, y1, x2, y2]")
    if not 0 <= event["score"] <= 1:
        problems.append(f"score {event['score']} is not in [0, 1]")
    if kind == "zone_exit" and event["dwell_s"] < 0:
        problems.append(f"dwell_s {event['dwell_s']} is negative")
    for group, by_class in event["counts"].items():
        if not (isinstance(by_class, dict) and all(isinstance(k, str) and _typed(n, int) and n >= 0 for k, n in by_class.items())):
            problems.append(f"counts[{group!r}] is not {{class name: count >= 0}}")
    return problems
