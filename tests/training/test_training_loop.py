"""The training loop on a tiny synthetic set: logs, checkpoints, resume, model metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engines.loading import load_engine
from engines.model_file import load_model
from engines.training.config import TrainConfig
from engines.training.train import Trainer, lr_factor
from pipeline.core.errors import TrainingError
from synth.dataset import write_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root / "train", seed=11, count=8, width=192, height=108)
    write_dataset(root / "val", seed=12, count=4, width=192, height=108)
    return root


def config(tiny: Path, out: Path, **extra) -> TrainConfig:
    data = {"train": str(tiny / "train/annotations.json"), "val": str(tiny / "val/annotations.json")}
    settings = {
        "architecture": "fasterrcnn_compact",
        "data": data,
        "input_size": [96, 160],
        "schedule": {"steps": 4, "warmup_steps": 2},
        "batch_size": 2,
        "workers": 0,
        "checkpoint_every": 2,
        "out": str(out),
        **extra,
    }
    return TrainConfig.model_validate(settings)


def test_training_writes_log_checkpoint_curve_and_a_complete_model(tiny, tmp_path):
    path = Trainer(config(tiny, tmp_path / "run")).run()
    log = [json.loads(line) for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "lr"} <= set(steps[0])
    assert "eval" in log[-1] and "AP" in log[-1]["eval"]["bbox"]
    assert (tmp_path / "run/loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, info = load_model(str(path))
    assert info.architecture == "fasterrcnn_compact"
    assert info.class_names == ("__background__", "person", "car", "bicycle", "dog")
    assert info.input_size == (96, 160) and info.score_threshold == 0.5
    assert len(info.mean) == 3 and len(info.std) == 3
    assert len(info.extra["data_fingerprint"]) == 16
    assert info.extra["metrics"]["bbox"]["AP"] is not None and info.extra["steps"] == 4
    # the pipeline can run it, and a checkpoint loads like a model too
    assert load_engine(str(path)).info.name == "run"
    assert load_engine(str(tmp_path / "run/checkpoint.pt")).info.architecture == "fasterrcnn_compact"


class Stop(Exception):
    pass


def test_resume_continues_from_the_same_step_with_the_same_state(tiny, tmp_path, monkeypatch):
    straight = Trainer(config(tiny, tmp_path / "straight"))
    straight.run()

    interrupted = Trainer(config(tiny, tmp_path / "resumed"))
    real_step = Trainer.train_step

    def stop_after_three(self, images, targets):
        if self.step == 3:
            raise Stop  # killed during step 4; the last checkpoint is from step 2
        return real_step(self, images, targets)

    monkeypatch.setattr(Trainer, "train_step", stop_after_three)
    with pytest.raises(Stop):
        interrupted.run()
    monkeypatch.setattr(Trainer, "train_step", real_step)
    saved_optimizer = torch.load(tmp_path / "resumed/checkpoint.pt", weights_only=True)["optimizer"]

    resumed = Trainer(config(tiny, tmp_path / "resumed"))
    resumed.resume()
    assert resumed.step == 2
    saved_seconds = resumed.train_seconds
    assert saved_seconds > 0  # the first part's training time carries over
    assert resumed.scheduler.last_epoch == 2
    state = resumed.optimizer.state_dict()
    for key, value in saved_optimizer["state"].items():
        assert torch.equal(state["state"][key]["exp_avg"], value["exp_avg"])
    path = resumed.run(resume=True)
    assert torch.load(path, weights_only=True)["info"]["extra"]["train_seconds"] > round(saved_seconds, 1) - 0.05
    log = [json.loads(line) for line in (tmp_path / "resumed/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4]  # step 3 not logged twice
    # same data order, same RNG, same optimizer: the same weights as the straight run
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name


def test_resume_without_a_checkpoint_is_a_clear_error(tiny, tmp_path):
    from pipeline.core.errors import ModelError

    with pytest.raises(ModelError, match="no checkpoint to resume from"):
        Trainer(config(tiny, tmp_path / "empty")).run(resume=True)


def test_resume_with_another_architecture_is_refused(tiny, tmp_path):
    Trainer(config(tiny, tmp_path / "run", schedule={"steps": 2, "warmup_steps": 0})).run()
    with pytest.raises(TrainingError, match="architecture"):
        Trainer(config(tiny, tmp_path / "run", architecture="maskrcnn_compact")).resume()


def test_learning_rate_schedule():
    schedule = TrainConfig.model_validate({"data": {"train": "x"}, "schedule": {"steps": 100, "warmup_steps": 10}}).schedule
    assert lr_factor(schedule, 0) == pytest.approx(1e-3)
    assert lr_factor(schedule, 10) == pytest.approx(1.0)
    assert lr_factor(schedule, 100) == pytest.approx(schedule.final_lr_fraction)
    assert lr_factor(schedule, 55) < lr_factor(schedule, 30)


def test_mask_model_starts_from_a_box_model_of_the_same_family(tiny, tmp_path):
    box = Trainer(config(tiny, tmp_path / "box", schedule={"steps": 2, "warmup_steps": 0})).run()
    trainer = Trainer(config(tiny, tmp_path / "mask", architecture="maskrcnn_compact", init_from=str(box)))
    box_weights = torch.load(box, weights_only=True)["state_dict"]
    mask_weights = trainer.model.state_dict()
    shared = [k for k in box_weights if k in mask_weights]
    assert len(shared) == len(box_weights)  # everything but the mask head carries over
    assert all(torch.equal(box_weights[k], mask_weights[k]) for k in shared)
    path = trainer.run()
    assert load_engine(str(path)).info.has_masks


def test_frozen_modules_keep_their_weights_and_statistics(tiny, tmp_path):
    trainer = Trainer(config(tiny, tmp_path / "frozen", freeze=["backbone", "rpn"]))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    path = trainer.run()
    after = torch.load(path, weights_only=True)["state_dict"]
    frozen = [k for k in before if k.startswith(("backbone.", "rpn."))]
    heads = [k for k in before if k.startswith("roi_heads.") and before[k].is_floating_point()]
    # weights and BatchNorm running statistics alike
    assert any("running_mean" in k for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in heads)


def test_freezing_an_unknown_module_is_a_clear_error(tiny, tmp_path):
    with pytest.raises(TrainingError, match="has no module 'backbone.nope'"):
        Trainer(config(tiny, tmp_path / "x", freeze=["backbone.nope"]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_with_amp(tiny, tmp_path):
    path = Trainer(config(tiny, tmp_path / "cuda", device="cuda", amp=True)).run()
    assert load_engine(str(path), device="cuda").info.architecture == "fasterrcnn_compact"


def test_ctrl_c_writes_a_checkpoint_and_says_how_to_resume(tiny, tmp_path):
    import os
    import signal
    import subprocess
    import time

    from engines.training.checkpoint import load_checkpoint
    from support import DETSTREAM, run_cli

    settings = tmp_path / "train.yaml"
    settings.write_text(
        f"architecture: fasterrcnn_compact\ndata:\n  train: {tiny / 'train/annotations.json'}\n"
        "input_size: [96, 160]\nbatch_size: 2\nworkers: 0\ncheckpoint_every: 100000\n"
        "schedule:\n  steps: 100000\n  warmup_steps: 50\n"
    )
    out = tmp_path / "run"
    process = subprocess.Popen(
        [*DETSTREAM, "train", str(settings), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log = out / "log.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().splitlines()) >= 2):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "warm-up" not in stderr and "warmup" not in stderr
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert step >= 2 and f"interrupted at step {step}; resume with --resume" in stderr
    assert not (out / "model.pt").exists()
    # resuming goes on from that step; a warm-up longer than the run is a warning, not an error
    done = run_cli("train", str(settings), "--out", str(out), "--resume", "--steps", str(step + 1))
    assert done.returncode == 0, done.stderr
    assert f"resumed from {out / 'checkpoint.pt'} at step {step}" in " ".join(done.stderr.split())
    assert "schedule.warmup_steps 50 is more than the" in " ".join(done.stderr.split())
    assert (out / "model.pt").exists()
