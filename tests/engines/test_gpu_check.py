"""`make gpu-check` (engines/gpu_check.py): its checks run here through the CPU stand-in
of `trt_stubs`, on the faster embedded model and four frames (the mask model goes through
the same backend code in test_tensorrt_standin.py); without TensorRT it skips clearly."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from engines import gpu_check
from engines.models import build_model
from engines.package import Package, read_package
from engines.tensorrt_backend import TensorRTParts
from engines.tensorrt_build import build_plans, record_build
from engines.two_stage import TwoStageEngine
from pipeline.core.types import RawOutput
from trt_stubs import fake_tensorrt, pretend_gpu


def test_without_tensorrt_it_skips_and_says_why(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    out = tmp_path / "report.json"
    assert gpu_check.main(["--out", str(out), "--work", str(tmp_path / "work")]) == 0
    assert "TensorRT is not installed" in json.loads(out.read_text())["skipped"]
    assert "gpu-check SKIPPED: TensorRT is not installed" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


class Shifted(TwoStageEngine):
    """An engine whose boxes are 3 px off: what the checks exist to catch."""

    def infer(self, images, image_sizes):  # type: ignore[override]
        return [RawOutput(o.boxes + 3, o.scores, o.labels, o.mask_logits) for o in super().infer(images, image_sizes)]


def _setup(monkeypatch, engine_class: type[TwoStageEngine] = TwoStageEngine) -> gpu_check.Setup:
    stream = pretend_gpu(monkeypatch, fake_tensorrt())

    def tensorrt(package: Package) -> TwoStageEngine:
        info = package.info
        parts = TensorRTParts(package, torch.device("cpu"), stream)
        return engine_class(build_model(info.architecture, len(info.class_names)), parts, info, info.score_threshold)

    def build(package: Package) -> Package:  # a dense profile of 2: the batch check runs in chunks
        return record_build(package, build_plans(package, max_batch=2, tf32=False))

    return gpu_check.Setup(tensorrt, gpu_check.reference_engine, build)


@pytest.fixture(scope="module")
def images():
    return gpu_check.frames(3)


def test_the_checks_pass_on_a_faithful_backend(monkeypatch, tmp_path, images):
    """fp32 and int8 here (fp16 plans run through the stand-in in test_tensorrt_standin.py)."""
    from synth.dataset import write_dataset

    write_dataset(tmp_path / "calibration", seed=2, count=2, width=640, height=360)
    report = gpu_check.run(tmp_path / "work", _setup(monkeypatch), models=("faster-compact-synth",), images=images,
                           runs=0, precisions=("fp32", "int8"), calibration=tmp_path / "calibration" / "annotations.json",
                           calibration_images=2)
    results = report["models"]["faster-compact-synth"]
    assert results["fp32"]["ok"] and results["int8"]["ok"], json.dumps(report, indent=1)[:3000]
    assert set(results["fp32"]["checks"]) == {"parity", "batch_of_10", "black_frames"}
    assert results["fp32"]["detections"] >= 3 and results["int8"]["latency_ms_per_image"] is None  # runs=0
    assert read_package(tmp_path / "work" / "faster-compact-synth" / "int8").meta["tensorrt"]["precision"] == "int8"
    assert report["foreign_plan"]["ok"], report["foreign_plan"]
    assert "plan built for TensorRT 9.0.1" in report["foreign_plan"]["message"]
    assert report["ok"]
    assert "faster-compact-synth   int8      ok" in gpu_check.summary(report)


def test_a_precision_without_calibration_is_reported_not_built(tmp_path):
    from engines.export import export_package

    package = export_package("embedded:faster-compact-synth", tmp_path / "fp32")
    found = gpu_check.variants(package, tmp_path, ("fp32", "int8"), None, 10)
    assert found == {"fp32": package, "int8": "not built: no --calibration COCO.json given"}


def test_a_backend_off_by_three_pixels_fails(monkeypatch, tmp_path, images):
    report = gpu_check.run(tmp_path, _setup(monkeypatch, Shifted), models=("faster-compact-synth",),
                           images=images[:2], runs=0)
    fp32 = report["models"]["faster-compact-synth"]["fp32"]
    assert not fp32["ok"] and not report["ok"]
    assert not fp32["checks"]["parity"]["ok"] and "has no partner" in fp32["checks"]["parity"]["problems"][0]


def test_latency_is_per_image_and_the_median_of_the_runs():
    import time

    from engines.base import ModelInfo

    class Engine:
        info = ModelInfo(name="stub", architecture="fasterrcnn_compact", class_names=("__background__", "person"),
                         input_size=(64, 64))

        def __init__(self) -> None:
            self.calls: list[int] = []

        def infer(self, images, sizes):
            self.calls.append(len(images))
            time.sleep(0.02)

    engine = Engine()
    ms = gpu_check.latency(engine, [torch.zeros(48, 64, 3, dtype=torch.uint8).numpy()], batch=4, runs=3)
    assert engine.calls == [4] * 4  # a warm-up, then three timed runs of the batch
    assert 5.0 <= ms < 10.0  # 20 ms per call of 4 images
