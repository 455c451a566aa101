"""Synthetic camera clips: a frame iterator and an H.264 MP4 writer with COCO ground truth."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from synth.coco import CocoWriter, write_json
from synth.scene import GENERATOR_VERSION, MAX_OBJECTS, Instance, Scene


def frame_count(seconds: float, fps: int) -> int:
    return int(round(seconds * fps))


def check_video_args(width: int, height: int, fps: int, seconds: float, objects: int) -> None:
    """Raise ValueError with a readable message for arguments no clip can have."""
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"video size must be even and at least 32x32 (yuv420p), got {width}x{height}")
    if fps <= 0:
        raise ValueError(f"fps must be a positive integer, got {fps}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number, got {seconds}")
    if frame_count(seconds, fps) < 1:
        raise ValueError(f"{seconds} s at {fps} fps is less than one frame")
    if not 0 <= objects <= MAX_OBJECTS // 2:  # a cyclist is two objects
        raise ValueError(f"objects must be in 0..{MAX_OBJECTS // 2}, got {objects}")


def iter_frames(*, seed: int, width: int = 1280, height: int = 720, fps: int = 25, seconds: float = 10.0,
                objects: int = 6) -> Iterator[tuple[int, np.ndarray, list[Instance]]]:
    """Yield (frame index, RGB uint8 H x W x 3 image, visible instances) for each frame.

    Frame i shows time i / fps. Same arguments give bit-identical frames.
    """
    check_video_args(width, height, fps, seconds, objects)
    # Exposure is at most half the frame interval, like a camera's shutter.
    scene = Scene(np.random.default_rng(seed), width, height, objects=objects, duration=seconds,
                  exposure=min(0.01, 0.5 / fps))
    for index in range(frame_count(seconds, fps)):
        image, instances = scene.render(index / fps)
        yield index, image, instances


def write_video(path: str | Path, *, seed: int, width: int = 1280, height: int = 720, fps: int = 25,
                seconds: float = 10.0, objects: int = 6, crf: int = 18, preset: str = "veryfast",
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write an H.264 MP4 and its COCO JSON (same path, .json suffix); return the COCO dict.

    Images are named f"{video file name}#{frame index}", ids are frame index + 1,
    and `pts` is in seconds. `progress(done, total)` is called after each frame.
    CRF 18 keeps edges within about a pixel of the ground truth; the stream has
    no B-frames, like most IP cameras, so decode order is display order.
    """
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"video path must end in .mp4, got {path}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf}")
    check_video_args(width, height, fps, seconds, objects)
    total = frame_count(seconds, fps)
    writer = CocoWriter({
        "description": "detstream synthetic camera clip",
        "generator": "synth.video",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "args": {"width": width, "height": height, "fps": fps, "seconds": seconds, "objects": objects,
                 "crf": crf, "preset": preset},
    })
    time_base = Fraction(1, fps)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {"crf": str(crf), "preset": preset, "bf": "0", "g": str(2 * fps)}
        for index, image, instances in iter_frames(seed=seed, width=width, height=height, fps=fps,
                                                   seconds=seconds, objects=objects):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = time_base
            container.mux(stream.encode(frame))
            writer.add({"id": index + 1, "file_name": f"{path.name}#{index}", "width": width, "height": height,
                        "frame_index": index, "pts": index / fps}, instances)
            if progress is not None:
                progress(index + 1, total)
        container.mux(stream.encode(None))
    coco = writer.to_dict()
    write_json(path.with_suffix(".json"), coco)
    return coco
