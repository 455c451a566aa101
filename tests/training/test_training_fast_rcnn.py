"""`architecture: fast_rcnn` in the training loop: proposals cached and fed through the
dataset, a few steps with finite losses, a checkpoint and a model file, init_from a
trained detector's backbone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from engines.model_file import load_model
from engines.training.config import TrainConfig
from engines.training.train import Trainer
from synth.dataset import write_dataset

REPO = Path(__file__).resolve().parents[2]
DETECTOR = REPO / "engines/embedded/faster-compact-synth.pt"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-fast")
    write_dataset(root / "train", seed=4241, count=6, width=192, height=108)
    return root


def config(tiny: Path, out: Path, **extra) -> TrainConfig:
    settings = {
        "architecture": "fast_rcnn",
        "data": {"train": str(tiny / "train/annotations.json")},
        "input_size": [96, 160],
        "schedule": {"steps": 4, "warmup_steps": 1},
        "batch_size": 2,
        "workers": 0,
        "checkpoint_every": 2,
        "out": str(out),
        "selective_search": {"top_n": 300, "workers": 1, "cache": str(tiny / "proposals")},
        **extra,
    }
    return TrainConfig.model_validate(settings)


def test_a_few_steps_train_and_write_a_checkpoint_and_a_model(tiny, tmp_path):
    trainer = Trainer(config(tiny, tmp_path / "run", init_from=str(DETECTOR)))
    # the backbone starts as the trained detector's; the heads do not (names differ)
    theirs = torch.load(DETECTOR, map_location="cpu", weights_only=True)["state_dict"]
    mine = trainer.model.state_dict()
    backbone = [k for k in mine if k.startswith("backbone.") and k in theirs]
    assert backbone and all(torch.equal(mine[k], theirs[k]) for k in backbone)
    assert not any(k.startswith("box_") and k in theirs for k in mine)
    path = trainer.run()
    steps = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    for record in steps:
        assert {"loss_classifier", "loss_box_reg"} <= set(record)
        assert all(torch.isfinite(torch.tensor(record[k])) for k in ("loss", "loss_classifier", "loss_box_reg"))
    assert (tmp_path / "run/checkpoint.pt").is_file()
    model, info = load_model(str(path))
    assert info.architecture == "fast_rcnn" and info.extra["training"]["fast_rcnn"]["roi_op"] == "pool"
    assert model.roi_op == "pool"
    assert 0 < info.extra["train_seconds"]  # the ladder's training time
    assert sum(1 for _ in (tiny / "proposals").rglob("*.npy")) == 6


def test_roi_align_is_trained_and_loads_as_trained(tiny, tmp_path):
    settings = config(tiny, tmp_path / "run", schedule={"steps": 2, "warmup_steps": 1}).model_dump()
    settings["fast_rcnn"]["roi_op"] = "align"
    path = Trainer(TrainConfig.model_validate(settings)).run()
    model, _ = load_model(str(path))
    assert model.roi_op == "align"


def test_proposals_reach_the_batches_letterboxed_like_the_boxes(tiny, tmp_path):
    trainer = Trainer(config(tiny, tmp_path / "run", augment={"hflip": 0.0, "scale": [1.0, 1.0], "color": 0.0}))
    image, target = trainer.data[0]
    stored = trainer.data.proposals(target["image_id"])
    scale = image.shape[-1] / 192  # 192 x 108 letterboxed into 96 x 160
    torch.testing.assert_close(target["proposals"], torch.from_numpy(stored) * scale)


def test_validation_during_training_runs_through_the_region_engine(tiny, tmp_path):
    settings = config(tiny, tmp_path / "run", schedule={"steps": 2, "warmup_steps": 1}).model_dump()
    settings["data"]["val"] = settings["data"]["train"]
    settings["eval_images"] = 2
    trainer = Trainer(TrainConfig.model_validate(settings))
    metrics = trainer.evaluate()
    assert metrics is not None and metrics["images"] == 2 and "AP" in metrics["bbox"]


def test_the_sample_config_is_valid():
    settings = yaml.safe_load((REPO / "configs/train-fast-rcnn.yaml").read_text())
    loaded = TrainConfig.model_validate(settings)
    assert loaded.architecture == "fast_rcnn" and loaded.batch_size == 2 and loaded.data.val == "data/synth-val/annotations.json"
    assert (REPO / loaded.init_from).is_file()
    assert (loaded.fast_rcnn.rois_per_image, loaded.fast_rcnn.fg_fraction) == (64, 0.25)
