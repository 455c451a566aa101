"""Event messages: schema `detstream.events/v1`, one JSON object per event.

The tracking stage (stages/track.py) emits them: `track_start`, `track_end`,
`zone_enter`, `zone_exit` (with `dwell_s`) and `line_cross` (with `direction`); with
clips on (stages/clips/), an event that starts or extends a clip carries its `clip` path
and its track's `snapshot` paths, and `clip_ready` follows once the clip is closed. The
schema is documented in docs/message-schema.md; `validate_event` is its executable form.
Event ids are deterministic (UUIDv5 of source, track, type, place and frame; a clip's, of
the event that opened it), so a retry of the same event has the same id and consumers
deduplicate them like detections.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

# Fixed namespace of every event id (frames' and tracks'): the same on every machine and run.
EVENT_NAMESPACE = uuid.UUID("6f1d8a52-3c4e-4b7a-9f0e-2d5c8b1a7e90")
EVENTS_SCHEMA = "detstream.events/v1"
TRACK_TYPES = ("track_start", "track_end")
ZONE_TYPES = ("zone_enter", "zone_exit")
LINE_TYPES = ("line_cross",)
TRACK_EVENT_TYPES = (*TRACK_TYPES, *ZONE_TYPES, *LINE_TYPES)  # the events of one track
CLIP_READY = "clip_ready"
EVENT_TYPES = (*TRACK_EVENT_TYPES, CLIP_READY)


def track_event_id(source: str, track_id: int, kind: str, place: str | None, seq: int) -> str:
    """Deterministic id: the same event of the same track at the same frame has the same id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{source}/track/{track_id}/{kind}/{place or ''}/{seq}"))


def clip_event_id(source: str, opened_by: str) -> str:
    """Deterministic id of a `clip_ready`: the clip opened by event `opened_by` of `source`."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{source}/clip/{opened_by}"))


@dataclass(frozen=True)
class Event:
    """One event and its JSON line (serialised once for every sink)."""

    body: dict[str, Any]
    line: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Event:
        return cls(body, json.dumps(body, separators=(",", ":")))

    def with_fields(self, **fields: Any) -> Event:
        """This event with `fields` added (events are immutable: a new Event, its line re-serialised)."""
        return Event.of({**self.body, **fields})

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


Kind = type | tuple[type, ...]
_REQUIRED: dict[str, Kind] = {
    "schema": str,
    "event_id": str,
    "type": str,
    "source": str,
    "session": int,
    "seq": int,
    "pts": (int, float),
    "capture_ts": (int, float),
}
# what every event of a track carries
_TRACK: dict[str, Kind] = {
    "track_id": int,
    "class_id": int,
    "label": str,
    "box": list,
    "score": float,
    "counts": dict,
    "model": str,
}
_CLIP: dict[str, Kind] = {
    "clip": str,
    "start_pts": (int, float),
    "end_pts": (int, float),
    "bytes": int,
    "complete": bool,
    "events": list,
    "track_ids": list,
    "snapshots": list,
}
# fields only some types carry, with their types
_BY_TYPE: dict[str, dict[str, Kind]] = {
    "track_start": _TRACK,
    "track_end": {**_TRACK, "first_t": (int, float), "last_t": (int, float), "hits": int},
    "zone_enter": {**_TRACK, "zone": str},
    "zone_exit": {**_TRACK, "zone": str, "dwell_s": (int, float)},
    "line_cross": {**_TRACK, "line": str, "direction": str},
    CLIP_READY: _CLIP,
}
SNAPSHOT_KINDS = ("annotated", "crop")


def _typed(value: Any, kind: Kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    return isinstance(value, kind) and not isinstance(value, bool)


def validate_event(event: Any) -> list[str]:
    """Problems with `event` against schema events/v1; an empty list means valid."""
    if not isinstance(event, dict):
        return [f"event is {type(event).__name__}, expected an object"]
    problems = _check_types(event, _REQUIRED)
    if problems:
        return problems
    if event["schema"] != EVENTS_SCHEMA:
        problems.append(f"schema is {event['schema']!r}, expected {EVENTS_SCHEMA!r}")
    kind = event["type"]
    if kind not in _BY_TYPE:
        return problems + [f"type {kind!r} is not one of {', '.join(EVENT_TYPES)}"]
    problems += [problem.replace("missing", f"{kind} needs", 1) for problem in _check_types(event, _BY_TYPE[kind])]
    if problems:
        return problems
    if event["seq"] < 0 or event["session"] < 0:
        problems.append("seq and session must be >= 0")
    return problems + (_clip_problems(event) if kind == CLIP_READY else _track_problems(event))


def _check_types(event: dict[str, Any], fields: dict[str, Kind]) -> list[str]:
    problems = [f"missing {key!r}" for key in fields if key not in event]
    return problems + [f"{key!r} has type {type(event[key]).__name__}" for key, kind in fields.items()
                       if key in event and not _typed(event[key], kind)]


def _track_problems(event: dict[str, Any]) -> list[str]:
    problems = []
    place = event.get("zone") or event.get("line")
    if event["event_id"] != track_event_id(event["source"], event["track_id"], event["type"], place, event["seq"]):
        problems.append("event_id does not match source, track_id, type, place and seq")
    if event["track_id"] < 1:
        problems.append("track_id must be >= 1")
    box = event["box"]
    if not (len(box) == 4 and all(_typed(v, (int, float)) for v in box) and box[0] <= box[2] and box[1] <= box[3]):
        problems.append(f"box {box!r} is not [x1, y1, x2, y2]")
    if not 0 <= event["score"] <= 1:
        problems.append(f"score {event['score']} is not in [0, 1]")
    if event["type"] == "zone_exit" and event["dwell_s"] < 0:
        problems.append(f"dwell_s {event['dwell_s']} is negative")
    for group, by_class in event["counts"].items():
        if not (isinstance(by_class, dict) and all(isinstance(k, str) and _typed(n, int) and n >= 0 for k, n in by_class.items())):
            problems.append(f"counts[{group!r}] is not {{class name: count >= 0}}")
    # added within v1 by clips: checked when present
    if "clip" in event and not (isinstance(event["clip"], str) and event["clip"]):
        problems.append(f"clip {event['clip']!r} is not a path")
    snapshot = event.get("snapshot")
    if snapshot is not None and not (isinstance(snapshot, dict) and snapshot and set(snapshot) <= set(SNAPSHOT_KINDS)
                                     and all(isinstance(path, str) and path for path in snapshot.values())):
        problems.append(f"snapshot {snapshot!r} is not {{{' or '.join(SNAPSHOT_KINDS)}: path}}")
    return problems


def _clip_problems(event: dict[str, Any]) -> list[str]:
    problems = []
    ids = event["events"]
    if not (ids and all(isinstance(i, str) for i in ids)):
        problems.append("events must list the ids of the events in the clip, the first opened it")
    elif event["event_id"] != clip_event_id(event["source"], ids[0]):
        problems.append("event_id does not match source and the first of events")
    if not all(_typed(t, int) and t >= 1 for t in event["track_ids"]):
        problems.append(f"track_ids {event['track_ids']!r} are not ints >= 1")
    if not event["clip"]:
        problems.append("clip is empty")
    if not all(isinstance(path, str) and path for path in event["snapshots"]):
        problems.append("snapshots must be paths")
    if event["end_pts"] < event["start_pts"]:
        problems.append(f"end_pts {event['end_pts']} is before start_pts {event['start_pts']}")
    if event["bytes"] < 0:
        problems.append(f"bytes {event['bytes']} is negative")
    return problems
