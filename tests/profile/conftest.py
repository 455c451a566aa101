"""A short synthetic street clip for the profile tests (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth.video import write_video

CLIP_FRAMES = 30  # 1.2 s at 25 fps


@pytest.fixture(scope="session")
def street_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """(path, frame count)"""
    path = tmp_path_factory.mktemp("profile") / "street.mp4"
    write_video(path, seed=5, width=320, height=240, fps=25, seconds=CLIP_FRAMES / 25, objects=4)
    return path, CLIP_FRAMES
