"""TensorRT plans: built and run on a GPU (marked `gpu`, skipped without CUDA + TensorRT),
and the parts that need neither (build through the stand-in, plan record checks, clear
errors), which run everywhere. The fp16 conversion is tests/engines/test_fp16.py."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.build_engine_cli import add_parser
from engines.export import export_package
from engines.package import read_package, sha256
from engines.tensorrt_backend import check_record, tensorrt_engine
from engines.tensorrt_build import build_plans, record_build
from pipeline.core.errors import ModelError
from trt_stubs import HostStream, fake_tensorrt, pretend_gpu

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


RECORD = {"version": "10.13.3.9", "cuda": "12", "gpu": "NVIDIA A10", "compute_capability": "8.6",
          "input_size": [320, 576], "plans": {}}


def _here(version: str, capability: str, cuda: str = "12") -> dict[str, str]:
    return {"version": version, "cuda": cuda, "gpu": "NVIDIA L4", "compute_capability": capability}


@pytest.mark.parametrize("here, size, message", [
    (_here("10.13.3.9", "8.6"), (320, 576), None),
    (_here("10.13.3.12", "8.6"), (320, 576), None),  # another build of the same release
    (_here("10.14.1.48", "8.6"), (320, 576), "plan built for TensorRT 10.13.3 (CUDA 12) on sm_86 (NVIDIA A10), "
                                             "this machine has TensorRT 10.14.1 (CUDA 12) on sm_86 (NVIDIA L4)"),
    (_here("11.4.0.106", "8.9"), (320, 576), "this machine has TensorRT 11.4.0 (CUDA 12) on sm_89"),
    # one TensorRT version string exists for CUDA 12 and 13: plans of one do not load in the other
    (_here("10.13.3.9", "8.6", cuda="13"), (320, 576), "this machine has TensorRT 10.13.3 (CUDA 13) on sm_86"),
    (_here("10.13.3.9", "8.6"), (512, 896), "plans built for input size (320, 576), the package now says (512, 896)"),
])
def test_plan_record_must_match_this_machine(here, size, message):
    if message is None:
        check_record(RECORD, "pkg", here, size)
        return
    with pytest.raises(ModelError, match="rebuild with detstream build-engine --package pkg") as info:
        check_record(RECORD, "pkg", here, size)
    assert message in str(info.value)


def test_package_without_plans_is_refused():
    with pytest.raises(ModelError, match="has no TensorRT plans: rebuild with detstream build-engine"):
        check_record(None, "pkg", _here("10.13.3.9", "8.6"), (320, 576))


def test_a_record_from_an_older_detstream_is_a_model_error_not_a_key_error():
    old = {k: v for k, v in RECORD.items() if k != "cuda"}
    with pytest.raises(ModelError, match=r"record has no cuda \(written by an older detstream\): rebuild"):
        check_record(old, "pkg", _here("10.13.3.9", "8.6"), (320, 576))


def test_the_cuda_major_comes_from_the_wheel_name(monkeypatch):
    from importlib import metadata

    from engines import tensorrt_build

    dists = [types.SimpleNamespace(metadata={"Name": "tensorrt_cu13_bindings"}, version="10.13.3.9"),
             types.SimpleNamespace(metadata={"Name": "tensorrt-cu12-bindings"}, version="10.13.0.35")]
    monkeypatch.setattr(metadata, "distributions", lambda: iter(dists))
    assert tensorrt_build.cuda_major(types.SimpleNamespace(__version__="10.13.3.9")) == "13"
    monkeypatch.setattr(torch.version, "cuda", "12.8")  # no wheel of that version: torch's CUDA
    assert tensorrt_build.cuda_major(types.SimpleNamespace(__version__="10.14.1.48")) == "12"


@pytest.fixture
def fake_gpu(monkeypatch) -> HostStream:
    """`tensorrt` replaced by the stand-in, torch told there is an sm_86 GPU whose
    streams are the host's."""
    return pretend_gpu(monkeypatch, fake_tensorrt())


def test_build_drives_tensorrt_as_intended(fake_gpu, package, tmp_path):
    """The build code run end to end on a CPU against the stand-in: profiles, precision,
    timing cache, metadata record (the real calls are checked by test_tensorrt_api)."""
    root = tmp_path / "package"
    shutil.copytree(package, root)
    assert _run_cli("--package", str(root), "--fp16", "--max-batch", "8") == 0
    built = read_package(root)
    record = built.meta["tensorrt"]
    parts = ["dense", "box_head"] + (["mask_head"] if built.info.has_masks else [])
    assert list(record["plans"]) == parts
    assert {k: record[k] for k in ("version", "gpu", "compute_capability", "precision", "input_size")} == {
        "version": "10.13.3.9", "gpu": "Fake GPU", "compute_capability": "8.6", "precision": "fp16",
        "input_size": list(built.info.input_size)}
    assert record["cuda"]  # the CUDA major TensorRT was built for, checked at load
    # opt 2 whatever the max: live runs batch one or two frames, and tactics are tuned for opt
    assert record["batch"] == {"min": 1, "opt": 2, "max": 8} and record["rois"] == {"min": 1, "opt": 128, "max": 1000}
    plans = {part: json.loads((root / e["path"]).read_bytes()) for part, e in record["plans"].items()}
    assert plans["dense"]["onnx"] == str(root / "trt" / "dense.fp16.onnx")  # built from the fp16 ONNX
    height, width = built.info.input_size
    assert plans["dense"]["profiles"] == [{"images": [[n, 3, height, width] for n in (1, 2, 8)]}]
    assert plans["box_head"]["profiles"] == [{"roi_features": [[1, 64, 7, 7], [128, 64, 7, 7], [1000, 64, 7, 7]]}]
    assert all(p["flags"] == 1 << 1 and p["cleared"] == [] for p in plans.values())  # strongly typed, TF32 kept
    assert (root / "trt" / "dense.fp16.onnx").is_file() and (root / "trt" / "timing.cache").read_bytes() == b"timing"
    assert built.meta["files"] == read_package(package).meta["files"]  # the ONNX entries are untouched
    from engines.tensorrt_build import machine_record

    check_record(record, str(root), machine_record(sys.modules["tensorrt"]), built.info.input_size)


