"""TensorRT plans: built and run on a GPU (marked `gpu`, skipped without CUDA + TensorRT),
and the parts that need neither (fp16 conversion, plan record checks, clear errors),
which run everywhere."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engines.build_engine_cli import add_parser
from engines.export import export_package
from engines.package import read_package, sha256
from engines.tensorrt_backend import check_record, tensorrt_engine
from engines.tensorrt_build import build_plans, convert_fp16, record_build
from pipeline.core.errors import ModelError
from trt_stubs import fake_tensorrt

ROOT = Path(__file__).resolve().parents[2]


def _tensorrt_missing() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (torch.cuda.is_available() is False)"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "needs TensorRT (pip install '.[tensorrt]' on an NVIDIA machine)"
    return None


needs_tensorrt = pytest.mark.skipif(_tensorrt_missing() is not None, reason=_tensorrt_missing() or "")


@pytest.fixture(scope="module", params=["fasterrcnn_compact", "maskrcnn_compact", "maskrcnn_compact_px"])
def package(request, tmp_path_factory) -> Path:
    return export_package(f"arch:{request.param}", tmp_path_factory.mktemp(request.param) / "package").root


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["build-engine", *argv])
    return args.func(args)


# ---- without a GPU ------------------------------------------------------------------------

def test_modules_import_without_tensorrt():
    code = ("import sys; sys.modules['tensorrt'] = None\n"
            "import engines.tensorrt_backend, engines.tensorrt_build, engines.build_engine_cli")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr


def test_missing_tensorrt_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError
    with pytest.raises(ModelError, match=r"pip install 'detstream\[tensorrt\]' on an NVIDIA machine"):
        _run_cli("--package", str(tmp_path))


@pytest.mark.skipif(_tensorrt_missing() is None, reason="TensorRT and a GPU here: this checks the error without them")
def test_the_package_folder_is_positional_or_a_flag(tmp_path):
    from support import run_cli

    for argv in ([str(tmp_path)], ["--package", str(tmp_path)]):
        result = run_cli("build-engine", *argv)
        # past the parser: the one-line TensorRT / CUDA error of this machine
        assert result.returncode == 2 and "usage:" not in result.stderr, result.stderr
        assert "TensorRT is not installed" in result.stderr or "CUDA" in result.stderr, result.stderr
    result = run_cli("build-engine")
    assert result.returncode == 2 and "name the engine package folder (detstream build-engine PACKAGE)" in result.stderr
    result = run_cli("build-engine", "a", "--package", "b")
    assert result.returncode == 2 and "two packages given: a and --package b" in result.stderr


def test_missing_cuda_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match="needs an NVIDIA GPU with CUDA"):
        _run_cli("--package", str(tmp_path), "--fp16")


def test_engine_without_tensorrt_is_a_model_error(monkeypatch, package):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ModelError, match="TensorRT is not installed"):
        tensorrt_engine(read_package(package), "cuda", 0.5, None)


RECORD = {"version": "10.13.3.9", "gpu": "NVIDIA A10", "compute_capability": "8.6", "input_size": [320, 576]}


@pytest.mark.parametrize("here, message", [
    (("10.13.3.9", "8.6", (320, 576)), None),
    (("10.13.3.12", "8.6", (320, 576)), None),  # another build of the same release
    (("10.14.1.48", "8.6", (320, 576)), "plan built for TensorRT 10.13.3 on sm_86 (NVIDIA A10), "
                                         "this machine has TensorRT 10.14.1 on sm_86"),
    (("11.4.0.106", "8.9", (320, 576)), "this machine has TensorRT 11.4.0 on sm_89"),
    (("10.13.3.9", "8.6", (512, 896)), "plans built for input size (320, 576), the package now says (512, 896)"),
])
def test_plan_record_must_match_this_machine(here, message):
    version, capability, size = here
    if message is None:
        check_record(RECORD, "pkg", version, capability, "NVIDIA L4", size)
        return
    with pytest.raises(ModelError, match="rebuild with detstream build-engine --package pkg") as info:
        check_record(RECORD, "pkg", version, capability, "NVIDIA L4", size)
    assert message in str(info.value)


def test_package_without_plans_is_refused():
    with pytest.raises(ModelError, match="has no TensorRT plans: rebuild with detstream build-engine"):
        check_record(None, "pkg", "10.13.3.9", "8.6", "NVIDIA A10", (320, 576))


def test_fp16_onnx_keeps_float32_io_and_agrees(package, tmp_path):
    """The fp16 ONNX a `--fp16` build starts from, checked numerically in ONNX Runtime."""
    rng = np.random.default_rng(0)
    meta = json.loads((package / "package.json").read_text())
    for part, entry in meta["files"].items():
        if part not in ("dense", "box_head", "mask_head"):
            continue
        half = convert_fp16(package / entry["path"], tmp_path / f"{part}.fp16.onnx")
        full_session = ort.InferenceSession(str(package / entry["path"]), providers=["CPUExecutionProvider"])
        half_session = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
        assert [(i.name, i.type) for i in half_session.get_inputs()] == [(i.name, i.type) for i in full_session.get_inputs()]
        assert [(o.name, o.type) for o in half_session.get_outputs()] == [(o.name, o.type) for o in full_session.get_outputs()]
        # the part's own input shape, 3 for its dynamic (batch / RoI) axis
        shape = [dim if isinstance(dim, int) else 3 for dim in full_session.get_inputs()[0].shape]
        x = {full_session.get_inputs()[0].name: rng.standard_normal(shape).astype(np.float32)}
        for full, half_out in zip(full_session.run(None, x), half_session.run(None, x)):
            scale = float(np.abs(full).max()) or 1.0
            assert float(np.abs(full - half_out).max()) <= 2e-3 * scale, part


class HostStream:
    """What the backend asks of a torch CUDA stream, for tensors that stay on the CPU."""

    cuda_stream = 0

    def wait_stream(self, other: object) -> None:
        pass


@pytest.fixture
def fake_gpu(monkeypatch) -> HostStream:
    """`tensorrt` replaced by the stand-in, torch told there is an sm_86 GPU whose
    streams are the host's."""
    stream = HostStream()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    return stream


