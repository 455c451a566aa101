"""Turn a model spec from the config into a ready engine on the chosen backend.

A spec is an engine package (a folder, see engines/package.py), or anything
engines/model_file.py loads: a model file, a training checkpoint, `embedded:NAME`,
`torchvision:NAME` or `arch:NAME`. A package holds its weights and was exported for one
input size: `weights` and another `input_size` are errors for it, not silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from engines.base import Engine
from engines.model_file import load_model
from engines.package import Package, is_package, read_package
from engines.torch_backend import TorchEngine
from pipeline.core.errors import ModelError

def _torch_engine(package: Package, device: str, floor: float, threads: int | None) -> Engine:
    model, info = load_model(str(package.file("torch")))
    return TorchEngine(model, info, device=device, score_floor=floor)


def _onnxruntime_engine(package: Package, device: str, floor: float, threads: int | None) -> Engine:
    from engines.onnxruntime_backend import OnnxRuntimeEngine  # onnxruntime loads only when used

    return OnnxRuntimeEngine(package, floor, threads)


def _tensorrt_engine(package: Package, device: str, floor: float, threads: int | None) -> Engine:
    from engines.tensorrt_backend import tensorrt_engine  # tensorrt loads only when used

    return tensorrt_engine(package, device, floor, threads)


PACKAGE_BACKENDS = {"torch": _torch_engine, "onnxruntime": _onnxruntime_engine, "tensorrt": _tensorrt_engine}


def _check_package_settings(package: Package, spec: str, weights: str | None, input_size: tuple[int, int] | None) -> None:
    if weights is not None:
        raise ModelError(f"--weights / model.weights: the engine package {spec} holds its own weights")
    exported = tuple(package.info.input_size)
    if input_size is not None and tuple(input_size) != exported:
        raise ModelError(
            f"model.input_size {list(input_size)}: the engine package {spec} was exported for {list(exported)} "
            "(export again with --input-size HxW)"
        )


def _auto_backend(package: Package, device: str) -> str:
    """TensorRT when the package holds plans and we run on CUDA, else ONNX Runtime."""
    return "tensorrt" if device.startswith("cuda") and "tensorrt" in package.meta else "onnxruntime"


def score_floor(model_default: float, score_threshold: float | None, others: Iterable[float] = ()) -> float:
    """The engine's score floor: the lowest threshold in effect, `score_threshold` (default:
    the model's) and `others` (per class, per source). Higher, a threshold below the global
    one would never see its candidates."""
    return min([model_default if score_threshold is None else score_threshold, *others])


def load_engine(
    spec: str,
    device: str = "cpu",
    score_threshold: float | None = None,
    threads: int | None = None,
    backend: str = "auto",
    other_thresholds: Iterable[float] = (),
    weights: str | None = None,
    input_size: tuple[int, int] | None = None,
) -> Engine:
    """Load `spec` on `device` with `backend` (auto: for engine packages TensorRT on CUDA
    when the package has plans, else ONNX Runtime; PyTorch for model files).

    Candidates below the score floor (`score_floor`) are never produced: postprocess
    would drop them anyway, and for mask models each costs a mask-head pass.
    `weights` (a state dict file, for `torchvision:NAME`) and `input_size` go to `load_model`.
    """
    if backend != "auto" and backend not in PACKAGE_BACKENDS:
        raise ModelError(f"model.engine = {backend!r}: not a backend (allowed: auto, {', '.join(PACKAGE_BACKENDS)})")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available on this machine")
    if threads is not None:
        torch.set_num_threads(threads)  # process-wide: torch has one intra-op pool
    if is_package(Path(spec)):
        package = read_package(Path(spec))
        _check_package_settings(package, spec, weights, input_size)
        chosen = _auto_backend(package, device) if backend == "auto" else backend
        if chosen not in PACKAGE_BACKENDS:
            raise ModelError(f"backend {chosen!r} is not available here (available: {', '.join(PACKAGE_BACKENDS)})")
        floor = score_floor(package.info.score_threshold, score_threshold, other_thresholds)
        return PACKAGE_BACKENDS[chosen](package, device, floor, threads)
    if backend not in ("auto", "torch"):
        raise ModelError(f"backend {backend!r} needs an engine package: detstream export --model {spec} --out PACKAGE")
    model, info = load_model(spec, weights, input_size)
    floor = score_floor(info.score_threshold, score_threshold, other_thresholds)
    return TorchEngine(model, info, device=device, score_floor=floor)
