"""`architecture: rcnn` in the training loop: a few fine-tuning steps, then the SVM and
box-regression stage, a model file that loads and detects, `--resume` of a finished run,
init_from a trained detector's backbone, and the sample config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from engines.model_file import load_model
from engines.training.config import TrainConfig
from engines.training.train import Trainer
from pipeline.core.types import RawOutput
from synth.dataset import write_dataset

REPO = Path(__file__).resolve().parents[2]
DETECTOR = REPO / "engines/embedded/faster-compact-synth.pt"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-rcnn")
    write_dataset(root / "train", seed=4242, count=4, width=192, height=108)
    return root


def config(tiny: Path, out: Path, **extra) -> TrainConfig:
    settings = {
        "architecture": "rcnn",
        "data": {"train": str(tiny / "train/annotations.json")},
        "input_size": [96, 160],
        "schedule": {"steps": 2, "warmup_steps": 1},
        "batch_size": 2,
        "workers": 0,
        "checkpoint_every": 1,
        "out": str(out),
        "init_from": str(DETECTOR),
        "selective_search": {"top_n": 100, "workers": 1, "cache": str(tiny / "proposals")},
        "rcnn": {"warp_size": 32, "context_padding": 2, "rois_per_image": 16, "svm_images": 3, "initial_negatives": 20,
                 "hard_negative_rounds": 2, "svm_iterations": 50},
        **extra,
    }
    return TrainConfig.model_validate(settings)


def test_training_fits_svms_and_regressors_and_the_model_file_detects(tiny, tmp_path):
    trainer = Trainer(config(tiny, tmp_path / "run"))
    # the backbone starts as the trained detector's (the stand-in for ImageNet); nothing else does
    theirs = torch.load(DETECTOR, map_location="cpu", weights_only=True)["state_dict"]
    mine = trainer.model.state_dict()
    backbone = [k for k in mine if k.startswith("backbone.") and k in theirs]
    assert len(backbone) == len([k for k in mine if k.startswith("backbone.")])
    assert all(torch.equal(mine[k], theirs[k]) for k in backbone)
    assert not any(k in theirs for k in mine if not k.startswith("backbone."))
    path = trainer.run()
    steps = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["loss_classifier"])) for r in steps)
    model, info = load_model(str(path))
    assert info.architecture == "rcnn" and (model.warp_size, model.context_padding) == (32, 2)
    assert bool(model.fitted) and model.svm_weight.abs().sum() > 0
    fit = info.extra["rcnn_fit"]
    assert fit["images"] == 3
    classes = [c for c in fit["classes"].values() if c["positives"]]
    assert classes and all(c["rounds"][0]["negatives"] == min(20, c["negative_pool"]) for c in classes)
    for c in classes:  # each mining round adds to the set
        assert all(r["negatives"] == p["negatives"] + r["added"] for p, r in zip(c["rounds"], c["rounds"][1:]))
    # detect: the pipeline's form, on its normalized batch
    model.score_floor = 0.0
    images = torch.randn(2, 3, 96, 160)
    proposals = [torch.tensor([[5.0, 5.0, 40.0, 60.0], [50.0, 10.0, 150.0, 80.0]]), torch.tensor([[0.0, 0.0, 30.0, 30.0]])]
    with torch.inference_mode():
        outputs = model.detect(images, [(96, 160), (90, 120)], proposals)
    classes = len(info.class_names) - 1
    assert [type(o) for o in outputs] == [RawOutput, RawOutput]
    assert [len(o.boxes) for o in outputs] == [2 * classes, 1 * classes]
    for output, (height, width) in zip(outputs, [(96, 160), (90, 120)]):
        assert ((output.scores >= 0) & (output.scores <= 1)).all() and (output.labels >= 1).all()
        assert (output.boxes[:, 2] <= width).all() and (output.boxes[:, 3] <= height).all()
        assert (output.scores[:-1] >= output.scores[1:]).all()


def test_resume_of_a_finished_run_fits_again(tiny, tmp_path):
    Trainer(config(tiny, tmp_path / "run")).run()
    path = Trainer(config(tiny, tmp_path / "run")).run(resume=True)
    model, info = load_model(str(path))
    assert info.extra["steps"] == 2 and bool(model.fitted)


def test_the_sample_config_is_valid():
    settings = yaml.safe_load((REPO / "configs/train-rcnn.yaml").read_text())
    loaded = TrainConfig.model_validate(settings)
    assert loaded.architecture == "rcnn" and loaded.data.val == "data/synth-val/annotations.json"
    assert (REPO / loaded.init_from).is_file()
    assert (loaded.rcnn.neg_iou, loaded.rcnn.reg_iou, loaded.rcnn.ridge_lambda) == (0.3, 0.6, 1000.0)
