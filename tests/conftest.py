"""Shared fixtures: small generated videos, and a fresh package cache per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.threads import sleep_idle_threads

sleep_idle_threads()  # before support imports torch: the suite's threads idle as the CLI's do (pipeline/core/threads.py)

from support import write_video  # noqa: E402
from synth.video import write_video as write_synth_video  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def package_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`engine: auto` exports model files into $DETSTREAM_CACHE: point it at a folder of
    this session, so the suite never writes into ~/.cache nor depends on a warm cache.
    Set in os.environ, so `detstream` subprocesses inherit it."""
    folder = tmp_path_factory.mktemp("detstream-cache")
    before = os.environ.get("DETSTREAM_CACHE")
    os.environ["DETSTREAM_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("DETSTREAM_CACHE", None)
    else:
        os.environ["DETSTREAM_CACHE"] = before


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
