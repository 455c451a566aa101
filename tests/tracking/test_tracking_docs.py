"""docs/tracking.md's commands, run as written in a folder laid out like a clone after
`make demo` (a short synthetic clip stands in for data/demo.mp4)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from pipeline.core.events import validate_event
from support import run_cli
from synth.video import write_video as write_synth_video

REPO = Path(__file__).resolve().parents[2]


def doc_commands() -> list[list[str]]:
    text = (REPO / "docs" / "tracking.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "docs/tracking.md starts with a bash block of commands"
    return [line.split("#")[0].split() for line in block.group(1).splitlines() if line.strip()]


def test_the_commands_of_tracking_md_work(tmp_path):
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "configs" / "tracking.yaml", tmp_path / "configs")
    (tmp_path / "data").mkdir()
    write_synth_video(tmp_path / "data" / "demo.mp4", seed=7, width=640, height=360, fps=25, seconds=3.0, objects=6)
    run, evaluate = doc_commands()
    assert run[:2] == ["detstream", "run"] and evaluate[:2] == ["detstream", "eval-track"]
    result = run_cli(*run[1:], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (tmp_path / "out" / "tracking.events.jsonl").read_text().splitlines()]
    assert events and all(validate_event(e) == [] for e in events)
    assert (tmp_path / "out" / "tracking.mp4").stat().st_size > 0
    assert re.search(r"events: .*track_start \d+", result.stderr)  # the run summary counts them
    result = run_cli(*evaluate[1:], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "IDF1" in result.stdout and "HOTA" in result.stdout
