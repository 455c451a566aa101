"""`engine: auto` with a model file: its ONNX Runtime package is exported once into the
cache and reused; two processes export once; a killed export's leftovers are never used;
export failures fall back to PyTorch with one warning; on CUDA, plans or PyTorch."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engines import export, loading
from engines.loading import load_engine
from engines.model_file import load_model, save_model
from engines.onnxruntime_backend import OnnxRuntimeEngine
from engines.package_cache import cache_key, entry_folder
from engines.torch_backend import TorchEngine
from pipeline.core.errors import ModelError
from support import run_cli

REPO = Path(__file__).resolve().parents[2]
SPEC = "embedded:faster-compact-synth"

# a process loading SPEC on auto, running it once, and saying what it ran on
LOAD = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(message)s")
import torch
from engines.loading import load_engine
engine = load_engine(sys.argv[1])
outputs = engine.infer(torch.zeros(1, 3, *engine.info.input_size), [tuple(engine.info.input_size)])
print(type(engine).__name__, len(outputs))
"""

# a process whose export stops for good after writing its first ONNX part (to be killed)
STUCK_EXPORT = """
import sys, time
from engines import export
real = export._export
def stuck(*args):
    real(*args)
    time.sleep(600)
export._export = stuck
from engines.loading import load_engine
load_engine(sys.argv[1])
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DETSTREAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "packages"


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every export the cache runs, by spec (the real exporter still runs)."""
    calls: list[str] = []
    real = export.export_model

    def counted(model, info, out, max_batch=export.MAX_BATCH, source="", extra_meta=None):
        calls.append(source)
        return real(model, info, out, max_batch, source, extra_meta)

    monkeypatch.setattr(export, "export_model", counted)
    return calls


def entry_of(spec: str) -> Path:
    model, info = load_model(spec)
    return entry_folder(cache_key(model, info), info)


def python(script: str, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, text=True, **popen)


def wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_first_load_exports_later_loads_use_the_cache(cache, exports, caplog):
    caplog.set_level(logging.INFO, "detstream")
    first = load_engine(SPEC)
    assert isinstance(first, OnnxRuntimeEngine)
    assert exports == [SPEC]
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    assert entry.name.startswith("faster-compact-synth-") and entry == entry_of(SPEC)
    assert any(f"exporting {SPEC} to an ONNX Runtime package once (cache: {entry})" in m for m in caplog.messages)
    assert any(m.startswith(f"exported {SPEC} in ") for m in caplog.messages)
    meta = json.loads((entry / "package.json").read_text())
    assert meta["cache"]["spec"] == SPEC and len(meta["cache"]["key"]) == 64
    written = (entry / "package.json").stat().st_mtime_ns

    caplog.clear()
    second = load_engine(SPEC, backend="onnxruntime")  # an explicit ONNX Runtime takes the cache too
    assert isinstance(second, OnnxRuntimeEngine) and second.info == first.info
    assert exports == [SPEC]  # no second export
    assert (entry / "package.json").stat().st_mtime_ns == written
    assert not any("exporting" in m for m in caplog.messages)
    assert sorted(p.name for p in cache.iterdir()) == [entry.name, entry.name + ".lock"]  # nothing else left


def test_engine_torch_stays_on_pytorch_and_leaves_the_cache_alone(cache, exports):
    assert isinstance(load_engine(SPEC, backend="torch"), TorchEngine)
    assert exports == [] and not cache.exists()


def test_the_key_follows_the_weights_not_the_spec(cache, exports, tmp_path):
    model, info = load_model(SPEC)
    path = tmp_path / "mine.pt"
    save_model(path, model, info)
    assert isinstance(load_engine(str(path)), OnnxRuntimeEngine)
    load_engine(SPEC)  # the same weights under another spec: the same entry
    assert exports == [str(path)]
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_model(path, model, info)  # the model file changes: a new entry
    assert isinstance(load_engine(str(path)), OnnxRuntimeEngine)
    assert exports == [str(path), str(path)]
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


