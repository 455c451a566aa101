"""Models that take selective search proposals (Fast R-CNN here; R-CNN alike) run like
any model: `detstream run`, `profile`, `batch` and `eval` through load_engine's
RegionEngine, with the proposals stage between preprocess and detect. The model is a
tiny Fast R-CNN trained for a few steps: its detections are noise, the plumbing is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.loading import load_engine
from engines.model_file import load_model
from engines.region_engine import RegionEngine
from engines.selective_search import SEARCH_KEY, SelectiveSearch
from engines.training.config import TrainConfig
from engines.training.evaluate import evaluate
from engines.training.train import Trainer
from pipeline.batch.config import load_batch_settings
from pipeline.batch.job import BatchJob
from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError, ModelError
from pipeline.core.types import Geometry
from pipeline.run.runner import run
from support import run_cli, write_video
from synth.dataset import write_dataset

FRAMES = 3
TOP_N = 200


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("region-model")
    write_dataset(root / "train", seed=4242, count=4, width=192, height=108)
    settings = {
        "architecture": "fast_rcnn",
        "data": {"train": str(root / "train/annotations.json")},
        "input_size": [96, 160],
        "schedule": {"steps": 2, "warmup_steps": 1},
        "batch_size": 2,
        "workers": 0,
        "out": str(root / "run"),
        # a low threshold: the untrained heads' scores are low, the runs must still emit
        "score_threshold": 0.05,
        "selective_search": {"top_n": TOP_N, "max_side": 200, "workers": 1, "cache": str(root / "proposals")},
    }
    return Trainer(TrainConfig.model_validate(settings)).run()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("region-video") / "clip.mp4", FRAMES, 192, 108)


def test_the_model_file_keeps_its_search_settings(model: Path):
    _, info = load_model(str(model))
    assert info.extra[SEARCH_KEY] == {"mode": "fast", "max_side": 200, "top_n": TOP_N}
    assert SelectiveSearch.of_model(info.extra) == SelectiveSearch(mode="fast", max_side=200, top_n=TOP_N)
    with pytest.raises(ConfigError, match="which selective search"):
        SelectiveSearch.of_model({})


def test_load_engine_gives_the_region_engine_on_pytorch_only(model: Path):
    assert isinstance(load_engine(str(model)), RegionEngine)
    assert isinstance(load_engine(str(model), backend="torch"), RegionEngine)
    with pytest.raises(ModelError, match="runs on PyTorch only"):
        load_engine(str(model), backend="onnxruntime")
    engine = load_engine(str(model))
    with pytest.raises(ModelError, match="needs region proposals"):
        engine.infer(torch.zeros(1, 3, 96, 160), [(90, 160)])


def test_geometry_to_input_inverts_to_source():
    geometry = Geometry(source_size=(108, 192), resized_size=(90, 160), pad_x=0, pad_y=3)
    boxes = torch.tensor([[10.0, 20.0, 100.0, 90.0], [0.0, 0.0, 192.0, 108.0]])
    assert torch.allclose(geometry.to_source(geometry.to_input(boxes)), boxes, atol=1e-4)


def test_run_has_a_proposals_stage_and_its_latency(model: Path, video: Path, tmp_path: Path):
    out = tmp_path / "out.jsonl"
    config = load_config(None, {"sources": [str(video)], "sinks": [f"jsonl:{out}"], "model.path": str(model),
                                "metrics.log_every_s": None})
    summary = run(config)
    assert summary.exit_code == 0, (summary.stage_errors, summary.source_errors)
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(messages) == FRAMES
    for message in messages:
        stages = list(message["latency_ms"])
        assert stages.index("preprocess") < stages.index("proposals") < stages.index("detect")
    assert any(message["detections"] for message in messages)  # the floor is low: some candidate passes


def test_profile_shows_the_proposal_stage_time(model: Path, video: Path, tmp_path: Path):
    result = run_cli("profile", "--source", str(video), "--model", str(model), "--sink", "jsonl:out.jsonl",
                     "--out", "prof", timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "prof/report.json").read_text())
    assert report["frame_counts"]["proposals"] == FRAMES
    assert report["stages"]["proposals"]["busy"] > 0
    assert "proposals" in result.stdout


def test_batch_and_eval_run_it(model: Path, video: Path, tmp_path: Path):
    settings = load_batch_settings(None, {"model.path": str(model), "format": "coco"})
    report = BatchJob([str(video)], tmp_path / "batch", settings, lambda: load_engine(str(model)), "test").run()
    assert report.to_json("test", settings.fingerprint())["files"][0]["status"] == "ok"
    results = json.loads((tmp_path / "batch" / f"{video.name}.coco.json").read_text())
    assert results and {r["image_id"] for r in results} <= set(range(FRAMES + 1))
    write_dataset(tmp_path / "data", seed=5, count=2, width=192, height=108)
    result = evaluate(load_engine(str(model), score_threshold=0.05), tmp_path / "data/annotations.json", progress=False)
    assert result["images"] == 2 and 0 < result["proposal_seconds"] <= result["seconds"]
    assert result["bbox"]["AP"] is not None


def test_the_proposals_are_those_of_the_source_frame_mapped_into_the_input(model: Path):
    from stages.proposals import Proposals  # the stage's own mapping, without a run

    search = SelectiveSearch(max_side=200, top_n=TOP_N)
    image = np.random.default_rng(0).integers(0, 255, (108, 192, 3), dtype=np.uint8)
    geometry = Geometry(source_size=(108, 192), resized_size=(90, 160), pad_x=0, pad_y=0)
    stage = Proposals.__new__(Proposals)
    stage.search = search
    boxes = stage.propose(image, geometry)
    expected = torch.from_numpy(search(image)) * torch.tensor([160 / 192, 90 / 108, 160 / 192, 90 / 108])
    assert boxes.shape == expected.shape and len(boxes) > 0
    # OpenCV ranks boxes with its own random factor: compare the sets, not the order
    assert torch.allclose(boxes[boxes[:, 0].argsort()].sort(0).values, expected.sort(0).values, atol=1e-3)
