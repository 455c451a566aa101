"""Event clips from files, end to end: real PyAV demux, the blob engine (its red class
named person), the track stage's line events, the clip writer, JSONL events; clips and
snapshots checked with PyAV and OpenCV (tests/clips_support.py makes the videos)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from clips_support import DOOR, FPS, HEIGHT, WIDTH, Walker, decoded, packets, person_engine, write_walkers
from pipeline.core.config import load_config
from pipeline.core.events import validate_event
from pipeline.run.runner import run

GOP = 10  # frames: 0.4 s
PRE_S, POST_S = 1.0, 1.0


def run_clips(tmp_path: Path, video: Path, **clips: object) -> list[dict]:
    """Run `video` with the door line and clips on line crossings of people; the events."""
    settings = {"enabled": True, "dir": str(tmp_path / "clips"), "pre_s": PRE_S, "post_s": POST_S, "buffer_s": 3,
                "rules": [{"types": ["line_cross"], "classes": ["person"]}], **clips}
    overrides = {"sources": [{"uri": str(video), "name": "cam", "lines": [DOOR]}],
                 "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"], "clips": settings}
    summary = run(load_config(None, overrides), person_engine())
    assert summary.exit_code == 0, summary.stage_errors or summary.source_errors
    events = [json.loads(line) for line in (tmp_path / "out.events.jsonl").read_text().splitlines()]
    assert all(validate_event(e) == [] for e in events), [validate_event(e) for e in events]
    return events


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def test_a_person_crossing_a_line_gives_one_event_one_snapshot_and_one_clip_of_the_source_packets(tmp_path):
    walker = Walker(first=0)
    t = walker.crossing_frame() / FPS  # 2.2 s
    video = write_walkers(tmp_path / "cam.mp4", 90, [walker], gop=GOP)
    events = run_clips(tmp_path, video, snapshots={"crop": False})

    (cross,) = of_type(events, "line_cross")
    assert cross["pts"] == pytest.approx(t) and cross["direction"] == "in" and cross["label"] == "person"
    assert all("clip" not in e for e in of_type(events, "track_start") + of_type(events, "track_end"))  # crossings only
    (ready,) = of_type(events, "clip_ready")
    assert events.index(ready) > events.index(cross)
    clip = Path(cross["clip"])
    assert ready["clip"] == str(clip) and ready["events"] == [cross["event_id"]] and ready["track_ids"] == [cross["track_id"]]
    assert ready["complete"] and ready["bytes"] == clip.stat().st_size
    assert sorted(p.name for p in clip.parent.iterdir()) == sorted([clip.name, Path(cross["snapshot"]["annotated"]).name])

    # the snapshot: the whole frame, annotated
    assert list(cross["snapshot"]) == ["annotated"] and ready["snapshots"] == [cross["snapshot"]["annotated"]]
    image = cv2.imread(cross["snapshot"]["annotated"])
    assert image.shape == (HEIGHT, WIDTH, 3)

    # the clip: from the last key frame at or before t - pre_s to t + post_s, stream copy
    source, clipped = packets(video), packets(clip)
    assert clipped[0].is_keyframe
    first = next(i for i, p in enumerate(source) if bytes(p) == bytes(clipped[0]))
    assert [bytes(p) for p in clipped] == [bytes(p) for p in source[first:first + len(clipped)]]
    start, end = first / FPS, (first + len(clipped) - 1) / FPS
    assert start <= t - PRE_S < start + GOP / FPS  # to the GOP
    assert end == pytest.approx(t + POST_S)
    assert (ready["start_pts"], ready["end_pts"]) == (pytest.approx(start), pytest.approx(end))
    times = decoded(clip)  # no decode error, every frame there
    assert len(times) == len(clipped) and times[-1] - times[0] == pytest.approx(end - start)


def test_overlapping_crossings_are_one_clip_and_later_ones_another(tmp_path):
    # two people cross 0.6 s apart (their windows overlap), a third 3.2 s after the second;
    # B-frames: the clip is cut in decode order and still decodes whole
    walkers = [Walker(first=0, top=20), Walker(first=15, top=160), Walker(first=95, top=90)]
    video = write_walkers(tmp_path / "cam.mp4", 190, walkers, gop=GOP, bframes=2)
    events = run_clips(tmp_path, video)

    crossings = of_type(events, "line_cross")
    assert [e["pts"] for e in crossings] == [pytest.approx(w.crossing_frame() / FPS) for w in walkers]
    first, second = of_type(events, "clip_ready")
    assert first["events"] == [e["event_id"] for e in crossings[:2]] and second["events"] == [crossings[2]["event_id"]]
    assert crossings[0]["clip"] == crossings[1]["clip"] == first["clip"] != crossings[2]["clip"] == second["clip"]
    assert first["start_pts"] <= crossings[0]["pts"] - PRE_S and first["end_pts"] >= crossings[1]["pts"] + POST_S
    # each track of a clip has its snapshots, annotated and cropped, named after the clip and the track
    assert len(first["snapshots"]) == 4 and len(second["snapshots"]) == 2
    for crossing in crossings:
        crop = cv2.imread(crossing["snapshot"]["crop"])
        assert crop.shape[0] == pytest.approx(60 * 1.4, abs=3) and crop.shape[1] == pytest.approx(24 * 1.4, abs=3)
    for ready in (first, second):
        clip = Path(ready["clip"])
        assert packets(clip)[0].is_keyframe
        times = decoded(clip)
        assert len(times) == len(packets(clip))
        assert times[-1] - times[0] == pytest.approx(ready["end_pts"] - ready["start_pts"], abs=1.5 / FPS)


def test_the_end_of_the_file_closes_a_clip_with_what_there_is(tmp_path):
    walker = Walker(first=0)
    frames = walker.crossing_frame() + 10  # the file ends 0.4 s after the crossing, before post_s
    video = write_walkers(tmp_path / "cam.mp4", frames, [walker], gop=GOP)
    events = run_clips(tmp_path, video)
    (ready,) = of_type(events, "clip_ready")
    assert not ready["complete"] and ready["end_pts"] == pytest.approx((frames - 1) / FPS)
    assert events[-1] == ready or events.index(ready) > events.index(of_type(events, "line_cross")[0])
    assert len(decoded(Path(ready["clip"]))) == len(packets(Path(ready["clip"])))


def test_retention_keeps_the_clip_folder_under_its_size_limit(tmp_path):
    # six people, each crossing 2.4 s after the one before: six clips, of about 2 s each
    walkers = [Walker(first=60 * i, start_x=130, speed=3) for i in range(6)]
    video = write_walkers(tmp_path / "cam.mp4", 360, walkers, gop=GOP)
    limit = 25_000  # clips of about 6 KB
    events = run_clips(tmp_path, video, pre_s=0.5, post_s=0.5, snapshots={"enabled": False},
                       retention={"max_bytes": limit})
    ready = of_type(events, "clip_ready")
    assert len(ready) == 6 and len({e["clip"] for e in ready}) == 6
    sizes = [e["bytes"] for e in ready]
    assert sum(sizes) > limit > max(sizes)  # more clips than fit, each fits alone
    kept = sorted((tmp_path / "clips" / "cam").iterdir())
    assert sum(p.stat().st_size for p in kept) <= limit
    # the oldest went first: what is left is the newest clips, as many as fit
    expected = []
    for event in reversed(ready):
        if sum(e["bytes"] for e in expected) + event["bytes"] > limit:
            break
        expected.insert(0, event)
    assert [str(p) for p in kept] == [e["clip"] for e in expected] and 0 < len(kept) < 6
