"""Bad sources fail alone, with one clear line; the others finish."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import pytest

from pipeline.core.config import load_config
from pipeline.run.runner import run
from support import BlobEngine, render_blobs, write_video


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    good = write_video(root / "good.mp4", 30, 320, 180)
    data = good.read_bytes()
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mp4").write_text("these are not the frames you are looking for\n" * 50)
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])  # index (moov) is at the end: lost
    faststart = root / "faststart.mp4"
    with av.open(str(faststart), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(render_blobs(i, 320, 180), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    cut = faststart.read_bytes()
    (root / "cut.mp4").write_bytes(cut[: len(cut) // 2])  # index first, media cut short
    corrupt = bytearray(data)
    for offset in range(3000, len(corrupt) - 3000, 2500):
        corrupt[offset : offset + 40] = bytes((offset * 7 + k * 13) % 256 for k in range(40))
    (root / "corrupt.mp4").write_bytes(bytes(corrupt))
    return {p.stem: p for p in root.iterdir()}


@pytest.mark.parametrize(
    "name, reason",
    [
        ("missing", "file not found"),
        ("empty", "file is empty (0 bytes)"),
        ("notes", "not a readable video"),
        ("truncated", "MP4 without a readable index (moov): truncated"),
        ("cut", "truncated: decoded"),
    ],
)
def test_bad_source_fails_alone(tmp_path, bad_files, caplog, name, reason):
    bad = bad_files.get(name, tmp_path / "missing.mp4")
    out = tmp_path / "out.jsonl"
    config = load_config(None, {"sources": [str(bad_files["good"]), str(bad)], "sinks": [f"jsonl:{out}"]})
    summary = run(config, BlobEngine())
    assert summary.exit_code == 1
    assert reason in summary.source_errors[bad.name]
    assert list(summary.source_errors) == [bad.name]
    good = [m for m in map(json.loads, out.read_text().splitlines()) if m["source"] == "good.mp4"]
    assert len(good) == 30
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and bad.name in errors[0] and reason in errors[0]


def test_corrupt_packets_are_skipped_and_counted(tmp_path, bad_files, caplog):
    out = tmp_path / "out.jsonl"
    config = load_config(None, {"sources": [str(bad_files["corrupt"])], "sinks": [f"jsonl:{out}"]})
    summary = run(config, BlobEngine())
    assert summary.exit_code == 0
    frames = len(out.read_text().splitlines())
    assert 0 < frames < 30
    assert any("corrupt" in r.getMessage() and "corrupt.mp4" in r.getMessage() for r in caplog.records)
