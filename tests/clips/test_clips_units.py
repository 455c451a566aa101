"""The parts of clips on their own: settings and their errors, rules, the packet buffer's
bounds, retention, the clip fields of the event schema, and the atomic file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import pytest

from clips_support import Walker, write_walkers
from pipeline.core.clips_config import ClipRule, RetentionConfig, parse_size
from pipeline.core.config import RunConfig, parse_settings
from pipeline.core.errors import ConfigError
from pipeline.core.events import Event, clip_event_id, track_event_id, validate_event
from pipeline.core.files import AtomicFile
from stages.clips.retention import Retention
from stages.clips.ring import PacketRing
from stages.clips.rules import Rules, check_classes

DOOR = {"name": "door", "points": [[160, 240], [160, 0]]}


@pytest.mark.parametrize(("settings", "message"), [
    ({"clips": {"pre_s": -1}}, "clips.pre_s = -1: Input should be greater than or equal to 0"),
    ({"clips": {"buffer_s": 2}}, "buffer_s (2) must be at least pre_s (5): the pre-roll comes out of the buffer"),
    ({"clips": {"buffer_bytes": "12 parsecs"}}, "clips.buffer_bytes = '12 parsecs': expected a size in bytes, such as"),
    ({"clips": {"rules": [{"types": ["line_crossing"]}]}},
     "clips.rules.0.types = ['line_crossing']: 'line_crossing' is not an event type that can start a clip (allowed: "
     "track_start, track_end, zone_enter, zone_exit, line_cross)"),
    ({"clips": {"rules": [{"types": "line_cross", "zones": ["yard"]}]}},
     "zones ['yard'] given, but types ['line_cross'] has no zone event (zone_enter, zone_exit)"),
    ({"clips": {"snapshots": {"annotated": False, "crop": False}}}, "annotated and crop are both false"),
    ({"clips": {"enabled": True, "rules": [{"types": "line_cross", "lines": ["dor"]}]},
      "sources": [{"uri": "a.mp4", "lines": [DOOR]}]},
     "run.yaml: clips.rules.0.lines: 'dor' is not one of the sources' lines (allowed: door)"),
    ({"clips": {"enabled": True}, "sources": [{"uri": "a.mp4", "clips": {"pre_s": 20}}]},
     "run.yaml: sources.0.clips: buffer_s (10) must be at least pre_s (20)"),
    ({"sources": [{"uri": "a.mp4", "clips": {"dir": "elsewhere"}}]},
     "sources.0.clips = {'dir': 'elsewhere'}: unknown key 'dir' (allowed here: enabled, pre_s, post_s, buffer_s,"),
    ({"clips": {"retention": {"max_age_s": 0}}}, "clips.retention.max_age_s = 0: Input should be greater than 0"),
    ({"clips": {"rules": []}}, "clips.rules = []: List should have at least 1 item"),
])
def test_bad_clips_settings_name_the_key_the_value_and_what_is_allowed(settings, message):
    with pytest.raises(ConfigError) as error:
        parse_settings(RunConfig, settings, "run.yaml")
    assert message in str(error.value)


def test_clips_settings_defaults_sizes_and_a_source_of_its_own():
    config = parse_settings(RunConfig, {"clips": {"enabled": True, "buffer_bytes": "32MiB"},
                                        "sources": ["a.mp4", {"uri": "b.mp4", "clips": {"enabled": False}}]}, "run")
    assert config.clips.buffer_bytes == 32 * 2**20 and config.clips.rules == [ClipRule()]
    assert config.source_clips(config.sources[0]).enabled and not config.source_clips(config.sources[1]).enabled
    assert [parse_size(v) for v in (1000, "64MB", "1.5 GiB", "512kb")] == [1000, 64 * 10**6, 3 * 2**29, 512_000]
    assert RetentionConfig().max_bytes == 10**10


def event(kind: str, label: str = "person", **place: str) -> Event:
    name = place.get("zone") or place.get("line")
    body = {"schema": "detstream.events/v1", "event_id": track_event_id("cam", 1, kind, name, 5), "type": kind,
            "source": "cam", "session": 0, "seq": 5, "pts": 0.2, "capture_ts": 1.0e9, "track_id": 1, "class_id": 1,
            "label": label, "box": [1.0, 2.0, 30.0, 60.0], "score": 0.9, **place, "counts": {}, "model": "m"}
    if kind == "line_cross":
        body["direction"] = "in"
    return Event.of(body)


def test_rules_match_type_class_and_place():
    rules = Rules([ClipRule(types=("line_cross",), classes=("person",), lines=("door",)),
                   ClipRule(types=("zone_enter",))])
    assert rules.match(event("line_cross", line="door"))
    assert not rules.match(event("line_cross", line="gate"))  # another line
    assert not rules.match(event("line_cross", "car", line="door"))  # another class
    assert rules.match(event("zone_enter", "car", zone="yard"))  # the second rule: any class, any zone
    assert not rules.match(event("track_start"))
    assert rules.classes is None  # the second rule takes every class: best boxes of all are kept
    assert Rules([ClipRule(classes=("person", "dog"))]).classes == {"person", "dog"}
    with pytest.raises(ConfigError, match=r"clips.rules.0.classes: 'persn' is not a class of the model \(allowed: person"):
        check_classes([ClipRule(classes=("persn",))], ("__background__", "person", "car"), "clips")


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory) -> Path:
    """4 s at 25 fps, a key frame every 10 frames."""
    return write_walkers(tmp_path_factory.mktemp("ring") / "v.mp4", 100, [Walker(first=0)], gop=10)


def fill(ring: PacketRing, video: Path, session: int = 0, start: int = 0) -> int:
    """Put the packets of `video` from packet `start` on (as a reader does); their count."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        ring.opened(stream, session)
        count = 0
        for i, packet in enumerate(container.demux(stream)):
            if i >= start:
                ring.put(packet)
                count += bool(packet.size)
        ring.closed()
    return count


