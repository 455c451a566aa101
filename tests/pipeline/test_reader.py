"""The one frame reader, read directly into a callback: real PyAV decode of generated videos."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.core.config import SourceConfig
from pipeline.core.context import RunContext
from pipeline.core.health import SHUTDOWN
from pipeline.core.types import Frame
from stages.base import Stage
from stages.reader import FrameReader


def test_frames_are_filtered_rotated_and_numbered(videos):
    ctx = RunContext()
    got: list[Frame] = []
    config = SourceConfig(uri=str(videos["rotated"]), stride=3)

    def output(frame: Frame) -> None:
        got.append(frame)

    stage = Stage("decode[r]", ctx)
    reader = FrameReader(stage, config, "r", output)
    reader.read_file()
    assert not ctx.source_errors
    assert reader.decoded == 20 and reader.frames == len(got) == 7  # frames 0, 3, ..., 18
    assert [f.seq for f in got] == list(range(7)) and {f.source for f in got} == {"r"}
    assert got[0].image.shape == (640, 360, 3)  # stored 640x360, displayed rotated
    assert [round(f.pts * 25) for f in got] == [0, 3, 6, 9, 12, 15, 18]
    assert stage.metrics.frames_out == 7  # the stage's count: what the run summary shows


def test_max_frames_and_frames_the_output_refused(videos):
    ctx = RunContext()
    reader = FrameReader(Stage("decode[b]", ctx), SourceConfig(uri=str(videos["b"])), "b", lambda f: f, max_frames=4)
    reader.read_file()
    assert reader.frames == 4
    assert reader.health.snapshot()["dropped"] == {SHUTDOWN: 4}  # each refused frame counts as a drop


def test_an_unreadable_file_is_reported_not_raised(tmp_path):
    ctx = RunContext()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    reader = FrameReader(Stage("decode[n]", ctx), SourceConfig(uri=str(text)), "n", lambda f: None)
    reader.read_file()
    assert "not a readable video" in ctx.source_errors["n"] and reader.frames == 0


def test_a_looping_file_starts_again_with_seq_and_pts_increasing(videos):
    # b: 25 frames at 25 fps; max_frames 60 stops the endless loop in its third pass
    ctx = RunContext()
    got: list[Frame] = []
    config = SourceConfig(uri=str(videos["b"]), loop=True, stride=2)
    reader = FrameReader(Stage("decode[b]", ctx), config, "b", lambda f: got.append(f), max_frames=30)
    reader.read_file()
    assert not ctx.source_errors and reader.decoded >= 50  # two whole passes and part of a third
    assert [f.seq for f in got] == list(range(30)) and {f.session for f in got} == {0}
    pts = [round(f.pts * 25) for f in got]
    # frames 0, 2, ..., 24 of each pass; the next pass starts one frame after the last one
    assert pts[:15] == list(range(0, 25, 2)) + [25, 27] and pts == sorted(set(pts))


def test_loop_is_for_files_only():
    with pytest.raises(ValidationError, match="loop: true is for files only"):
        SourceConfig(uri="rtsp://127.0.0.1:8554/cam", loop=True)
