"""The whole TensorRT backend on a CPU, through the stand-in of `trt_stubs.fake_tensorrt`
(it runs each plan's ONNX part in ONNX Runtime after checking what TensorRT requires:
shapes inside the profile, 256-byte aligned addresses bound for every run, dtypes,
scratch memory), on both trained embedded models against the ONNX Runtime backend with
the parity harness of `engines.parity` (both directions): masks, chunked batches, black
frames, fp16 plans, half I/O, misaligned bindings, version checks and `auto`'s fallback.

What only a GPU can show (TensorRT's own kernels, speed) is `make gpu-check`."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engines import tensorrt_backend
from engines.export import export_package
from engines.loading import load_engine
from engines.models import build_model
from engines.onnxruntime_backend import OnnxRuntimeEngine
from engines.package import Package, read_package
from engines.parity import FP16, compare, detect
from engines.tensorrt_backend import TensorRTParts
from engines.tensorrt_build import build_plans, record_build, trt_logger
from engines.two_stage import TwoStageEngine
from pipeline.core.errors import ModelError
from synth.video import iter_frames
from trt_stubs import HostStream, StandInError, fake_tensorrt, pretend_gpu

MODELS = ("faster-compact-synth", "mask-compact-synth")
MAX_BATCH = 2  # the dense profile: a batch of 5 runs in chunks of 2, 2, 1
MAX_ROIS = 97  # the heads' profile: 1000 proposals per image run in chunks; 97 x 76 x 14 x 14 floats is not 256-aligned


@pytest.fixture(scope="module", params=MODELS)
def package(request, tmp_path_factory) -> Package:
    root = export_package(f"embedded:{request.param}", tmp_path_factory.mktemp(request.param) / "package").root
    meta = json.loads((root / "package.json").read_text())
    meta["rois"]["max"] = MAX_ROIS
    (root / "package.json").write_text(json.dumps(meta))
    return read_package(root)


@pytest.fixture(scope="module")
def gpu():
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield pretend_gpu(monkeypatch, fake_tensorrt())


def _built(package: Package, folder: Path, fp16: bool = False) -> Package:
    root = folder / "package"
    shutil.copytree(package.root, root)
    copy = read_package(root)
    return record_build(copy, build_plans(copy, fp16=fp16, max_batch=MAX_BATCH, tf32=False))


@pytest.fixture(scope="module")
def built(package, gpu, tmp_path_factory) -> Package:
    return _built(package, tmp_path_factory.mktemp("fp32"))


def _engine(package: Package, stream: HostStream) -> TwoStageEngine:
    """TensorRTEngine minus its CUDA device and stream handling: the parts on the host."""
    info = package.info
    parts = TensorRTParts(package, torch.device("cpu"), stream)
    return TwoStageEngine(build_model(info.architecture, len(info.class_names)), parts, info, info.score_threshold)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    images = [image for i, image, _ in iter_frames(seed=43, width=640, height=360, seconds=1.0, objects=8) if i % 5 == 0]
    return images[:5]


@pytest.fixture(scope="module")
def reference(built, frames):
    """ONNX Runtime, one frame per call: the reference every TensorRT run is held to."""
    engine = OnnxRuntimeEngine(built, built.info.score_threshold)
    return engine, detect(engine, frames, batch=1)


def test_detections_match_onnxruntime_both_ways(built, gpu, frames, reference):
    engine, expected = reference
    ours = _engine(built, gpu)
    assert compare(detect(ours, frames, batch=2), expected, built.info.score_threshold) == []
    # a batch of 5 above the profile's 2 runs in chunks, and must equal single frames
    assert compare(detect(ours, frames, batch=len(frames)), expected, built.info.score_threshold) == []
    assert sum(len(d.boxes) for d in expected) >= len(frames)  # a trained model: something to compare
    assert (expected[0].masks is not None) == built.info.has_masks
    plans = ours.parts.plans
    assert plans["dense"].context.runs >= 3 + 3  # 2+2+1 chunks, twice
    assert plans["box_head"].context.runs > plans["dense"].context.runs  # 1000 proposals / 97 per chunk


def test_black_frames_give_nothing_on_both(built, gpu, reference):
    black = [np.zeros((360, 640, 3), np.uint8)] * 2
    ours = detect(_engine(built, gpu), black)
    assert compare(ours, detect(reference[0], black), built.info.score_threshold) == []
    assert all(len(d.boxes) == 0 for d in ours)


def test_heads_take_the_package_shapes_in_misaligned_chunks(built, gpu):
    parts = _engine(built, gpu).parts
    ort_parts = OnnxRuntimeEngine(built, 0.5).parts
    heads = ["box_head"] + (["mask_head"] if built.info.has_masks else [])
    for head in heads:
        _, *shape = built.input_shape(head)  # 76 channels for the pixel-reading mask head, not 64
        rois = torch.randn(2 * MAX_ROIS + 5, *shape)
        ours, theirs = getattr(parts, head)(rois), getattr(ort_parts, head)(rois)
        for x, y in zip(ours if isinstance(ours, tuple) else [ours], theirs if isinstance(theirs, tuple) else [theirs]):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
        empty = getattr(parts, head)(torch.zeros(0, *shape))  # zero RoIs: no plan run, right shapes
        for x, y in zip(empty if isinstance(empty, tuple) else [empty], theirs if isinstance(theirs, tuple) else [theirs]):
            assert x.shape == (0, *y.shape[1:])
        wrong = torch.zeros(3, shape[0] - 12, *shape[1:])
        with pytest.raises(ModelError, match=rf"{head} plan: input roi_features takes N x {shape[0]} x .*, got 3 x {shape[0] - 12}"):
            getattr(parts, head)(wrong)


def test_a_misaligned_binding_is_caught(built, gpu, monkeypatch):
    parts = _engine(built, gpu).parts
    _, *shape = built.input_shape("box_head")
    rois = torch.randn(MAX_ROIS + 1, *shape)
    raw = torch.empty(rois.numel() + 128)  # float32: 64 elements are 256 bytes
    start = (-raw.data_ptr() % 256) // 4 + 16  # 64 bytes past a 256-byte boundary, as a view into a batch can be
    misaligned = raw.narrow(0, start, rois.numel()).view(rois.shape).copy_(rois)
    assert misaligned.data_ptr() % 256 == 64
    monkeypatch.setattr(tensorrt_backend, "aligned", lambda tensor: tensor)  # the defect: bind what we are given
    with pytest.raises(ModelError, match=r"box_head plan: TensorRT refused the address of roi_features \(0x[0-9a-f]+, \d+ bytes past"):
        parts.box_head(misaligned)
    # and the stand-in itself: a refused bind keeps the old address, which must not be used
    context = parts.plans["box_head"].context
    assert context.set_tensor_address("roi_features", misaligned.data_ptr()) is False
    with pytest.raises(StandInError, match="roi_features: not bound for this run"):
        context.execute_async_v3(0)


def test_half_io_plans_are_fed_and_read_in_half(built, monkeypatch):
    """A plan may take and give fp16 tensors: the backend must bind what
    `get_tensor_dtype` says (the stand-in reads memory in that dtype)."""
    stream = pretend_gpu(monkeypatch, fake_tensorrt(io_dtype="float16"))
    parts = TensorRTParts(built, torch.device("cpu"), stream)
    _, *shape = built.input_shape("box_head")
    rois = torch.randn(10, *shape)
    for x, y in zip(parts.box_head(rois), OnnxRuntimeEngine(built, 0.5).parts.box_head(rois)):
        assert x.dtype == torch.float32
        torch.testing.assert_close(x, y, atol=2e-2, rtol=1e-2)


def test_fp16_plans_stay_within_the_fp16_tolerance(package, gpu, frames, reference, tmp_path):
    half = _built(package, tmp_path, fp16=True)
    ours = detect(_engine(half, gpu), frames)
    problems = compare(ours, reference[1], package.info.score_threshold, FP16)
    assert problems == []


def test_one_logger_and_one_shared_scratch_buffer(built, gpu):
    parts = _engine(built, gpu).parts
    assert trt_logger() is trt_logger()
    sizes = [p.memory_size for p in parts.plans.values()]
    assert parts.memory.numel() == max(sizes) and parts.memory.data_ptr() % 256 == 0
    assert all(p.context.memory == (parts.memory.data_ptr(), max(sizes)) for p in parts.plans.values())


def test_data_dependent_outputs_are_a_clear_error(built, gpu, monkeypatch):
    parts = _engine(built, gpu).parts
    context = parts.plans["box_head"].context
    monkeypatch.setattr(context, "get_tensor_shape", lambda name: (-1, 4) if name != "roi_features" else (3, 1))
    _, *shape = built.input_shape("box_head")
    with pytest.raises(ModelError, match="output class_logits has a data-dependent shape"):
        parts.box_head(torch.zeros(3, *shape))


@pytest.mark.parametrize("breakage", ["other-gpu", "no-tensorrt"])
def test_auto_falls_back_to_onnxruntime_with_a_warning(built, gpu, monkeypatch, caplog, breakage):
    import sys

    if breakage == "other-gpu":
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
        reason = "plan built for TensorRT 10.13.3 .* on sm_86 .* this machine has .* on sm_75"
    else:
        monkeypatch.setitem(sys.modules, "tensorrt", None)
        reason = "TensorRT is not installed"
    with caplog.at_level(logging.WARNING, logger="detstream"):
        engine = load_engine(str(built.root), device="cuda")
    assert engine.backend == "ONNX Runtime"
    (record,) = [r for r in caplog.records if "TensorRT cannot run it here" in r.getMessage()]
    assert "running ONNX Runtime on the CPU instead" in record.getMessage()
    with pytest.raises(ModelError, match=reason):
        load_engine(str(built.root), device="cuda", backend="tensorrt")
