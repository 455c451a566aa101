"""Shared fixtures: small generated videos."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import write_video
from synth.video import write_video as write_synth_video


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Blob videos of known length: a (40 frames, 640x360), b (25 frames, 320x180),
    rotated (20 frames stored 640x360, displayed 360x640)."""
    root = tmp_path_factory.mktemp("videos")
    return {
        "a": write_video(root / "a.mp4", 40, 640, 360),
        "b": write_video(root / "b.mp4", 25, 320, 180),
        "rotated": write_video(root / "rotated.mp4", 20, 640, 360, rotation=90),
    }


@pytest.fixture(scope="session")
def synth_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic camera clip for the embedded models: 10 frames (320x240) with every
    synth class (person, car, bicycle, dog) in view."""
    path = tmp_path_factory.mktemp("synth-clip") / "clip.mp4"
    write_synth_video(path, seed=2, width=320, height=240, fps=25, seconds=0.4, objects=6)
    return path
