"""Awkward and hostile media (issue #21, item 5): each file either gives all its frames or
fails alone with one clear error line, and the other source always finishes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostile_media import GARBAGE, concatenated_h264, concatenated_ts, huge_header, rtsp_peer, write
from pipeline.core.config import MAX_PIXELS, load_config
from pipeline.run.runner import run
from support import BlobEngine, write_video

GOOD_FRAMES = 8


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    return {
        "good": write_video(root / "good.mp4", GOOD_FRAMES, 160, 96),
        "resize": concatenated_h264(root / "resize.h264", [(4, 64, 48), (4, 96, 64)]),
        # long enough that FFmpeg's probe stops before the change: the header says 64x48
        "grows": concatenated_h264(root / "grows.h264", [(40, 64, 48), (4, 96, 64)]),
        "codec_change": concatenated_ts(root / "codec_change.ts", [("libx264", 4), ("mpeg2video", 4)]),
        "restart": concatenated_ts(root / "restart.ts", [("libx264", 4), ("libx264", 4)]),
        "ten_bit": write(root / "ten_bit.mp4", "libx264", 4, 64, 48, "yuv420p10le"),
        "yuv444": write(root / "yuv444.mp4", "libx264", 4, 64, 48, "yuv444p"),
        "one_pixel": write(root / "one_pixel.mkv", "ffv1", 4, 1, 1, "yuv444p"),
        "seven_by_five": write(root / "seven_by_five.mkv", "ffv1", 4, 7, 5, "yuv444p"),
        "negative_pts": write(root / "negative_pts.mkv", "libx264", 4, 64, 48, pts=[-50, -49, -48, -47]),
        "jumping_pts": write(root / "jumping_pts.mkv", "libx264", 4, 64, 48, pts=[0, 1, 5000, 5001]),
        "bomb": huge_header(root / "bomb.y4m", 16000, 16000),
        "bomb_16k": huge_header(root / "bomb_16k.y4m", 16384, 16384),
    }


def _run(tmp_path: Path, media: dict[str, Path], name: str, **source: object):
    out = tmp_path / "out.jsonl"
    sources = [str(media["good"]), {"uri": str(media[name]), **source}]
    summary = run(load_config(None, {"sources": sources, "sinks": [f"jsonl:{out}"]}), BlobEngine())
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    good = [m for m in messages if m["source"] == "good.mp4"]
    assert [m["seq"] for m in good] == list(range(GOOD_FRAMES)), "the other source must finish untouched"
    return summary, [m for m in messages if m["source"] == media[name].name]


# (file, frames it gives, (width, height) of its last frame)
WORKING = [
    ("resize", 8, (96, 64)),  # the new size is taken as it comes
    ("restart", 8, (64, 48)),  # timestamps restart half-way (two recordings cat'ed)
    ("ten_bit", 4, (64, 48)),
    ("yuv444", 4, (64, 48)),
    ("one_pixel", 4, (1, 1)),
    ("seven_by_five", 4, (7, 5)),
    ("negative_pts", 4, (64, 48)),
    ("jumping_pts", 4, (64, 48)),
    # FFmpeg's probe reads the whole (tiny) file and settles on the last codec, MPEG-2: its 4
    # frames are decoded; the MPEG-2 decoder finds nothing in the H.264 part's packets and
    # gives no frame and no error for them (a known gap: SECURITY.md, "Not detected")
    ("codec_change", 4, (64, 48)),
]


@pytest.mark.parametrize("name, frames, size", WORKING)
def test_awkward_files_give_their_frames(tmp_path, media, caplog, name, frames, size):
    summary, messages = _run(tmp_path, media, name)
    assert summary.exit_code == 0, summary.source_errors
    assert [m["seq"] for m in messages] == list(range(frames))
    assert (messages[-1]["width"], messages[-1]["height"]) == size
    pts = [m["pts"] for m in messages]
    assert all(isinstance(t, float) and t == t for t in pts)  # a number, never NaN
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, media, caplog):
    # 16000 x 16000: FFmpeg accepts the header, our limit refuses it before any frame
    summary, messages = _run(tmp_path, media, "bomb")
    assert summary.exit_code == 1 and not messages
    reason = summary.source_errors["bomb.y4m"]
    assert "header declares 16000x16000 pixels" in reason and str(MAX_PIXELS) in reason
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "bomb.y4m" in errors[0]


def test_a_16384_square_header_fails_in_one_line(tmp_path, media, caplog):
    # FFmpeg's own size check (av_image_check_size) refuses this one at open
    summary, messages = _run(tmp_path, media, "bomb_16k")
    assert summary.exit_code == 1 and not messages
    assert list(summary.source_errors) == ["bomb_16k.y4m"]
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1


def test_the_limit_is_a_setting_and_catches_a_stream_that_grows(tmp_path, media):
    summary, messages = _run(tmp_path, media, "grows", max_pixels=64 * 48)
    assert summary.exit_code == 1
    assert len(messages) == 40  # the frames before the size change were processed
    assert "frame 40 is 96x64 pixels, over the limit of 3072" in summary.source_errors["grows.h264"]


@pytest.mark.parametrize("reply, reason", [(GARBAGE, "Invalid data"), (None, "cannot open")])
def test_an_rtsp_peer_speaking_garbage_or_hanging_up_fails_alone(tmp_path, media, caplog, reply, reason):
    with rtsp_peer(reply) as port:
        camera = {"uri": f"rtsp://127.0.0.1:{port}/cam", "open_timeout_s": 2,
                  "reconnect": {"max_attempts": 2, "initial_s": 0.05}}
        out = tmp_path / "out.jsonl"
        summary = run(load_config(None, {"sources": [str(media["good"]), camera], "sinks": [f"jsonl:{out}"]}),
                      BlobEngine())
    assert summary.exit_code == 1 and list(summary.source_errors) == ["cam"]
    assert reason in summary.source_errors["cam"] and "gave up after 2 attempts" in summary.source_errors["cam"]
    good = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["seq"] for m in good if m["source"] == "good.mp4"] == list(range(GOOD_FRAMES))
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "cam" in errors[0]
