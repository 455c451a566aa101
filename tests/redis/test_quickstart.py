"""docs/quickstart.md runs as written: its commands, in order, through the real `detstream`,
with the Redis server of this test in place of localhost:6379."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"


def commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", QUICKSTART.read_text(), flags=re.S)
    assert block, "docs/quickstart.md has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_the_quick_start_runs_as_written(tmp_path, redis_server):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    steps = commands()
    assert [c.split()[1] for c in steps] == ["synth", "run", "eval", "batch", "run", "consume", "profile"]
    for command in steps:
        command = command.replace("redis://localhost:6379/0", redis_server.url)
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        if command.split()[1] == "eval":
            assert "AP" in done.stdout + done.stderr
    frames = len((tmp_path / "out/qs.jsonl").read_text().splitlines())
    assert frames == 50  # 2 s at 25 fps
    assert len((tmp_path / "out/qs-consumed.jsonl").read_text().splitlines()) == frames
    truth = json.loads((tmp_path / "data/qs.json").read_text())
    results = json.loads((tmp_path / "out/qs-batch/qs.mp4.coco.json").read_text())
    assert results and {r["image_id"] for r in results} <= {image["id"] for image in truth["images"]}
    assert (tmp_path / "out/qs-profile/report.json").is_file()
