"""Fuzz: the message and event validators take any JSON (what a consumer reads off Redis)
and answer with a list of problems; they never raise."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import FUZZ, outcome
from pipeline.core.events import EVENTS_SCHEMA, track_event_id, validate_event
from pipeline.core.messages import SCHEMA, event_id, validate_message

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=12,
)


def valid_message() -> dict[str, Any]:
    det = {"box": [1.0, 2.0, 30.0, 40.0], "score": 0.9, "class_id": 1, "label": "car", "track_id": 3,
           "mask": {"size": [100, 200], "counts": "abc"}}
    return {"schema": SCHEMA, "event_id": event_id("cam", 4), "source": "cam", "seq": 4, "session": 0, "pts": 0.16,
            "capture_ts": 1.0, "width": 200, "height": 100, "model": "m", "detections": [det], "latency_ms": {}}


def valid_event() -> dict[str, Any]:
    return {"schema": EVENTS_SCHEMA, "event_id": track_event_id("cam", 3, "zone_exit", "door", 4), "type": "zone_exit",
            "source": "cam", "session": 0, "seq": 4, "pts": 0.16, "capture_ts": 1.0, "track_id": 3, "class_id": 1,
            "label": "car", "box": [1.0, 2.0, 3.0, 4.0], "score": 0.5, "counts": {"door": {"car": 1}}, "model": "m",
            "zone": "door", "dwell_s": 2.0, "clip": "/c.mp4", "snapshot": {"crop": "/s.jpg"}}


def test_the_templates_are_valid():
    assert validate_message(valid_message()) == [] and validate_event(valid_event()) == []


def _mutate(record: dict[str, Any], changes: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """`record` with the value at each path replaced (paths reach into detections[0], mask, box)."""
    record = json.loads(json.dumps(record))
    for path, value in changes:
        try:
            target: Any = record
            for step in path[:-1]:
                target = target[int(step)] if isinstance(target, list) else target[step]
            if isinstance(target, list):
                target[int(path[-1])] = value
            else:
                target[path[-1]] = value
        except (LookupError, TypeError, ValueError):
            continue  # an earlier change replaced what this path goes through
    return record


MESSAGE_PATHS = [[k] for k in valid_message()] + [["detections", "0"]] + [
    ["detections", "0", k] for k in ("box", "score", "class_id", "label", "track_id", "mask")
] + [["detections", "0", "box", "0"], ["detections", "0", "mask", "size"], ["detections", "0", "mask", "counts"]]
EVENT_PATHS = [[k] for k in valid_event()] + [["box", "0"], ["counts", "door"], ["snapshot", "crop"], ["type"]]


def _problems(validate, record: Any) -> list[str]:
    problems = outcome(lambda: validate(record))
    assert isinstance(problems, list) and all(isinstance(p, str) and p for p in problems)
    return problems


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(MESSAGE_PATHS), json_values), min_size=1, max_size=3))
def test_mutated_messages(changes):
    _problems(validate_message, _mutate(valid_message(), changes))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(EVENT_PATHS), json_values), min_size=1, max_size=3),
       st.sampled_from(["track_start", "track_end", "zone_enter", "zone_exit", "line_cross", "clip_ready"]))
def test_mutated_events(changes, kind):
    _problems(validate_event, _mutate({**valid_event(), "type": kind}, changes))


@FUZZ
@given(json_values)
def test_any_json(value):
    _problems(validate_message, value)
    _problems(validate_event, value)
