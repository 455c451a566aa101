"""`detstream batch`: the frames bar's total and `--max-frames` (issue 22, item 7)."""

from __future__ import annotations

import io
import json

from rich.console import Console

from pipeline.batch.collection import FileTask
from pipeline.batch.console import RichProgress
from stages.sinks.per_file import FAILED, OK, FileResult
from support import run_cli
from synth.video import write_video

CLIP = {"seed": 5, "width": 64, "height": 48, "fps": 10, "seconds": 1.0, "objects": 2}  # 10 frames


def test_frame_total_excludes_failed_files_and_obeys_max_frames(tmp_path):
    clips = [tmp_path / f"{name}.mp4" for name in "abc"]
    for clip in clips:
        write_video(clip, **CLIP)
    tasks = [FileTask(str(clip), clip.name) for clip in clips]
    progress = RichProgress(Console(file=io.StringIO()))
    progress.begin(tasks, 0)
    assert progress.frame_total() is None
    progress.file_started(tasks[0])
    assert progress.frame_total() == 30  # 10 declared, as many for each file not yet opened
    progress.file_started(tasks[1])
    progress.file_finished(FileResult("a.mp4", FAILED, "broken", frames=4))
    assert progress.frame_total() == 4 + 10 + 10  # the failed file counts what it got through
    progress.file_finished(FileResult("b.mp4", OK, frames=10))
    assert progress.frame_total() == 24
    progress.end()
    capped = RichProgress(Console(file=io.StringIO()), max_frames=3)
    capped.begin(tasks, 0)
    capped.file_started(tasks[0])
    assert capped.frame_total() == 9
    capped.end()


def test_max_frames_flag(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_video(clip, **CLIP)
    out = tmp_path / "out"
    done = run_cli("batch", str(clip), "--out", str(out), "--max-frames", "3")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == 3
    assert len((out / "clip.mp4.jsonl").read_text().splitlines()) == 3
