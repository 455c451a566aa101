"""Decode stage: one thread per source, PyAV demux + decode into RGB frames.

Files are lossless: every kept frame is put on the source's queue, blocking while it is
full. A source that cannot be read is reported once and closed; the others continue.
Live sources (stages/live.py) reuse this stage's frame handling and add reconnects.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import av
import numpy as np

from pipeline.core.config import SourceConfig
from pipeline.core.context import RunContext
from pipeline.core.errors import SourceError
from pipeline.core.health import QUEUE_FULL, SHUTDOWN, SourceHealth
from pipeline.core.queues import SourceMux
from pipeline.core.types import Frame
from stages.base import Stage

log = logging.getLogger("detstream")


def open_source(uri: str, name: str) -> av.container.InputContainer:
    """Open `uri` for reading, converting every failure into one clear SourceError."""
    if "://" not in uri:
        path = Path(uri)
        if not path.exists():
            raise SourceError(name, f"file not found: {uri}")
        if not path.is_file():
            raise SourceError(name, f"not a regular file: {uri}")
        if path.stat().st_size == 0:
            raise SourceError(name, f"file is empty (0 bytes): {uri}")
    try:
        container = av.open(uri, mode="r")
    except av.FFmpegError as exc:
        reason = exc.strerror or str(exc)
        if _looks_like_mp4(uri):
            reason = f"MP4 without a readable index (moov): truncated or still being written ({reason})"
        raise SourceError(name, f"not a readable video: {reason}") from exc
    except OSError as exc:
        raise SourceError(name, f"cannot open: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(name, "no video stream in this file")
    return container


def _looks_like_mp4(uri: str) -> bool:
    """True for a local file that starts with an ISO-BMFF 'ftyp' box."""
    try:
        with open(uri, "rb") as file:
            return file.read(8)[4:8] == b"ftyp"
    except OSError:
        return False


def rotate(image: np.ndarray, degrees: int) -> np.ndarray:
    """Apply display rotation: `degrees` counter-clockwise, as FFmpeg reports it."""
    quarter_turns = round(degrees / 90) % 4
    if quarter_turns == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, quarter_turns))


class FrameFilter:
    """Keeps every `stride`-th frame and at most `max_fps` frames per stream second."""

    def __init__(self, stride: int, max_fps: float | None) -> None:
        self.stride = stride
        self.min_gap = 1.0 / max_fps if max_fps else 0.0
        self.index = -1
        self.next_pts: float | None = None

    def keep(self, pts: float) -> bool:
        self.index += 1
        if self.index % self.stride:
            return False
        if self.min_gap:
            # a millisecond of slack absorbs rounding in the stream's time base
            if self.next_pts is not None and pts < self.next_pts - 1e-3:
                return False
            self.next_pts = pts + self.min_gap
        return True


class Decoder(Stage):
    def __init__(
        self,
        config: SourceConfig,
        source: str,
        mux: SourceMux,
        ctx: RunContext,
        max_frames: int | None = None,
    ) -> None:
        super().__init__(f"decode[{source}]", ctx)
        self.config = config
        self.source = source
        self.mux = mux
        self.max_frames = max_frames
        self.frames = 0  # frames put downstream (the next seq)
        self.decoded = 0  # frames out of the decoder, kept or not
        self.corrupt_packets = 0  # packets the decoder rejected
        self.corrupt_frames = 0  # frames the decoder flagged as damaged
        self.session = 0  # connection number, for live sources
        self.health = ctx.health.get(source) or SourceHealth(source, live=False)

    def work(self) -> None:
        try:
            self._decode()
            self.health.finished()
        except SourceError as exc:
            self.metrics.error()
            self.ctx.source_failed(exc.source, exc.reason)
        if self.corrupt_packets or self.corrupt_frames:
            log.warning(
                "source %r: skipped %d corrupt packets and %d corrupt frames",
                self.source, self.corrupt_packets, self.corrupt_frames,
            )

    def finish(self) -> None:
        self.mux.close(self.source)

    def _decode(self) -> None:
        container = open_source(self.config.uri, self.source)
        self.health.streaming()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads; decode releases the GIL
            expected = stream.frames  # 0 when the container does not say
            finished = self._read(container, stream)
        finally:
            container.close()
        # a rejected packet costs (at least) its frame; fewer than that means data is missing
        if finished and expected and self.decoded + self.corrupt_packets < expected:
            raise SourceError(
                self.source, f"truncated: decoded {self.decoded} of {expected} frames the file declares"
            )

    def _read(self, container: av.container.InputContainer, stream: av.VideoStream) -> bool:
        """Demux and decode until EOF (True) or until asked to stop (False)."""
        keep = FrameFilter(self.config.stride, self.config.max_fps)
        time_base = stream.time_base
        rate = float(stream.average_rate or 25)  # only for frames without a pts
        packets = container.demux(stream)
        while True:
            if self.ctx.stop_reading.is_set():
                return False
            started = time.monotonic()
            try:
                packet = next(packets)
            except StopIteration:
                return True
            except av.FFmpegError as exc:
                raise SourceError(self.source, f"read error after {self.frames} frames: {exc.strerror or exc}") from exc
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                self.corrupt_packets += 1  # a damaged packet costs a frame, not the source
                self.decode_error()
                continue
            for frame in decoded:
                self.decoded += 1
                self.metrics.count_in()
                if frame.is_corrupt:
                    self.corrupt_frames += 1
                    self.decode_error()
                    continue
                pts = float(frame.pts * time_base) if frame.pts is not None else (self.decoded - 1) / rate
                if not keep.keep(pts):
                    continue
                self._emit(frame, pts, started)
                if self.max_frames is not None and self.frames >= self.max_frames:
                    return False

    def _emit(self, frame: av.VideoFrame, pts: float, started: float) -> None:
        image = rotate(frame.to_ndarray(format="rgb24"), frame.rotation)
        item = Frame(self.source, self.frames, pts, time.time(), image, session=self.session)
        item.stamps["start"] = started
        item.stamp("decode")
        self.metrics.served((item,), started)
        self.health.count_received()
        self.frames += 1
        evicted = self.mux.put(self.source, item)
        if evicted is not None:  # itself: the run stopped taking this source's frames
            self._dropped(SHUTDOWN if evicted is item else QUEUE_FULL)

    def decode_error(self) -> None:
        """A corrupt packet or frame was skipped."""
        self.health.count_decode_errors()
        self.metrics.error()

    def _dropped(self, cause: str) -> None:
        self.health.count_dropped(cause)  # per source
        self.metrics.drop(cause)  # per stage