def test_the_buffer_keeps_its_seconds_from_a_key_frame(gop_video):
    ring = PacketRing("cam", max_s=1.0, max_bytes=10**8)
    fill(ring, gop_video)
    (segment,) = ring.segments
    held = list(segment.packets)
    assert held[0].key and segment.ended
    newest = held[-1].pts_s  # 3.96
    # at least 1 s back from a key frame, and less than one GOP (0.4 s) more
    assert newest - 1.0 - 0.4 < held[0].pts_s <= newest - 1.0
    assert [p.index for p in held] == list(range(held[0].index, held[0].index + len(held)))
    assert ring.start(segment, 3.0).pts_s == pytest.approx(2.8)  # the last key frame at or before
    assert ring.start(segment, 0.0) is segment.packets[0]  # not buffered any more: the oldest key frame
    packets, gap, past = ring.after(segment, held[0].index - 1, 3.5)
    assert not gap and past and packets[-1].t == pytest.approx(3.48)
    assert ring.bytes == sum(len(p.data) for p in held)


def test_the_buffer_bytes_bound_and_a_start_at_a_key_frame(gop_video):
    joined = PacketRing("cam", max_s=100.0, max_bytes=10**8)
    fill(joined, gop_video, start=3)  # joined mid-GOP: up to the next key frame, nothing to keep
    assert joined.segments[0].packets[0].key and joined.segments[0].packets[0].pts_s == pytest.approx(0.4)
    ring = PacketRing("cam", max_s=100.0, max_bytes=4000)
    fill(ring, gop_video)
    held = list(ring.segments[0].packets)
    assert held[0].key and held[-1].pts_s == pytest.approx(3.96)  # the oldest GOPs went
    assert 0 < ring.bytes <= 4000 and len(held) >= 10
    fill(ring, gop_video, session=1)  # a new read: its own segment; the old one goes by bytes first
    assert [s.session for s in ring.segments] == [1] and ring.segment(0) is None
    assert ring.segment(1) is ring.segments[0] and ring.bytes <= 4000
    ring.clear()
    assert not ring.segments and ring.bytes == 0


