"""Clips from a real RTSP camera: gst-rtsp-server serving a clip of people crossing a line
(tests/clips_support.py: 25 fps, a key frame every second). A clip of a crossing covers
its pre- and post-roll to the GOP and decodes without an error; a camera that goes away
in the middle of a clip's post-roll still gets that clip, with what was buffered, and its
clip_ready says it is not complete.

People enter every 4 s from 2 s on; each crossing counts 48 frames after its person
entered: at 3.92 s, 7.92 s, ... of the stream. With pre_s 1 and post_s 2 their windows
do not overlap. The camera is killed as soon as the second crossing's event is out,
well within its 2 s post-roll.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clips_support import DOOR, FPS, Walker, decoded, packets, person_engine, write_walkers
from pipeline.core.config import load_config
from pipeline.core.events import validate_event
from rtsp_support import BackgroundRun

GOP_S = 1.0
PRE_S, POST_S = 1.0, 2.0
WALKERS = [Walker(first=50 + 100 * i) for i in range(3)]
LIVE = {"name": "cam", "open_timeout_s": 5.0, "read_timeout_s": 2.0, "lines": [DOOR],
        "reconnect": {"initial_s": 0.2, "max_s": 0.5}}


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def check_clip(ready: dict, crossing: dict) -> None:
    """First frame a key frame, every frame decodes, the clip spans its clip_ready's times."""
    clip = Path(ready["clip"])
    assert clip.stat().st_size == ready["bytes"]
    assert packets(clip)[0].is_keyframe
    times = decoded(clip)
    assert len(times) == len(packets(clip))
    assert times[-1] - times[0] == pytest.approx(ready["end_pts"] - ready["start_pts"], abs=1.5 / FPS)
    t = crossing["pts"]
    assert ready["start_pts"] <= t - PRE_S < ready["start_pts"] + GOP_S + 0.5 / FPS  # from a key frame, to the GOP


def test_clips_from_a_live_camera_and_one_cut_short_by_its_loss(tmp_path, rtsp_server):
    video = write_walkers(tmp_path / "people.mp4", 12 * FPS, WALKERS, gop=FPS)
    server = rtsp_server(video=video)
    events_file = tmp_path / "out.events.jsonl"
    clips = {"enabled": True, "dir": str(tmp_path / "clips"), "pre_s": PRE_S, "post_s": POST_S, "buffer_s": 3,
             "rules": [{"types": ["line_cross"]}], "snapshots": {"annotated": False}}
    config = load_config(None, {"sources": [{**LIVE, "uri": server.url()}], "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"],
                                "clips": clips})
    run = BackgroundRun(config, person_engine())

    def of_type(kind: str) -> list[dict]:
        return [e for e in read_events(events_file) if e["type"] == kind]

    run.wait_for(lambda: len(of_type("clip_ready")) >= 1, 30, "the first clip")
    run.wait_for(lambda: len(of_type("line_cross")) >= 2, 30, "the second crossing")
    server.kill()
    run.wait_for(lambda: len(of_type("clip_ready")) >= 2, 15, "the clip cut short")
    summary = run.stop()
    assert not summary.stage_errors

    events = read_events(events_file)
    assert all(validate_event(e) == [] for e in events), [validate_event(e) for e in events]
    crossings, ready = of_type("line_cross"), of_type("clip_ready")
    assert len(crossings) == len(ready) == 2
    assert crossings[1]["pts"] - crossings[0]["pts"] == pytest.approx(4.0, abs=0.05)
    for crossing, clip in zip(crossings, ready):
        assert clip["events"] == [crossing["event_id"]] and crossing["clip"] == clip["clip"]
        assert Path(crossing["snapshot"]["crop"]).stat().st_size > 0
        check_clip(clip, crossing)
    complete, cut = ready
    assert complete["complete"] and complete["end_pts"] == pytest.approx(crossings[0]["pts"] + POST_S, abs=0.5 / FPS)
    assert not cut["complete"] and crossings[1]["pts"] <= cut["end_pts"] < crossings[1]["pts"] + POST_S - 0.5
