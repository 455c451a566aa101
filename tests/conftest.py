"""Shared fixtures: small generated videos and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import write_video

# the console script the package installs, next to this interpreter
DETSTREAM = [str(Path(sys.executable).parent / "detstream")]


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


def run_cli(*args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`detstream ARGS` in a subprocess, as a user runs it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*DETSTREAM, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )
