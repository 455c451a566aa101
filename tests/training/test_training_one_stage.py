"""`architecture: retinanet_compact` in the training loop: init_from the compact Faster
R-CNN's backbone, a few steps with its focal and box losses, evaluation during training
through its engine, a model file that `detstream eval` and `detstream run` take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from engines.model_file import load_model
from engines.training.config import TrainConfig
from engines.training.train import Trainer
from support import run_cli, write_video
from synth.dataset import write_dataset

REPO = Path(__file__).resolve().parents[2]
DETECTOR = REPO / "engines/embedded/faster-compact-synth.pt"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-retina")
    write_dataset(root / "train", seed=4251, count=4, width=192, height=108)
    write_dataset(root / "val", seed=4252, count=2, width=192, height=108)
    return root


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory) -> tuple[Trainer, Path]:
    settings = {
        "architecture": "retinanet_compact",
        "data": {"train": str(tiny / "train/annotations.json"), "val": str(tiny / "val/annotations.json")},
        "input_size": [96, 160],
        "init_from": str(DETECTOR),
        "schedule": {"steps": 2, "warmup_steps": 1},
        "batch_size": 2,
        "workers": 0,
        "out": str(tmp_path_factory.mktemp("retina-run") / "run"),
        "score_threshold": 0.05,  # an almost untrained model: let run and eval see some detections
    }
    trainer = Trainer(TrainConfig.model_validate(settings))
    return trainer, trainer.run()


def test_init_from_carries_the_whole_backbone_over(tiny, tmp_path):
    settings = {"architecture": "retinanet_compact", "data": {"train": str(tiny / "train/annotations.json")},
                "input_size": [96, 160], "init_from": str(DETECTOR), "out": str(tmp_path / "run")}
    mine = Trainer(TrainConfig.model_validate(settings)).model.state_dict()
    theirs = torch.load(DETECTOR, map_location="cpu", weights_only=True)["state_dict"]
    backbone = [k for k in mine if k.startswith("backbone.")]
    assert backbone and all(torch.equal(mine[k], theirs[k]) for k in backbone)


def test_training_logs_its_losses_evaluates_and_writes_a_model(trained):
    trainer, path = trained
    log = [json.loads(line) for line in trainer.log_path.read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for record in steps:
        assert {"loss_classification", "loss_bbox_regression"} <= set(record)
        assert all(torch.isfinite(torch.tensor(record[k])) for k in ("loss_classification", "loss_bbox_regression"))
    assert "AP" in log[-1]["eval"]["bbox"]
    _, info = load_model(str(path))
    assert info.architecture == "retinanet_compact" and info.extra["metrics"]["bbox"]["AP"] is not None


def test_detstream_eval_and_run_take_the_model(trained, tiny, tmp_path):
    _, path = trained
    report = tmp_path / "eval.json"
    done = run_cli("eval", "--model", str(path), "--data", str(tiny / "val/annotations.json"), "--out", str(report))
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["bbox"]["AP"] is not None and "Traceback" not in done.stderr
    video = write_video(tmp_path / "clip.mp4", 4, 192, 108)
    out = tmp_path / "out.jsonl"
    done = run_cli("run", "--model", str(path), "--source", str(video), "--sink", f"jsonl:{out}")
    assert done.returncode == 0, done.stderr
    assert "PyTorch (OneStageEngine)" in done.stderr
    assert len(out.read_text().splitlines()) == 4


def test_the_sample_config_is_valid():
    settings = yaml.safe_load((REPO / "configs/train-retinanet-compact.yaml").read_text())
    loaded = TrainConfig.model_validate(settings)
    assert loaded.architecture == "retinanet_compact" and tuple(loaded.input_size) == (320, 576)
    assert loaded.data.train == "data/synth-fast/annotations.json"
    assert (REPO / loaded.init_from).is_file()
