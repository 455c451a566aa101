"""`detstream synth ...` argument handling, through the same add_parser the real CLI uses."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from synth.cli import add_parser

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="detstream")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["synth", *argv])


@pytest.mark.parametrize("argv", [
    ("video", "out.mp4", "--size", "12x"),
    ("video", "out.mp4", "--size", "0x720"),
    ("video", "out.mp4", "--seconds", "-1"),
    ("video", "out.mp4", "--seconds", "nan"),
    ("video", "out.mp4", "--fps", "0"),
    ("video", "out.mp4", "--objects", "-3"),
    ("dataset", "out", "--count", "0"),
    ("dataset", "out", "--size", "640by360"),
    ("video",),
])
def test_bad_arguments_exit_2_with_one_line(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err
    assert "Traceback" not in err


def test_good_arguments_parse() -> None:
    args = parse("video", "clip.mp4", "--seed", "3", "--size", "640x360", "--fps", "30", "--seconds", "1.5",
                 "--objects", "0")
    assert (args.seed, args.size, args.fps, args.seconds, args.objects) == (3, (640, 360), 30, 1.5, 0)
    assert callable(args.func)
    args = parse("dataset", "ds")
    assert (args.count, args.size, args.out_dir) == (500, (640, 360), Path("ds"))


@pytest.mark.parametrize("argv", [
    ("video", "{file}/sub/out.mp4", "--size", "64x64", "--seconds", "0.2"),
    ("dataset", "{file}/ds", "--count", "1", "--size", "64x64"),
    ("video", "{tmp}/out.avi", "--size", "64x64", "--seconds", "0.2"),
    ("video", "{tmp}/odd.mp4", "--size", "65x64", "--seconds", "0.2"),
])
def test_unusable_output_returns_2(argv: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory")
    args = parse(*(a.format(file=blocker, tmp=tmp_path) for a in argv))
    assert args.func(args) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "error:" in captured.err
    assert "Traceback" not in captured.err
    assert not list(tmp_path.glob("**/*.mp4"))


def test_python_m_synth_writes_video_and_prints_summary(tmp_path: Path) -> None:
    out = tmp_path / "clips" / "demo.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "synth", "video", str(out), "--seed", "4", "--size", "160x120", "--seconds", "0.6",
         "--fps", "10"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and "6 frames" in result.stdout
    coco = json.loads(out.with_suffix(".json").read_text())
    assert len(coco["images"]) == 6 and out.stat().st_size > 0
    bad = subprocess.run([sys.executable, "-m", "synth", "video", str(out), "--size", "12x"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_dataset_command_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("dataset", str(tmp_path / "ds"), "--count", "3", "--size", "96x64", "--seed", "2")
    assert args.func(args) == 0
    assert sorted(p.name for p in (tmp_path / "ds" / "images").iterdir()) == ["000000.jpg", "000001.jpg",
                                                                              "000002.jpg"]
    assert "3 images" in capsys.readouterr().out
