"""The `detstream batch` console script with the default model, as a user runs it."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from support import run_cli, write_video


@pytest.mark.timeout(900)
def test_batch_command_writes_results_summary_and_resumes(tmp_path):
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    write_video(videos / "a.mp4", 4, 160, 96)
    write_video(videos / "sub" / "b.mp4", 3, 160, 96)
    (videos / "sub" / "bad.mkv").write_bytes(b"\x00" * 1000)
    out = tmp_path / "out"
    first = run_cli("batch", str(videos), "--out", str(out), "--format", "coco", timeout=400)
    assert first.returncode == 1, first.stderr  # one file failed
    assert "FAILED sub/bad.mkv" in first.stderr and "files ok" in first.stderr
    assert json.loads((out / "sub/b.mp4.coco.json").read_text()) is not None
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"ok": 2, "failed": 1, "skipped": 0, "interrupted": 0}
    assert report["frames"] == 7
    second = run_cli("batch", str(videos), "--out", str(out), "--format", "coco", timeout=400)
    assert second.returncode == 1
    assert json.loads((out / "report.json").read_text())["counts"] == {"ok": 0, "failed": 1, "skipped": 2, "interrupted": 0}


def test_usage_errors_exit_2(tmp_path, caplog):
    assert main(["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "no such file, directory or pattern" in caplog.text
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "out"), "--config", str(tmp_path / "no.yaml")]) == 2
