"""The annotated-MP4 writer shared by the `video:` sink and the per-file outputs of
`detstream batch`: H.264, opened on the first frame, timed by the stream's pts."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

TIME_BASE = Fraction(1, 1000)  # millisecond pts: any frame rate fits


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