def test_max_batch_zero_is_refused_not_replaced(fake_gpu, package, capsys):
    with pytest.raises(SystemExit):
        _run_cli("--package", str(package), "--max-batch", "0")
    assert "expected a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(ModelError, match="max batch 0"):
        build_plans(read_package(package), max_batch=0)


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
# The trained embedded models, compared with the parity harness (engines.parity, both
# directions) against ONNX Runtime on the same package: untrained models would compare
# noise capped at the 300-candidate limit. The same checks run in CI through the
# stand-in (test_tensorrt_standin.py); `make gpu-check` runs them with latencies too.

TRAINED = ("faster-compact-synth", "mask-compact-synth")


@pytest.fixture(scope="module", params=TRAINED)
def built(request, tmp_path_factory) -> Path:
    """A trained package with strict-fp32 plans (TF32 off: parity within float error)."""
    root = export_package(f"embedded:{request.param}", tmp_path_factory.mktemp(request.param) / "package").root
    original = read_package(root)
    record_build(original, build_plans(original, tf32=False))
    return root


def _frames(count: int) -> list[np.ndarray]:
    from synth.video import iter_frames

    frames = iter_frames(seed=43, width=640, height=360, seconds=count / 5, objects=8)
    return [image for i, image, _ in frames if i % 5 == 0][:count]


def _both(root: Path):
    from engines.onnxruntime_backend import OnnxRuntimeEngine

    package = read_package(root)
    floor = package.info.score_threshold
    return tensorrt_engine(package, "cuda", floor, None), OnnxRuntimeEngine(package, floor)


@pytest.mark.gpu
@needs_tensorrt
def test_plans_match_onnxruntime(built):
    from engines.parity import compare, detect

    ours, reference = _both(built)
    package = read_package(built)
    threshold = package.info.score_threshold
    # part by part first, shapes from the package: a mismatch here names the plan that is off
    batch = torch.randn(3, *package.input_shape("dense")[1:])
    a, b = ours.parts.dense(batch.cuda()), reference.parts.dense(batch)
    for x, y in zip([*a[0].values(), *a[1], *a[2]], [*b[0].values(), *b[1], *b[2]], strict=True):
        torch.testing.assert_close(x.cpu(), y, atol=1e-3, rtol=1e-3)
    for head in ("box_head", "mask_head"):
        if package.has(head):
            rois = torch.randn(1200, *package.input_shape(head)[1:])  # above the 1000-RoI profile: two chunks
            x, y = getattr(ours.parts, head)(rois.cuda()), getattr(reference.parts, head)(rois)
            for u, v in zip(x if isinstance(x, tuple) else [x], y if isinstance(y, tuple) else [y], strict=True):
                torch.testing.assert_close(u.cpu(), v, atol=1e-3, rtol=1e-3)
    frames = _frames(10)
    expected = detect(reference, frames, batch=1)
    assert sum(len(d.boxes) for d in expected) >= len(frames)
    assert compare(detect(ours, frames, batch=2), expected, threshold) == []
    # a batch of 10 above the profile's 8: chunks, equal to single frames, masks included
    assert compare(detect(ours, frames, batch=10), expected, threshold) == []
    black = [np.zeros((360, 640, 3), np.uint8)] * 2  # no candidates: the zero-RoI path
    assert compare(detect(ours, black), detect(reference, black), threshold) == []


@pytest.mark.gpu
@needs_tensorrt
def test_fp16_plans_stay_within_the_fp16_tolerance(built, tmp_path):
    from engines.parity import FP16, compare, detect

    root = tmp_path / "package"
    shutil.copytree(built, root)
    assert _run_cli("--package", str(root), "--fp16") == 0
    record = read_package(root).meta["tensorrt"]
    assert record["precision"] == "fp16" and all(e["path"].endswith(".fp16.plan") for e in record["plans"].values())
    assert (root / "trt" / "timing.cache").stat().st_size > 0
    ours, reference = _both(root)
    frames = _frames(10)
    assert compare(detect(ours, frames), detect(reference, frames, batch=1), reference.info.score_threshold, FP16) == []


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
