"""Engine packages: export, ONNX Runtime parity with PyTorch, batching, integrity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.export import export_package
from engines.loading import load_engine
from engines.model_file import save_model
from engines.models import untrained
from engines.onnxruntime_backend import OnnxRuntimeEngine
from engines.package import read_package
from engines.torch_backend import TorchEngine
from pipeline.core.errors import ModelError
from engines.inputs import Normalizer
from synth.video import iter_frames


@pytest.fixture(scope="module", params=["fasterrcnn_compact", "maskrcnn_compact"])
def package(request, tmp_path_factory) -> Path:
    return export_package(f"arch:{request.param}", tmp_path_factory.mktemp(request.param) / "package").root


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [image for _, image, _ in iter_frames(seed=5, width=640, height=360, seconds=0.2)]


def test_backend_follows_the_package(package):
    assert isinstance(load_engine(str(package)), OnnxRuntimeEngine)
    assert isinstance(load_engine(str(package), backend="torch"), TorchEngine)
    meta = json.loads((package / "package.json").read_text())
    assert meta["opset"] == 17 and meta["batch"] == {"min": 1, "max": 8}
    assert {"dense", "box_head", "torch"} <= set(meta["files"])
    assert ("mask_head" in meta["files"]) == meta["info"]["has_masks"]


def test_parts_match_pytorch(package, images):
    ort_engine = load_engine(str(package), score_threshold=0.05)
    torch_engine = load_engine(str(package), backend="torch", score_threshold=0.05)
    batch, _ = Normalizer(ort_engine.info)(images[:2])
    ours = ort_engine.parts.dense(batch)
    reference = torch_engine.parts.dense(batch)
    for a, b in zip(ours[0].values(), reference[0].values()):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
    for a, b in zip(ours[1] + ours[2], reference[1] + reference[2]):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
    rois = torch.randn(37, 64, 7, 7)
    for a, b in zip(ort_engine.parts.box_head(rois), torch_engine.parts.box_head(rois)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    if ort_engine.info.has_masks:
        rois = torch.randn(5, 64, 14, 14)
        torch.testing.assert_close(ort_engine.parts.mask_head(rois), torch_engine.parts.mask_head(rois), atol=1e-4, rtol=1e-4)


def test_batch_of_four_equals_four_batches_of_one(package, images):
    engine = load_engine(str(package), score_threshold=0.05)
    normalize = Normalizer(engine.info)
    batch, geometry = normalize(images[:4])
    together = engine.infer(batch, [g.resized_size for g in geometry])
    for i, image in enumerate(images[:4]):
        one, geo = normalize([image])
        alone = engine.infer(one, [geo[0].resized_size])[0]
        assert len(alone.boxes) == len(together[i].boxes)
        torch.testing.assert_close(alone.boxes, together[i].boxes, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(alone.scores, together[i].scores, atol=1e-4, rtol=1e-4)


def test_batches_up_to_eight(package, images):
    engine = load_engine(str(package))
    batch, geometry = Normalizer(engine.info)((images * 2)[:8])
    assert len(engine.infer(batch, [g.resized_size for g in geometry])) == 8


def test_damaged_package_is_refused(package, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    with (copy / "box_head.onnx").open("r+b") as file:
        file.seek(100)
        file.write(b"\x00" * 8)
    with pytest.raises(ModelError, match="does not match its checksum"):
        load_engine(str(copy))
    assert read_package(copy).info.architecture in ("fasterrcnn_compact", "maskrcnn_compact")


def test_export_and_run_from_the_command_line(tmp_path, videos):
    from support import run_cli

    model, info = untrained("fasterrcnn_compact")
    save_model(tmp_path / "m.pt", model, info)
    result = run_cli("export", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "pkg"))
    assert result.returncode == 0, result.stderr
    assert "dense.onnx" in result.stderr and (tmp_path / "pkg/package.json").exists()
    out = tmp_path / "out.jsonl"
    result = run_cli("run", "--model", str(tmp_path / "pkg"), "--source", str(videos["b"]),
                     "--sink", f"jsonl:{out}", "--score-threshold", "0.05")
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(messages) == 25 and {m["model"] for m in messages} == {info.name}
