"""Turn a model spec from the config into a ready engine on the chosen backend.

A spec is an engine package (a folder, see engines/package.py), or anything
engines/model_file.py loads: a model file, a training checkpoint, `embedded:NAME`,
`torchvision:NAME` or `arch:NAME`. A package holds its weights and was exported for one
input size: `weights` and another `input_size` are errors for it, not silently ignored.

Which backend runs it:
- an engine package: the backend asked for; `auto` takes TensorRT on CUDA when the
  package has plans, else ONNX Runtime (the package's choice, as before). When `auto`
  chose TensorRT and it cannot load the plans (TensorRT missing, plans built for another
  GPU or TensorRT release), it falls back to ONNX Runtime with one warning naming why;
  an explicit `tensorrt` fails with that reason;
- a model file with `torch`: PyTorch;
- a model file otherwise: its package from the cache (engines/package_cache.py, exported
  there the first time), then as for a package, except that `auto` on CUDA without plans
  runs PyTorch on CUDA with a one-line hint on how to build them. If the export fails,
  `auto` falls back to PyTorch with one warning line naming the reason; an explicit
  backend fails with that reason;
- a model that takes region proposals (R-CNN, Fast R-CNN): PyTorch only (`auto` or
  `torch`), on engines/region_engine.py; the run's proposals stage feeds it;
- a one-stage model (RetinaNet): PyTorch only (`auto` or `torch`), on
  engines/one_stage_engine.py; it has no ONNX export.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import torch

from engines.base import Engine, ModelInfo
from engines.model_file import load_model
from engines.models import ONE_STAGE, TWO_STAGE, architecture
from engines.one_stage_engine import OneStageEngine
from engines.package import Package, is_package, read_package
from engines.package_cache import cached_package
from engines.region_engine import RegionEngine
from engines.torch_backend import TorchEngine
from pipeline.core.errors import ModelError

log = logging.getLogger("detstream")


def _torch_engine(package: Package, device: str, floor: float, threads: int | None, mask_floor: float) -> Engine:
    model, info = load_model(str(package.file("torch")))
    return TorchEngine(model, info, device=device, score_floor=floor, mask_floor=mask_floor)


def _onnxruntime_engine(package: Package, device: str, floor: float, threads: int | None, mask_floor: float) -> Engine:
    from engines.onnxruntime_backend import OnnxRuntimeEngine  # onnxruntime loads only when used

    return OnnxRuntimeEngine(package, floor, threads, mask_floor)


def _tensorrt_engine(package: Package, device: str, floor: float, threads: int | None, mask_floor: float) -> Engine:
    from engines.tensorrt_backend import tensorrt_engine  # tensorrt loads only when used

    return tensorrt_engine(package, device, floor, threads, mask_floor)


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


def score_floor(
    model_default: float, score_threshold: float | None, others: Iterable[float] = (), low_floor: float | None = None
) -> float:
    """The engine's score floor: the lowest threshold in effect, `score_threshold` (default:
    the model's) and `others` (per class, per source). Higher, a threshold below the global
    one would never see its candidates. `low_floor`: a tracker's low score, when tracking
    is on: candidates down to it are produced too (for tracking only, never emitted)."""
    emitted = min([model_default if score_threshold is None else score_threshold, *others])
    return emitted if low_floor is None else min(emitted, low_floor)


def load_engine(
    spec: str,
    device: str = "cpu",
    score_threshold: float | None = None,
    threads: int | None = None,
    backend: str = "auto",
    other_thresholds: Iterable[float] = (),
    weights: str | None = None,
    input_size: tuple[int, int] | None = None,
    low_floor: float | None = None,
) -> Engine:
    """Load `spec` on `device` with `backend` (auto: TensorRT on CUDA when the package has
    plans, else ONNX Runtime, except a model file on CUDA, which runs on PyTorch then; a
    model file's package comes from the cache, see the module docstring).

    Candidates below the score floor (`score_floor`, with `low_floor`: the tracker's low
    score) are never produced: postprocess would drop them anyway. Masks are computed only
    for candidates that may be emitted (at least the floor of `other_thresholds` and
    `score_threshold`): each costs a mask-head pass.
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
        thresholds = list(other_thresholds)
        floor = score_floor(package.info.score_threshold, score_threshold, thresholds, low_floor)
        masks = score_floor(package.info.score_threshold, score_threshold, thresholds)
        return _on_package(package, chosen, device, floor, threads, masks, fallback=backend == "auto")
    model, info = load_model(spec, weights, input_size)
    thresholds = list(other_thresholds)
    floor = score_floor(info.score_threshold, score_threshold, thresholds, low_floor)
    masks = score_floor(info.score_threshold, score_threshold, thresholds)
    if architecture(info.architecture).kind != TWO_STAGE:
        # R-CNN, Fast R-CNN and the one-stage reference are there to be compared, not
        # deployed: no ONNX export (and for the region models selective search would cost
        # far more than any backend could save)
        if backend not in ("auto", "torch"):
            raise ModelError(f"{spec}: a {info.architecture} model runs on PyTorch only (model.engine: auto or "
                             f"torch); it has no ONNX export, so {backend} cannot run it")
        return pytorch_engine(model, info, device, floor, masks)
    if backend == "torch":
        return pytorch_engine(model, info, device, floor, masks)
    package = _exported(spec, model, info, backend)
    if package is None:
        return TorchEngine(model, info, device=device, score_floor=floor, mask_floor=masks)
    chosen = _auto_backend(package, device) if backend == "auto" else backend
    if backend == "auto" and device.startswith("cuda") and chosen != "tensorrt":
        # ONNX Runtime here runs on CPU: on a GPU, PyTorch CUDA is the faster choice until plans exist
        log.info("%s runs on PyTorch %s; for TensorRT, build plans once: detstream build-engine --package %s",
                 spec, device, package.root)
        return TorchEngine(model, info, device=device, score_floor=floor, mask_floor=masks)
    return _on_package(package, chosen, device, floor, threads, masks, fallback=backend == "auto")


def pytorch_engine(
    model: torch.nn.Module, info: ModelInfo, device: str = "cpu", score_floor: float = 0.05, mask_floor: float | None = None
) -> Engine:
    """The PyTorch engine of a loaded model, by how its architecture runs (engines/models.py kinds)."""
    if architecture(info.architecture).proposals:
        return RegionEngine(model, info, device=device, score_floor=score_floor)
    if architecture(info.architecture).kind == ONE_STAGE:
        return OneStageEngine(model, info, device=device, score_floor=score_floor)
    return TorchEngine(model, info, device=device, score_floor=score_floor, mask_floor=mask_floor)


def _on_package(
    package: Package, backend: str, device: str, floor: float, threads: int | None, mask_floor: float,
    fallback: bool = False,
) -> Engine:
    """`backend` on `package`; `fallback` (auto's choice): TensorRT that cannot load runs
    ONNX Runtime instead, after one warning line with the reason."""
    if backend not in PACKAGE_BACKENDS:
        raise ModelError(f"backend {backend!r} is not available here (available: {', '.join(PACKAGE_BACKENDS)})")
    try:
        return PACKAGE_BACKENDS[backend](package, device, floor, threads, mask_floor)
    except ModelError as exc:
        if not (fallback and backend == "tensorrt"):
            raise
        log.warning("%s: TensorRT cannot run it here (%s); running ONNX Runtime on the CPU instead", package.root, exc)
        return PACKAGE_BACKENDS["onnxruntime"](package, device, floor, threads, mask_floor)


def _exported(spec: str, model: torch.nn.Module, info: ModelInfo, backend: str) -> Package | None:
    """The model's cached package; None (after one warning line) if `auto` cannot export it."""
    try:
        return cached_package(spec, model, info)
    except Exception as exc:  # the exporter and the file system raise many types; the reason is one line
        lines = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
        if backend != "auto":
            raise ModelError(f"{spec}: cannot export it to an engine package for {backend}: {reason}") from exc
        log.warning("%s: cannot export it to an ONNX Runtime package (%s); running it on PyTorch", spec, reason)
        return None
