"""Turn a model spec from the config into a ready engine.

A spec is either `arch:NAME` (an untrained torchvision architecture, for plumbing) or
the path of a model file saved by `save_model` (or a training checkpoint): the weights
plus the `ModelInfo` record, which is all the pipeline needs to run it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engines.base import Engine, ModelInfo
from engines.models import build_model, untrained
from engines.package import Package, is_package, read_package
from engines.torch_backend import TorchEngine
from engines.training.checkpoint import CHECKPOINT_FORMAT
from pipeline.errors import ModelError

MODEL_FORMAT = "detstream.model/v1"
EMBEDDED_DIR = Path(__file__).parent / "embedded"


def save_model(path: Path, model: torch.nn.Module, info: ModelInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": MODEL_FORMAT, "info": info.to_dict(), "state_dict": model.state_dict()}, path)


def embedded_models() -> dict[str, Path]:
    """The models shipped inside the package, by name (`embedded:NAME`)."""
    return {p.stem: p for p in sorted(EMBEDDED_DIR.glob("*.pt"))}


def resolve(spec: str) -> Path:
    """The file behind a model spec: a path, or `embedded:NAME`."""
    if spec.startswith("embedded:"):
        name = spec.removeprefix("embedded:")
        shipped = embedded_models()
        if name not in shipped:
            raise ModelError(f"no embedded model {name!r} (shipped: {', '.join(shipped) or 'none'})")
        return shipped[name]
    path = Path(spec)
    if not path.is_file():
        raise ModelError(f"model file not found: {spec} (or use embedded:NAME, arch:NAME)")
    return path


def load_model(spec: str) -> tuple[torch.nn.Module, ModelInfo]:
    """Weights and metadata of `spec`: a model file, a training checkpoint,
    `embedded:NAME` (shipped with detstream) or `arch:NAME` (untrained)."""
    if spec.startswith("arch:"):
        return untrained(spec.removeprefix("arch:"))
    path = resolve(spec)
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{spec}: not a readable model file: {exc}") from exc
    # training checkpoints carry the same info + weights, so they load as models too
    if not isinstance(record, dict) or record.get("format") not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise ModelError(f"{spec}: not a detstream model file or training checkpoint")
    info = ModelInfo.from_dict(record["info"])
    model = build_model(info.architecture, len(info.class_names))
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"{spec}: weights do not match architecture {info.architecture}: {exc}") from exc
    return model, info


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


def _auto_backend(package: Package, device: str) -> str:
    """TensorRT when the package holds plans and we run on CUDA, else ONNX Runtime."""
    return "tensorrt" if device.startswith("cuda") and "tensorrt" in package.meta else "onnxruntime"


def load_engine(
    spec: str,
    device: str = "cpu",
    score_threshold: float | None = None,
    threads: int | None = None,
    backend: str = "auto",
) -> Engine:
    """Load `spec` on `device` with `backend` (auto: for engine packages TensorRT on CUDA
    when the package has plans, else ONNX Runtime; PyTorch for model files).

    Candidates below the score threshold (default: the model's) are never produced:
    postprocess would drop them anyway, and for mask models each costs a mask-head pass.
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available on this machine")
    if threads is not None:
        torch.set_num_threads(threads)  # process-wide: torch has one intra-op pool
    if is_package(Path(spec)):
        package = read_package(Path(spec))
        chosen = _auto_backend(package, device) if backend == "auto" else backend
        if chosen not in PACKAGE_BACKENDS:
            raise ModelError(f"backend {chosen!r} is not available here (available: {', '.join(PACKAGE_BACKENDS)})")
        floor = package.info.score_threshold if score_threshold is None else score_threshold
        return PACKAGE_BACKENDS[chosen](package, device, floor, threads)
    if backend not in ("auto", "torch"):
        raise ModelError(f"backend {backend!r} needs an engine package: detstream export --model {spec} --out PACKAGE")
    model, info = load_model(spec)
    floor = info.score_threshold if score_threshold is None else score_threshold
    return TorchEngine(model, info, device=device, score_floor=floor)