def test_a_writer_behind_an_emptied_buffer_sees_a_gap_and_goes_on_at_a_key_frame(gop_video):
    ring = PacketRing("cam", max_s=100.0, max_bytes=10**8)
    with av.open(str(gop_video)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        ring.opened(stream, 0)
        for packet in packets[:5]:
            ring.put(packet)
        segment = ring.segments[0]
        written = segment.packets[-1].index  # a writer took these
        ring.max_bytes = 1  # the next packet overflows the buffer: its GOP goes whole
        ring.put(packets[5])
        ring.max_bytes = 10**8
        for packet in packets[6:]:  # nothing kept up to the next key frame
            ring.put(packet)
    assert ring.overflows == 1
    after, gap, _ = ring.after(segment, written, float("inf"))
    assert gap and after and after[0].key


def test_retention_by_age_and_size_oldest_first_and_only_clip_files(tmp_path):
    folder = tmp_path / "clips"
    now = time.time()

    def make(name: str, size: int, age_s: float) -> Path:
        path = folder / "cam" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_s, now - age_s))
        return path

    ancient = make("20250101T000000.000Z-00000000.mp4", 10, 9000)
    old = make("20250102T000000.000Z-11111111.mp4", 400, 300)
    old_snapshot = make("20250102T000000.000Z-11111111-t3.jpg", 100, 300)
    new = make("20250103T000000.000Z-22222222.mp4", 400, 10)
    foreign = make("holiday.mp4", 50, 9000)  # not ours: counted, never deleted
    stale = make(".20250104T000000.000Z-33333333.mp4.abc.tmp", 30, 7200)  # a killed writer's
    live = make(".20250104T000000.000Z-44444444.mp4.def.tmp", 30, 1)  # being written
    retention = Retention(folder, RetentionConfig(max_age_s=3600, max_bytes=600))
    gone = retention.apply(now)
    assert set(gone) == {ancient, stale, old, old_snapshot}
    assert {p for p in (folder / "cam").iterdir()} == {new, foreign, live}
    assert retention.deleted == 4


def test_clip_fields_and_clip_ready_validate():
    stamped = event("line_cross", line="door").with_fields(clip="/c/cam/x.mp4", snapshot={"annotated": "/c/cam/x-t1.jpg"})
    assert validate_event(stamped.body) == [] and '"clip":"/c/cam/x.mp4"' in stamped.line
    assert validate_event({**stamped.body, "snapshot": {"thumbnail": "x.jpg"}}) == [
        "snapshot {'thumbnail': 'x.jpg'} is not {annotated or crop: path}"]
    opener = stamped.body["event_id"]
    ready = {"schema": "detstream.events/v1", "event_id": clip_event_id("cam", opener), "type": "clip_ready",
             "source": "cam", "session": 0, "seq": 5, "pts": 1.2, "capture_ts": 1.0e9, "clip": "/c/cam/x.mp4",
             "start_pts": 0.0, "end_pts": 1.2, "bytes": 1000, "complete": True, "events": [opener], "track_ids": [1],
             "snapshots": ["/c/cam/x-t1.jpg"]}
    assert validate_event(ready) == []
    assert validate_event({**ready, "complete": 1}) == ["'complete' has type int"]
    assert validate_event({**ready, "events": ["another"]}) == ["event_id does not match source and the first of events"]
    assert validate_event({k: v for k, v in ready.items() if k != "clip"}) == ["clip_ready needs 'clip'"]
    assert validate_event({**ready, "end_pts": -1.0}) == ["end_pts -1.0 is before start_pts 0.0"]


def test_an_atomic_file_appears_whole_or_not_at_all(tmp_path):
    target = AtomicFile(tmp_path / "a" / "clip.mp4")
    assert target.temp.parent == target.path.parent and target.temp.name.startswith(".clip.mp4.")
    target.temp.write_bytes(b"data")
    assert not target.path.exists()
    target.commit()
    assert target.path.read_bytes() == b"data" and not target.temp.exists()
    with pytest.raises(RuntimeError), AtomicFile(tmp_path / "a" / "clip.mp4") as again:
        again.temp.write_bytes(b"half")
        raise RuntimeError("writer died")
    assert target.path.read_bytes() == b"data" and list((tmp_path / "a").iterdir()) == [target.path]
