"""`video:PATH.mp4` sink: annotated H.264, one file per source.

With one source the file is PATH; with several, `{source}` in PATH is replaced by the
source id (its file stem), or that is appended to PATH's stem: out/annotated-cam1.mp4. Timestamps come from the stream pts,
so strides and dropped frames keep real timing.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path, PurePath

import av
import numpy as np

from pipeline.core.context import RunContext
from pipeline.core.errors import SinkError
from pipeline.core.types import Detections
from stages.sinks.draw import annotate
from stages.sinks.base import Sink

TIME_BASE = Fraction(1, 1000)  # millisecond pts: any frame rate fits


def _file_part(source: str) -> str:
    """A source id made safe for a file name, without the source's own extension."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath(source).stem or source)


def output_paths(template: str, sources: list[str]) -> dict[str, Path]:
    parts = {s: _file_part(s) for s in sources}
    if len(set(parts.values())) < len(parts):  # a.mp4 and a.mkv: keep extensions
        parts = {s: re.sub(r"[^A-Za-z0-9._-]+", "_", s) for s in sources}
    if "{source}" in template:
        return {s: Path(template.replace("{source}", parts[s])) for s in sources}
    path = Path(template)
    if len(sources) == 1:
        return {sources[0]: path}
    return {s: path.with_name(f"{path.stem}-{parts[s]}{path.suffix}") for s in sources}


class VideoWriter:
    """An H.264 MP4 opened on the first frame, when the frame size is known."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container: av.container.OutputContainer | None = None
        self.stream: av.VideoStream | None = None
        self.last_pts = -1

    def write(self, image: np.ndarray, pts_seconds: float) -> None:
        if self.container is None:
            self._open(image.shape[1], image.shape[0])
        assert self.stream is not None and self.container is not None
        pad_h, pad_w = self.stream.height - image.shape[0], self.stream.width - image.shape[1]
        if pad_h or pad_w:  # yuv420p needs even sizes
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        # strictly increasing pts, even if a source repeats or rewinds its clock
        self.last_pts = max(self.last_pts + 1, round(pts_seconds / TIME_BASE))
        frame.pts = self.last_pts
        frame.time_base = TIME_BASE
        self.container.mux(self.stream.encode(frame))

    def _open(self, width: int, height: int) -> None:
        self.container = av.open(str(self.path), mode="w")
        stream = self.container.add_stream("libx264", rate=25)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.options = {"crf": "23", "preset": "veryfast"}
        self.stream = stream

    def close(self) -> None:
        if self.container is not None and self.stream is not None:
            self.container.mux(self.stream.encode(None))  # flush delayed frames
            self.container.close()


class VideoSink(Sink):
    def __init__(self, uri: str, ctx: RunContext, queue_size: int, template: str, sources: list[str]) -> None:
        super().__init__(uri, ctx, queue_size)
        if not template.endswith(".mp4"):
            raise SinkError(f"sink {uri!r}: the video sink writes MP4; the path must end in .mp4")
        self.writers: dict[str, VideoWriter] = {}
        for source, path in output_paths(template, sources).items():
            try:  # fail now, not at the first frame, if the place is not writable
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SinkError(f"sink {uri!r}: cannot create {path.parent}: {exc.strerror}") from exc
            if not os.access(path.parent, os.W_OK):
                raise SinkError(f"sink {uri!r}: cannot write into {path.parent}")
            self.writers[source] = VideoWriter(path)

    def write(self, detections: Detections) -> None:
        frame = detections.frame
        self.writers[frame.source].write(annotate(detections), frame.pts)

    def finish(self) -> None:
        for writer in self.writers.values():
            writer.close()
