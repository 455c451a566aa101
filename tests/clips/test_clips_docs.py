"""docs/clips.md: its settings examples load as they are, and its command works as written
in a folder laid out like a clone after `make demo` (a short synthetic clip stands in for
data/demo.mp4), with the default embedded model."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import av
import yaml

from pipeline.core.config import RunConfig, parse_settings
from pipeline.core.events import validate_event
from support import run_cli
from synth.video import write_video as write_synth_video

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "clips.md").read_text()


def test_the_settings_examples_of_clips_md_load():
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    assert len(blocks) == 2
    every_key, rules = (parse_settings(RunConfig, yaml.safe_load(block), "clips.md") for block in blocks)
    assert every_key.clips.enabled and every_key.clips.buffer_bytes == 64 * 10**6
    assert [rule.lines for rule in rules.clips.rules] == [("door",), ()]
    assert [rules.source_clips(source).enabled for source in rules.sources] == [True, True, False]
    assert rules.source_clips(rules.sources[1]).pre_s == 10


def test_the_command_of_clips_md_works(tmp_path):
    (command,) = [line.split("#")[0].split() for line in re.search(r"```bash\n(.*?)```", DOC, re.S).group(1).splitlines()]
    assert command[:2] == ["detstream", "run"]
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "configs" / "clips.yaml", tmp_path / "configs")
    (tmp_path / "data").mkdir()
    write_synth_video(tmp_path / "data" / "demo.mp4", seed=7, width=640, height=360, fps=25, seconds=3.0, objects=6)
    result = run_cli(*command[1:], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (tmp_path / "out" / "clips.events.jsonl").read_text().splitlines()]
    assert events and all(validate_event(e) == [] for e in events)
    crossings = [e for e in events if e["type"] == "line_cross"]
    ready = [e for e in events if e["type"] == "clip_ready"]
    assert crossings and ready and {e["clip"] for e in crossings} == {e["clip"] for e in ready}
    for clip in ready:
        assert Path(clip["clip"]).parent == tmp_path / "out" / "clips" / "demo"
        assert all(Path(path).stat().st_size > 0 for path in clip["snapshots"])
        with av.open(clip["clip"]) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0
