"""Helpers of the clip tests: videos of "people" (red rectangles the blob engine finds,
named `person`) walking across a counting line at known times, and readers of clips.

A person is 24 x 60 px; its anchor (bottom centre) crosses the line DOOR (x = 160,
drawn upwards: `in` is left to right) when its left edge passes x = 148, and the crossing
counts once the anchor is past the line's hysteresis band (stages/tracking/scene.py's
MARGIN_OF_HEIGHT of the box height, 12 px), i.e. from the first frame whose left edge is
at or past x = 160, and has stayed there for the line's hold (`hold_s`, 0.2 s: 5 frames).
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.core.scene_config import LineConfig
from stages.tracking.scene import MARGIN_OF_HEIGHT
from support import BACKGROUND, BlobEngine

FPS = 25
WIDTH, HEIGHT = 320, 240
PERSON_W, PERSON_H = 24, 60
DOOR = {"name": "door", "points": [[160, 240], [160, 0]]}
PAST_AT_X = 148 + MARGIN_OF_HEIGHT * PERSON_H  # left edge at which the anchor is past the band (module docstring)
HOLD_FRAMES = round(LineConfig.model_fields["hold_s"].default * FPS)  # frames from there to the count


@dataclasses.dataclass(frozen=True)
class Walker:
    """A person entering at `start_x` at frame `first` and walking `speed` px per frame."""

    first: int
    start_x: float = 10.0
    speed: float = 3.0
    top: int = 120

    def x(self, index: int) -> int | None:
        if index < self.first:
            return None
        x = round(self.start_x + self.speed * (index - self.first))
        return x if x + PERSON_W <= WIDTH else None

    def crossing_frame(self) -> int:
        """The frame whose line_cross event the pipeline emits."""
        return self.first + math.ceil((PAST_AT_X - self.start_x) / self.speed) + HOLD_FRAMES


def person_engine() -> BlobEngine:
    """The blob engine, its red class named `person`."""
    engine = BlobEngine()
    engine.info = dataclasses.replace(engine.info, class_names=("__background__", "person", "car", "dog"))
    return engine


def write_walkers(path: Path, frames: int, walkers: list[Walker], gop: int = 10, bframes: int = 0) -> Path:
    """H.264 MP4 of `walkers` on a plain background, a key frame every `gop` frames (and only there)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast", "g": str(gop), "keyint_min": str(gop),
                          "sc_threshold": "0", "bf": str(bframes)}
        for index in range(frames):
            image = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
            for walker in walkers:
                x = walker.x(index)
                if x is not None:
                    image[walker.top:walker.top + PERSON_H, x:x + PERSON_W] = (230, 20, 20)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def packets(path: Path) -> list[av.Packet]:
    """The video packets of a file, in decode order (empty flush packets left out)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p for p in container.demux(stream) if p.size]


def decoded(path: Path) -> list[float]:
    """Presentation times (s) of every frame of `path`; fails on a decode error or a damaged frame."""
    times = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            assert not frame.is_corrupt, f"{path.name}: corrupt frame at {frame.pts}"
            times.append(float(frame.pts * stream.time_base))
    return times
