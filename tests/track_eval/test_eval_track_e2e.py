"""docs/track-eval.md's commands run as written (through the real `detstream`, the default
model and both trackers), on a short synth clip standing in for `make demo`'s."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from support import DETSTREAM
from synth.video import write_video as write_synth_video

DOC = Path(__file__).resolve().parents[2] / "docs" / "track-eval.md"
TIMEOUT_S = 600


def blocks() -> list[str]:
    """The sh blocks of the page, in order."""
    found = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(found) == 2, "docs/track-eval.md: expected the example block and the line-crossing block"
    return found


def shell(script: str, cwd: Path) -> str:
    """`script` through bash as a user pastes it, `.venv/bin/detstream` being the installed one."""
    script = script.replace(".venv/bin/detstream", DETSTREAM[0])
    done = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, f"{script}\n{done.stderr[-2000:]}"
    return done.stdout


def test_the_documented_commands_score_a_synth_clip(tmp_path):
    # make demo's clip is 10 s at 1280x720; the same generator, shorter and smaller: 30 frames
    (tmp_path / "data").mkdir()
    write_synth_video(tmp_path / "data/demo.mp4", seed=7, width=640, height=360, fps=25, seconds=1.2)
    example, gate = blocks()
    table, as_json = [line for line in example.splitlines() if line.strip() and not line.startswith("#")]

    out = shell(table, tmp_path)
    assert "HOTA" in out and "ID switches" in out, out
    report = json.loads(shell(as_json, tmp_path))
    metrics = report["metrics"]
    assert (report["tracker"], report["stride"], metrics["frames"]) == ("iou", 3, 10)  # frames 0, 3, ..., 27
    assert report["classes"] == ["person", "car", "bicycle", "dog"]
    # the embedded model finds these objects well; tracks need a few frames to be confirmed
    assert metrics["gt_objects"] > 0 and metrics["predicted"] > 0
    assert 0 < metrics["hota"] <= 1 and 0 < metrics["idf1"] <= 1 and metrics["mota"] <= 1
    assert report["lines"] == []  # no lines configured

    out = shell(gate, tmp_path)
    assert "line crossings" in out, out