def test_build_drives_tensorrt_as_intended(fake_gpu, package, tmp_path):
    """The build code run end to end on a CPU against the stand-in: profiles, precision,
    timing cache, metadata record (the real calls are checked by test_tensorrt_api)."""
    root = tmp_path / "package"
    shutil.copytree(package, root)
    assert _run_cli("--package", str(root), "--fp16", "--max-batch", "4") == 0
    built = read_package(root)
    record = built.meta["tensorrt"]
    parts = ["dense", "box_head"] + (["mask_head"] if built.info.has_masks else [])
    assert list(record["plans"]) == parts
    assert {k: record[k] for k in ("version", "gpu", "compute_capability", "precision", "input_size")} == {
        "version": "10.13.3.9", "gpu": "Fake GPU", "compute_capability": "8.6", "precision": "fp16",
        "input_size": list(built.info.input_size)}
    assert record["batch"] == {"min": 1, "opt": 2, "max": 4} and record["rois"] == {"min": 1, "opt": 128, "max": 1000}
    plans = {part: json.loads((root / e["path"]).read_bytes()) for part, e in record["plans"].items()}
    assert plans["dense"]["onnx"] == str(root / "trt" / "dense.fp16.onnx")  # built from the fp16 ONNX
    height, width = built.info.input_size
    assert plans["dense"]["profiles"] == [{"images": [[n, 3, height, width] for n in (1, 2, 4)]}]
    assert plans["box_head"]["profiles"] == [{"roi_features": [[1, 64, 7, 7], [128, 64, 7, 7], [1000, 64, 7, 7]]}]
    assert all(p["flags"] == 1 << 1 and p["cleared"] == [] for p in plans.values())  # strongly typed, TF32 kept
    assert (root / "trt" / "dense.fp16.onnx").is_file() and (root / "trt" / "timing.cache").read_bytes() == b"timing"
    assert built.meta["files"] == read_package(package).meta["files"]  # the ONNX entries are untouched
    check_record(record, str(root), "10.13.3.9", "8.6", "Fake GPU", built.info.input_size)


