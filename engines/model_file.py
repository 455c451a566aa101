"""Model files: the one on-disk format of trained weights, and the models shipped inside.

A model spec is either `arch:NAME` (an untrained torchvision architecture, for plumbing),
`torchvision:NAME` (torchvision's COCO weights, engines/torchvision_models.py),
`embedded:NAME` (shipped in engines/embedded/) or the path of a model file saved by
`save_model` (or a training checkpoint): the weights plus the `ModelInfo` record, which is
all the pipeline needs to run it. Saving is atomic: a killed save leaves the old file. This module does not import the training package:
training imports it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from engines.base import ModelInfo
from engines.models import build_model, untrained
from engines.package import METADATA
from engines.torchvision_models import is_torchvision_spec, load_torchvision
from pipeline.core.errors import ModelError
from pipeline.core.files import write_atomic

CHECKPOINT_FORMAT = "detstream.checkpoint/v1"
MODEL_FORMAT = "detstream.model/v1"
EMBEDDED_DIR = Path(__file__).parent / "embedded"
NOT_A_MODEL = "not a detstream model file or engine package"


def save_model(path: Path, model: torch.nn.Module, info: ModelInfo) -> None:
    record = {"format": MODEL_FORMAT, "info": info.to_dict(), "state_dict": model.state_dict()}
    write_atomic(path, lambda file: torch.save(record, file))


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
    if path.is_dir():
        raise ModelError(f"{spec}: a folder but not an engine package (it has no {METADATA}; "
                         "see detstream export)")
    if not path.is_file():
        raise ModelError(f"model file not found: {spec} (or use embedded:NAME, torchvision:NAME, arch:NAME)")
    return path


def load_model(
    spec: str, weights: str | Path | None = None, input_size: tuple[int, int] | None = None
) -> tuple[torch.nn.Module, ModelInfo]:
    """Weights and metadata of `spec`: a model file, a training checkpoint,
    `embedded:NAME` (shipped with detstream), `torchvision:NAME` (COCO weights from the
    torch hub cache, or the state dict `weights`) or `arch:NAME` (untrained).

    `input_size` (height, width) replaces the model's own: R-CNNs take any input size.
    """
    if is_torchvision_spec(spec):
        return load_torchvision(spec, weights, input_size)
    if weights is not None:
        raise ModelError(f"--weights / model.weights is for torchvision:NAME models: {spec} brings its own weights")
    model, info = _load_detstream(spec)
    if input_size is not None:
        info = dataclasses.replace(info, input_size=tuple(input_size))
    return model, info


def read_info(spec: str) -> ModelInfo:
    """The metadata of a model file, checkpoint or `embedded:NAME`, without building the model."""
    return ModelInfo.from_dict(_read_record(spec)["info"])


def _read_record(spec: str) -> dict:
    path = resolve(spec)
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; its text advises unsafe loads
        raise ModelError(f"{spec}: {NOT_A_MODEL}") from exc
    # training checkpoints carry the same info + weights, so they load as models too
    if not isinstance(record, dict) or record.get("format") not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise ModelError(f"{spec}: {NOT_A_MODEL}")
    return record


def _load_detstream(spec: str) -> tuple[torch.nn.Module, ModelInfo]:
    if spec.startswith("arch:"):
        return untrained(spec.removeprefix("arch:"))
    record = _read_record(spec)
    info = ModelInfo.from_dict(record["info"])
    model = build_model(info.architecture, len(info.class_names))
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"{spec}: weights do not match architecture {info.architecture}: {exc}") from exc
    return model, info
