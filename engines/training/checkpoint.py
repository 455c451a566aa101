"""Training checkpoints: everything needed to continue exactly where a run stopped.

A checkpoint holds the model's `ModelInfo` and weights like a model file, so every tool
that loads models (`run`, `eval`) also loads checkpoints, plus the optimizer, scheduler,
AMP scaler and RNG states, the step and the config. Writes are atomic
(pipeline.core.files): a run killed while saving keeps the previous checkpoint intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engines.model_file import CHECKPOINT_FORMAT
from pipeline.core.files import write_atomic



def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    record = {"format": CHECKPOINT_FORMAT, **state}
    write_atomic(path, lambda file: torch.save(record, file))


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
