"""Small generated clips and datasets shared by the synth tests (written once per session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support import DATASET_ARGS, VIDEO_ARGS
from synth.dataset import write_dataset
from synth.video import write_video


@pytest.fixture(scope="session")
def synth_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return path, write_video(path, **VIDEO_ARGS)


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("dataset")
    return out, write_dataset(out, **DATASET_ARGS)
