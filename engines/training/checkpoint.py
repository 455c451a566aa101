"""Training checkpoints: everything needed to continue exactly where a run stopped.

A checkpoint holds the model's `ModelInfo` and weights like a model file, so every tool
that loads models (`run`, `eval`) also loads checkpoints, plus the optimizer, scheduler,
AMP scaler and RNG states, the step and the config. Writes are atomic (temp + rename):
a run killed while saving keeps the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from engines.model_file import CHECKPOINT_FORMAT



def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    from pipeline.core.errors import ModelError

    if not path.is_file():
        raise ModelError(f"no checkpoint to resume from: {path} does not exist")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ModelError(f"{path}: not a readable checkpoint: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not a detstream training checkpoint")
    return record