def test_two_processes_at_once_export_once_and_both_run(cache, tmp_path):
    entry = entry_of(SPEC)
    entry.parent.mkdir(parents=True)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    # hold the entry's lock while both start, so that both must wait for it
    with open(entry.with_name(entry.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        procs = [python(LOAD, SPEC, stdout=subprocess.PIPE, stderr=log.open("w")) for log in logs]
        wait_for(lambda: all("waiting for another process exporting" in log.read_text() for log in logs))
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    stderr = [log.read_text() for log in logs]
    assert [proc.returncode for proc in procs] == [0, 0], stderr
    assert outputs == ["OnnxRuntimeEngine 1\n"] * 2
    assert sum(text.count(f"exporting {SPEC} to an ONNX Runtime package once") for text in stderr) == 1, stderr
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [entry.name]


def test_a_killed_export_leaves_nothing_that_is_used(cache, exports, caplog):
    entry = entry_of(SPEC)
    proc = python(STUCK_EXPORT, SPEC, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(cache.glob(".*.tmp/dense.onnx")) if cache.exists() else False)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (leftover,) = cache.glob(f".{entry.name}.*.tmp")
    assert not entry.exists()  # the half-written package never appeared under its name
    caplog.set_level(logging.INFO, "detstream")
    assert isinstance(load_engine(SPEC), OnnxRuntimeEngine)  # the lock died with the process
    assert exports == [SPEC] and not leftover.exists()
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [entry.name]


def test_a_failed_export_falls_back_to_pytorch_with_one_warning(cache, monkeypatch, caplog):
    def unsupported(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'torchvision::roi_align' is not supported\n<long trace>")

    monkeypatch.setattr(export, "export_model", unsupported)
    caplog.set_level(logging.INFO, "detstream")
    assert isinstance(load_engine(SPEC), TorchEngine)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"{SPEC}: cannot export it to an ONNX Runtime package (RuntimeError: Exporting the operator "
                        "'torchvision::roi_align' is not supported); running it on PyTorch"]
    assert list(cache.iterdir()) == [cache / (entry_of(SPEC).name + ".lock")]  # no package, no temporary folder
    with pytest.raises(ModelError, match="cannot export it to an engine package for onnxruntime: RuntimeError"):
        load_engine(SPEC, backend="onnxruntime")  # asked for explicitly: an error, not a fallback


def test_on_cuda_auto_takes_cached_plans_else_pytorch_with_a_hint(cache, monkeypatch, caplog):
    ran: list[tuple] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(loading, "TorchEngine", lambda model, info, device, score_floor, mask_floor: ran.append(("torch", device)))
    monkeypatch.setitem(loading.PACKAGE_BACKENDS, "tensorrt",
                        lambda package, device, floor, threads, masks: ran.append(("tensorrt", package.root, device)))
    caplog.set_level(logging.INFO, "detstream")
    entry = entry_of(SPEC)

    load_engine(SPEC, device="cuda")  # no plans yet: PyTorch CUDA, and how to build them
    assert ran == [("torch", "cuda")]
    assert f"{SPEC} runs on PyTorch cuda; for TensorRT, build plans once: detstream build-engine --package {entry}" \
        in caplog.messages

    meta = json.loads((entry / "package.json").read_text())
    meta["tensorrt"] = {"plans": {}}  # what build-engine adds
    (entry / "package.json").write_text(json.dumps(meta))
    load_engine(SPEC, device="cuda:0")
    assert ran[-1] == ("tensorrt", entry, "cuda:0")
    load_engine(SPEC, device="cuda", backend="torch")
    assert ran[-1] == ("torch", "cuda")
    load_engine(str(entry), device="cuda")  # the package given directly: the same choice
    assert ran[-1] == ("tensorrt", entry, "cuda")


def test_detstream_run_on_auto_says_it_exports_and_runs_the_package(cache, videos, tmp_path):
    done = run_cli("run", "--model", SPEC, "--source", str(videos["b"]), "--max-frames", "4",
                   "--sink", f"jsonl:{tmp_path / 'out.jsonl'}")
    assert done.returncode == 0, done.stderr
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    assert f"exporting {SPEC} to an ONNX Runtime package once (cache: {entry})" in done.stderr
    assert f"exported {SPEC} in " in done.stderr and "Traceback" not in done.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4
