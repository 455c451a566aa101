"""The track stage in real runs: blob videos through real PyAV decode, an engine whose
boxes are known (tests/support.py), events through the JSONL and video sinks and the metrics.

Blob video b (25 frames at 25 fps, 320x180): the red blob moves right 3 px a frame from
x=80 (centre 106); the blue one moves right 9 px a frame and wraps around twice (frames 5
and 14), so its third track starts at the left and reaches x=140 around frame 18; the
green one wraps at frame 20. A vertical line at x=140 drawn upwards (so `in` is a
left-to-right crossing) is crossed once by red and once by the third blue track.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.core.config import load_config
from pipeline.core.events import validate_event
from pipeline.core.messages import validate_message
from pipeline.run.metrics_server import MetricsCollector
from pipeline.run.runner import run
from support import BlobEngine, write_video

GATE = {"name": "gate", "points": [[140, 180], [140, 0]]}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_blobs(tmp_path: Path, video: Path, source: dict | None = None, **extra) -> tuple[list[dict], list[dict]]:
    overrides = {"sources": [{"uri": str(video), **(source or {})}], "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"], **extra}
    summary = run(load_config(None, overrides), BlobEngine())
    assert summary.exit_code == 0
    events_file = tmp_path / "out.events.jsonl"
    return read_jsonl(tmp_path / "out.jsonl"), read_jsonl(events_file) if events_file.exists() else []


def test_detections_get_track_ids_and_events_validate(tmp_path, videos):
    messages, events = run_blobs(tmp_path, videos["b"], {"lines": [GATE]})
    assert all(validate_message(m) == [] for m in messages)
    assert all(validate_event(e) == [] for e in events), [validate_event(e) for e in events]
    assert len({e["event_id"] for e in events}) == len(events)
    starts = {e["track_id"]: e for e in events if e["type"] == "track_start"}
    ends = {e["track_id"]: e for e in events if e["type"] == "track_end"}
    assert set(starts) == set(ends)  # every track ended: the file is through
    seen = {d["track_id"] for m in messages for d in m["detections"] if d["track_id"] is not None}
    assert seen == set(starts)
    # red never jumps: one id from its third frame (min_hits 3) to the end, never before
    red = [d["track_id"] for m in messages for d in m["detections"] if d["label"] == "red"]
    assert red[:2] == [None, None] and len(set(red[2:])) == 1 and red[2] is not None
    # blue wraps around twice: three tracks
    assert sorted(e["label"] for e in starts.values()).count("blue") == 3
    crossings = [(e["label"], e["direction"]) for e in events if e["type"] == "line_cross"]
    assert sorted(crossings) == [("blue", "in"), ("red", "in")]
    last = [e for e in events if e["type"] == "line_cross"][-1]
    assert last["counts"]["in"] == {"red": 1, "blue": 1} and not any(last["counts"]["out"].values())


def test_events_are_deterministic(tmp_path, videos):
    _, first = run_blobs(tmp_path, videos["b"], {"lines": [GATE]})
    _, second = run_blobs(tmp_path, videos["b"], {"lines": [GATE]})
    assert [e["event_id"] for e in first] == [e["event_id"] for e in second]


def test_zone_enter_and_exit_with_dwell(tmp_path, videos):
    # the left half: red is in it until its anchor passes x=160 (frame 18)
    zone = {"name": "left", "points": [[0, 0], [160, 0], [160, 180], [0, 180]]}
    _, events = run_blobs(tmp_path, videos["b"], {"zones": [zone]})
    red = [e for e in events if e["label"] == "red" and e["type"].startswith("zone")]
    assert [e["type"] for e in red] == ["zone_enter", "zone_exit"]
    enter, exit_ = red
    assert exit_["dwell_s"] == pytest.approx(exit_["pts"] - enter["pts"], abs=1e-3)
    assert exit_["counts"]["entered"]["red"] == 1 and exit_["counts"]["exited"]["red"] == 1


def test_tracking_off_gives_no_ids_and_no_events(tmp_path, videos):
    messages, events = run_blobs(tmp_path, videos["b"], {"lines": [GATE], "tracking": {"enabled": False}})
    assert events == [] and not (tmp_path / "out.events.jsonl").exists()
    assert all("track_id" not in d for m in messages for d in m["detections"])


def test_frames_without_detections(tmp_path):
    blank = tmp_path / "blank.mp4"
    with av.open(str(blank), "w") as container:  # grey frames: the blob engine finds nothing
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((96, 160, 3), 40, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    messages, events = run_blobs(tmp_path, blank, {"lines": [GATE]})
    assert len(messages) == 10 and events == []


def test_zone_outside_the_frame_warns_once_and_never_fires(tmp_path, videos, caplog):
    zone = {"name": "nowhere", "points": [[1000, 1000], [1100, 1000], [1100, 1100]]}
    with caplog.at_level("WARNING", logger="detstream"):
        _, events = run_blobs(tmp_path, videos["b"], {"zones": [zone]})
    assert not [e for e in events if e["type"].startswith("zone")]
    assert len([r for r in caplog.records if "nowhere" in r.getMessage()]) == 1


def test_stride_keeps_identities(tmp_path, videos):
    messages, _ = run_blobs(tmp_path, videos["a"], {"stride": 3})
    red = [d["track_id"] for m in messages for d in m["detections"] if d["label"] == "red"]
    assert red[2] is not None and len(set(red[2:])) == 1


def test_file_tracks_end_when_the_file_ends_not_at_the_end_of_the_run(tmp_path, videos):
    short, long_ = write_video(tmp_path / "short.mp4", 10, 320, 180), videos["a"]
    overrides = {"sources": [str(short), str(long_)], "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"]}
    run(load_config(None, overrides), BlobEngine())
    lines = [json.loads(line) for line in (tmp_path / "out.events.jsonl").read_text().splitlines()]
    messages = read_jsonl(tmp_path / "out.jsonl")
    short_ends = [e for e in lines if e["source"] == "short.mp4" and e["type"] == "track_end"]
    assert short_ends and all(e["seq"] == 9 for e in short_ends)  # the short file's last frame
    assert all(e["session"] == 0 for e in short_ends)
    assert len([m for m in messages if m["source"] == "a.mp4"]) == 40


def test_video_sink_draws_tracks_and_lines(tmp_path, videos):
    overrides = {"sources": [{"uri": str(videos["b"]), "lines": [GATE]}], "sinks": [f"video:{tmp_path / 'out.mp4'}"]}
    assert run(load_config(None, overrides), BlobEngine()).exit_code == 0
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 25
    # the line is drawn in its colour (yellow) down x=140, at row 120 where no blob is in frame 0
    r, g, b = frames[0][120, 140].astype(int)  # a 1 px line at this frame height
    assert r > 180 and g > 150 and b < 100, (r, g, b)


def test_events_are_counted_for_prometheus(tmp_path, videos):
    from pipeline.core.context import RunContext

    ctx = RunContext()
    overrides = {"sources": [{"uri": str(videos["b"]), "lines": [GATE]}], "sinks": [f"jsonl:{tmp_path / 'o.jsonl'}"]}
    run(load_config(None, overrides), BlobEngine(), ctx)
    samples = {
        (s.labels["type"], s.labels["place"], s.labels["direction"], s.labels["label"]): s.value
        for family in MetricsCollector(ctx.metrics).collect() if family.name == "detstream_events"
        for s in family.samples if s.name == "detstream_events_total"
    }
    assert samples[("line_cross", "gate", "in", "red")] == 1
    assert samples[("track_start", "", "", "blue")] == 3
