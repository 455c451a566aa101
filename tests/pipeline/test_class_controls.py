"""Class and score controls end to end: `classes`, per-class thresholds, per source, in run
and profile, with the blob engine (known output) and with the embedded model through the
real command (its own engine floor)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from pipeline.core.config import load_config
from pipeline.run.runner import run
from support import BlobEngine, run_cli

SYNTH_CLASSES = "person, car, bicycle, dog"


def by_source(path: Path) -> dict[str, dict[str, list[float]]]:
    """source -> label -> scores of every detection in a jsonl file."""
    found: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in path.read_text().splitlines():
        message = json.loads(line)
        for detection in message["detections"]:
            found[message["source"]][detection["label"]].append(detection["score"])
    return found


def test_blob_run_keeps_classes_and_thresholds_per_source(tmp_path, videos):
    # the blob engine scores every blob 0.9: a threshold above that drops the class
    config = load_config(None, {
        "sources": [
            {"uri": str(videos["b"]), "name": "plain"},
            {"uri": str(videos["b"]), "name": "blue-only", "classes": ["blue"]},
            {"uri": str(videos["b"]), "name": "strict", "score_threshold": 0.95},
        ],
        "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"],
        "model.classes": "red, green",
        "model.score_thresholds": {"green": 0.95, "blue": 0.1},
    })
    summary = run(config, BlobEngine())
    assert summary.exit_code == 0
    found = by_source(tmp_path / "out.jsonl")
    assert {name: sorted(labels) for name, labels in found.items()} == {"plain": ["red"], "blue-only": ["blue"]}
    assert len(found["plain"]["red"]) == len(found["blue-only"]["blue"]) == 25  # one blob each per frame
    assert summary.counts["postprocess"] == 75  # the strict source's frames went through, empty


def test_real_model_classes_and_thresholds_below_the_global_one_per_source(tmp_path, synth_clip):
    """A per-class threshold below the global one fires: the engine's floor follows the
    lowest threshold in effect (per class, per source), not the global one."""
    out = tmp_path / "out.jsonl"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "sources": [
            {"uri": str(synth_clip), "name": "one"},
            {"uri": str(synth_clip), "name": "two", "classes": ["dog", "bicycle"], "score_thresholds": {"dog": 0.2}},
        ],
        "model": {"score_threshold": 0.9, "score_thresholds": {"person": 0.1}},
        "sinks": [f"jsonl:{out}"],
    }))
    result = run_cli("run", str(config), "--classes", "person,car")
    assert result.returncode == 0, result.stderr
    found = by_source(out)
    one, two = found["one"], found["two"]
    assert sorted(one) == ["car", "person"] and sorted(two) == ["bicycle", "dog"]
    assert min(one["person"]) >= 0.1 and min(one["car"]) >= 0.9 and min(two["bicycle"]) >= 0.9 and min(two["dog"]) >= 0.2
    # below the global 0.9: only produced because the engine's floor is the lowest threshold
    assert sum(s < 0.5 for s in one["person"]) >= 5 and sum(s < 0.5 for s in two["dog"]) >= 3, (one, two)


@pytest.mark.parametrize("command", ["run", "profile"])
def test_unknown_class_flag_is_one_line_naming_the_allowed_ones(tmp_path, synth_clip, command):
    extra = ["--out", str(tmp_path / "profile")] if command == "profile" else []
    result = run_cli(command, "--source", str(synth_clip), "--sink", "jsonl:-", "--classes", "person,persn", *extra)
    assert result.returncode == 2
    # INFO lines (a first export into the package cache, the start line) are not errors
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("detstream INFO:")]
    assert lines == [
        f"detstream ERROR: model.classes: 'persn' is not a class of model faster-compact-synth (allowed: {SYNTH_CLASSES})"
    ]


def test_unknown_class_of_a_source_names_the_source_key(tmp_path, synth_clip):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "sources": [str(synth_clip), {"uri": str(synth_clip), "score_thresholds": {"cat": 0.5}}],
        "sinks": [f"jsonl:{tmp_path / 'never.jsonl'}"],
    }))
    result = run_cli("run", str(config))
    assert result.returncode == 2
    # INFO lines (a first export into the package cache, the start line) are not errors
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("detstream INFO:")]
    assert len(lines) == 1 and "sources.1.score_thresholds: 'cat' is not a class" in lines[0], result.stderr
    assert SYNTH_CLASSES in lines[0]
    assert not (tmp_path / "never.jsonl").exists()  # checked before any sink opened its file
