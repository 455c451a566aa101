"""Class and score controls in `detstream batch`: COCO results follow them, the manifest
fingerprint too (other classes: the files are processed again)."""

from __future__ import annotations

import json

import yaml

from blobbatch import job
from support import run_cli

# COCO category ids are the model's class ids: the blob engine's red, green, blue are 1, 2, 3
RED, BLUE = 1, 3


def test_blob_batch_coco_results_keep_only_the_classes_and_redo_on_change(tmp_path, collection):
    out = tmp_path / "out"
    inputs = [str(collection / "day2")]  # 6 files
    settings = {"format": "coco", "model.score_thresholds": {"green": 0.95}}
    first = job(inputs, out, **settings, **{"model.classes": ["red", "green"]}).run()
    assert first.count("ok") == 6
    records = json.loads((out / "cam/clip02.mp4.coco.json").read_text())
    assert len(records) == 10 and {r["category_id"] for r in records} == {RED}  # green is below its own threshold
    # other classes change the results: every file again, not skipped
    second = job(inputs, out, **settings, **{"model.classes": "red,blue"}).run()
    assert second.count("ok") == 6
    records = json.loads((out / "cam/clip02.mp4.coco.json").read_text())
    assert len(records) == 20 and {r["category_id"] for r in records} == {RED, BLUE}
    assert job(inputs, out, **settings, **{"model.classes": ["blue", "red"]}).run().count("skipped") == 6


def test_batch_command_classes_flag_and_per_class_threshold_below_the_global_one(tmp_path, synth_clip):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(synth_clip.read_bytes())
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump({"model": {"score_threshold": 0.9, "score_thresholds": {"dog": 0.2}}}))
    out = tmp_path / "out"
    result = run_cli("batch", str(videos), "--out", str(out), "--config", str(config), "--format", "coco", "--classes", "dog")
    assert result.returncode == 0, result.stderr
    records = json.loads((out / "clip.mp4.coco.json").read_text())
    assert {r["category_id"] for r in records} == {4}  # dog
    assert min(r["score"] for r in records) >= 0.2
    assert sum(r["score"] < 0.5 for r in records) >= 3  # the engine's floor is the dog's 0.2, not 0.9

    bad = run_cli("batch", str(videos), "--out", str(tmp_path / "bad"), "--classes", "dogs")
    assert bad.returncode == 2
    # the start line (INFO, wrapped by the log handler: indented continuation) is not an error
    lines = [line for line in bad.stderr.splitlines() if line.strip() and not line.startswith(("INFO", " "))]
    assert len(lines) == 1, bad.stderr
    assert "model.classes: 'dogs' is not a class of model faster-compact-synth (allowed: person, car, bicycle, dog)" in lines[0]
    assert not (tmp_path / "bad" / "report.json").exists()  # checked before the job started