def test_backend_runs_the_plans_like_onnxruntime(fake_gpu, package, tmp_path):
    """The backend's own code (record checks, plan loading, tensor addresses, output names,
    chunking, empty RoIs) run on a CPU: the stand-in executes plans with ONNX Runtime, so
    the result must equal the ONNX Runtime backend's."""
    from engines.models import build_model
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from engines.tensorrt_backend import TensorRTParts
    from engines.two_stage import TwoStageEngine
    from engines.inputs import Normalizer

    root = tmp_path / "package"
    shutil.copytree(package, root)
    assert _run_cli("--package", str(root), "--max-batch", "1") == 0
    built = read_package(root)
    info = built.info
    parts = TensorRTParts(built, torch.device("cpu"), fake_gpu)
    ours = TwoStageEngine(build_model(info.architecture, len(info.class_names)), parts, info, 0.05)
    reference = OnnxRuntimeEngine(built, 0.05)
    batch, geometry = Normalizer(info)(_images(2))  # 2 > the profile's 1: two chunks
    sizes = [g.resized_size for g in geometry]
    for mine, theirs in zip(ours.infer(batch, sizes), reference.infer(batch, sizes), strict=True):
        torch.testing.assert_close(mine.boxes, theirs.boxes, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(mine.scores, theirs.scores, atol=1e-5, rtol=1e-5)
        assert torch.equal(mine.labels, theirs.labels)
    rois = torch.randn(1200, 64, 7, 7)  # more than the 1000-RoI profile
    for x, y in zip(parts.box_head(rois), reference.parts.box_head(rois), strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    logits, regression = parts.box_head(torch.zeros(0, 64, 7, 7))  # profiles start at 1 RoI
    assert logits.shape == (0, len(info.class_names)) and regression.shape == (0, 4 * len(info.class_names))


def test_parser_errors_name_the_nodes(fake_gpu, package, tmp_path):
    import onnx
    from onnx import helper

    root = tmp_path / "package"
    shutil.copytree(package, root)
    model = onnx.load(str(root / "box_head.onnx"))
    model.graph.node.append(helper.make_node("Unique", ["class_logits"], ["odd"], name="odd_one"))
    onnx.save(model, str(root / "box_head.onnx"))
    meta = json.loads((root / "package.json").read_text())
    meta["files"]["box_head"]["sha256"] = sha256(root / "box_head.onnx")
    (root / "package.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=r"TensorRT cannot parse box_head.onnx: node \d+ 'odd_one' \(Unique\): "
                                         "No importer registered for op: Unique"):
        build_plans(read_package(root), tf32=False)


# ---- on a GPU with TensorRT ------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(package, tmp_path_factory) -> Path:
    """A copy of the package with strict-fp32 plans (TF32 off: parity within float error)."""
    root = tmp_path_factory.mktemp("built") / "package"
    shutil.copytree(package, root)
    original = read_package(root)
    record_build(original, build_plans(original, tf32=False))
    return root


def _images(count: int) -> list[np.ndarray]:
    from synth.video import iter_frames

    return [image for _, image, _ in iter_frames(seed=5, width=640, height=360, seconds=0.2)][:count]


def _assert_same_candidates(ours, reference) -> None:
    """Same count, boxes within 0.5 px, scores within 1e-3, per image. Order may differ
    between near-equal scores, and so may the last candidate kept when two tie at the cut."""
    assert len(ours.scores) == len(reference.scores)
    boxes, scores, labels = ours.boxes.cpu(), ours.scores.cpu(), ours.labels.cpu()
    cut = float(reference.scores.min()) if len(reference.scores) else 0.0
    unmatched = list(range(len(scores)))
    for box, score, label in zip(reference.boxes.cpu(), reference.scores.cpu(), reference.labels.cpu()):
        close = [i for i in unmatched if labels[i] == label and abs(float(scores[i] - score)) <= 1e-3
                 and float((boxes[i] - box).abs().max()) <= 0.5]
        if close:
            unmatched.remove(close[0])
        else:
            assert float(score) - cut <= 1e-3, f"no TensorRT candidate matches {box.tolist()} score {float(score):.4f}"


@pytest.mark.gpu
@needs_tensorrt
def test_plans_match_onnxruntime(built):
    from engines.onnxruntime_backend import OnnxRuntimeEngine
    from engines.inputs import Normalizer

    ours = tensorrt_engine(read_package(built), "cuda", 0.05, None)
    reference = OnnxRuntimeEngine(read_package(built), 0.05)
    batch, geometry = Normalizer(reference.info)(_images(4))
    sizes = [g.resized_size for g in geometry]
    # part by part first: a mismatch here names the plan that is off
    a, b = ours.parts.dense(batch.cuda()), reference.parts.dense(batch)
    for x, y in zip([*a[0].values(), *a[1], *a[2]], [*b[0].values(), *b[1], *b[2]]):
        torch.testing.assert_close(x.cpu(), y, atol=1e-3, rtol=1e-3)
    rois = torch.randn(1200, 64, 7, 7)  # more than the 1000-RoI profile: runs in two chunks
    for x, y in zip(ours.parts.box_head(rois.cuda()), reference.parts.box_head(rois)):
        torch.testing.assert_close(x.cpu(), y, atol=1e-3, rtol=1e-3)
    if reference.info.has_masks:
        rois = torch.randn(5, 64, 14, 14)
        torch.testing.assert_close(ours.parts.mask_head(rois.cuda()).cpu(), reference.parts.mask_head(rois),
                                   atol=1e-3, rtol=1e-3)
    for mine, theirs in zip(ours.infer(batch, sizes), reference.infer(batch, sizes)):
        _assert_same_candidates(mine, theirs)


@pytest.mark.gpu
@needs_tensorrt
def test_batches_beyond_the_profile_run_in_chunks(built):
    from engines.inputs import Normalizer

    engine = tensorrt_engine(read_package(built), "cuda", 0.05, None)
    batch, geometry = Normalizer(engine.info)((_images(4) * 3)[:10])  # profile max is 8
    assert len(engine.infer(batch, [g.resized_size for g in geometry])) == 10


@pytest.mark.gpu
@needs_tensorrt
def test_fp16_build_runs(package, tmp_path):
    from engines.inputs import Normalizer

    root = tmp_path / "package"
    shutil.copytree(package, root)
    assert _run_cli("--package", str(root), "--fp16") == 0
    built = read_package(root)
    record = built.meta["tensorrt"]
    assert record["precision"] == "fp16" and all(e["path"].endswith(".fp16.plan") for e in record["plans"].values())
    assert (root / "trt" / "timing.cache").stat().st_size > 0
    engine = tensorrt_engine(built, "cuda", 0.05, None)
    batch, geometry = Normalizer(engine.info)(_images(2))
    outputs = engine.infer(batch, [g.resized_size for g in geometry])
    assert len(outputs) == 2
    assert all(bool(torch.isfinite(o.boxes).all() and torch.isfinite(o.scores).all()) for o in outputs)


@pytest.mark.gpu
@needs_tensorrt
def test_foreign_or_damaged_plans_are_refused(built, tmp_path):
    root = tmp_path / "package"
    shutil.copytree(built, root)
    meta = json.loads((root / "package.json").read_text())
    meta["tensorrt"]["compute_capability"] = "5.0"
    (root / "package.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="plan built for TensorRT .* on sm_50 .*: rebuild with detstream build-engine"):
        tensorrt_engine(read_package(root), "cuda", 0.5, None)
    shutil.copy(built / "package.json", root / "package.json")
    with (root / meta["tensorrt"]["plans"]["dense"]["path"]).open("r+b") as file:
        file.seek(64)
        file.write(b"\x00" * 8)
    with pytest.raises(ModelError, match="does not match its checksum"):
        tensorrt_engine(read_package(root), "cuda", 0.5, None)
    with pytest.raises(ModelError, match="runs on a CUDA device"):
        tensorrt_engine(read_package(built), "cpu", 0.5, None)
