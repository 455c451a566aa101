"""The model flags of every command that runs the pipeline (`run`, `profile`, `batch`),
and the settings keys they set: one definition, so the commands cannot drift apart.
Light (argparse only): the parsers are built without importing torch."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_arguments(p: argparse.ArgumentParser, max_batch_default: str = "1") -> None:
    p.add_argument("--model", metavar="SPEC", help="model file, engine package, embedded:NAME, torchvision:NAME or arch:NAME")
    p.add_argument("--weights", metavar="PATH.pth", help="torchvision:NAME only: a local state dict instead of the torch hub cache")
    p.add_argument("--input-size", metavar="HxW", help="padded model input, multiples of 32, e.g. 384x640 (default: the model's)")
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    p.add_argument("--engine", help="auto, torch, onnxruntime or tensorrt (auto: TensorRT on CUDA when the package has plans, "
                                    "else ONNX Runtime; a model file is exported once into the cache; torch: PyTorch)")
    p.add_argument("--score-threshold", type=float, metavar="S", help="default: the model's")
    p.add_argument("--classes", metavar="LIST", help="keep only these classes, e.g. person,car (default: all)")
    p.add_argument("--max-batch", type=int, metavar="N", help=f"frames per engine call (default: {max_batch_default})")


# settings key -> the flag that sets it: errors in a value a flag gave name the flag
MODEL_FLAGS = {
    "model.path": "--model",
    "model.weights": "--weights",
    "model.input_size": "--input-size",
    "model.device": "--device",
    "model.engine": "--engine",
    "model.score_threshold": "--score-threshold",
    "model.classes": "--classes",
    "batch.max_batch": "--max-batch",
}


def flag_values(args: argparse.Namespace, flags: dict[str, str]) -> dict[str, Any]:
    """The flags of `flags` (settings key -> flag) as dotted settings keys (None: not given)."""
    return {key: getattr(args, flag.removeprefix("--").replace("-", "_")) for key, flag in flags.items()}


def model_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The model flags as dotted settings keys (None: not given, the file's value stays)."""
    return flag_values(args, MODEL_FLAGS)
