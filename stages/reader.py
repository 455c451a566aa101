"""The one frame reader: a video container in, Frames out.

    open (files) -> demux -> decode -> corrupt? count, skip -> filter (stride, max_fps)
                 -> rotate -> Frame -> output(frame)

Used by the file decoder (stages/decode.py), the live decoder (stages/live.py, one `read`
per connection; it opens with its own timeouts) and the batch decode slots
(pipeline/batch/graph.py, one reader per file). Rules:

- The reader is not a thread: it runs in the thread of the stage that owns it and records
  into that stage's metrics and frame count.
- Frames go to `output`, a callback that returns the frame it evicted (the oldest, from a
  drop-oldest queue), the frame itself once the run stopped taking this source's frames,
  or None. Each evicted frame is counted as a drop, by cause.
- A damaged packet or frame costs that frame, never the source: it is counted
  (`corrupt_packets`, `corrupt_frames`, the source's decode errors, the stage's errors)
  and skipped. A demux failure ends the read with a SourceError.
- A frame over `max_pixels` (width x height), declared by the stream header or decoded
  after a size change, ends the read with a SourceError before its pixels are converted
  (a decompression bomb fails that source, not the process).
- `seq` numbers the frames put out, across reads (a live source's connections).
- A looping file (`loop: true`) is read again from its start at each end of file, in
  the same session: its pts go on from where the last pass ended (+ one frame), so pts
  stay increasing within session 0 as docs/message-schema.md requires of files.
- Frames without a pts get one from the last frame that had one (or the read's start)
  plus the frames decoded since, at the stream's average rate.
- `packets` (optional, a PacketSink: the clips' buffer, stages/clips/ring.py) sees each
  read's stream when it opens, every demuxed packet before it is decoded (decoded or not,
  kept by the filter or not), and the read's end. It must not raise nor block: it runs in
  this thread, between a packet's arrival and its decoding.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import av
import numpy as np

from pipeline.core.config import SourceConfig
from pipeline.core.errors import SourceError
from pipeline.core.health import QUEUE_FULL, SHUTDOWN, SourceHealth
from pipeline.core.types import Frame
from pipeline.core.secrets import redact

if TYPE_CHECKING:
    from stages.base import Stage

log = logging.getLogger("detstream")

FrameOutput = Callable[[Frame], "Frame | None"]
"""Where a reader puts its frames; returns the frame evicted to make room (or None)."""


class PacketSink(Protocol):
    """Takes the encoded packets of one source's reads (see the module's rules)."""

    def opened(self, stream: av.video.stream.VideoStream, session: int) -> None:
        """A read starts: its video stream (codec parameters, time base) and the session."""

    def put(self, packet: av.Packet) -> None:
        """A packet of the stream, in demux (decode) order."""

    def closed(self) -> None:
        """The read is over (end of file, connection lost, or stopped)."""


def open_source(uri: str, name: str) -> av.container.InputContainer:
    """Open a file (or a non-live URL) for reading, converting every failure into one clear SourceError."""
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


class FrameReader:
    """Reads the frames of one source for the stage `stage`, into `output`."""

    def __init__(
        self,
        stage: Stage,
        config: SourceConfig,
        source: str,
        output: FrameOutput,
        max_frames: int | None = None,
        first_seq: int = 0,
        packets: PacketSink | None = None,
    ) -> None:
        """`first_seq`: the seq of the first frame (a source restarted within a run goes on
        from where it stopped, so its frames' event ids never repeat); `packets`: where the
        encoded packets go too (clips)."""
        self.stage = stage
        self.ctx = stage.ctx
        self.metrics = stage.metrics
        self.config = config
        self.source = source
        self.output = output
        self.max_frames = max_frames
        self.packets = packets
        self.frames = first_seq  # the next seq
        self.first_seq = first_seq
        self.decoded = 0  # frames out of the decoder, kept or not
        self.corrupt_packets = 0  # packets the decoder rejected
        self.corrupt_frames = 0  # frames the decoder flagged as damaged
        self.session = 0  # connection number, for live sources
        self.pts_offset = 0.0  # a looping file's passes so far, in stream seconds
        self.end_pts = 0.0  # the current read's last pts + one frame: where a next pass starts
        self.filter: FrameFilter | None = None  # the current read's
        self.health = self.ctx.health.get(source) or SourceHealth(source, live=False)

    def set_max_fps(self, max_fps: float | None) -> None:
        """Change `max_fps` while reading (the control API); takes effect at the next frame."""
        self.config = self.config.model_copy(update={"max_fps": max_fps})
        if self.filter is not None:
            self.filter.min_gap = 1.0 / max_fps if max_fps else 0.0

    def read_file(self) -> None:
        """Read a whole file. An unreadable or truncated file is reported, not raised:
        it lands in `ctx.source_errors` and the other sources carry on."""
        try:
            self._read_file()
            self.health.finished()
        except SourceError as exc:
            self.metrics.error()
            self.ctx.source_failed(exc.source, exc.reason)
        if self.corrupt_packets or self.corrupt_frames:
            log.warning(
                "source %r: skipped %d corrupt packets and %d corrupt frames",
                self.source, self.corrupt_packets, self.corrupt_frames,
            )

    def _read_file(self) -> None:
        while True:
            container = open_source(self.config.uri, self.source)
            self.health.streaming()
            decoded, corrupt = self.decoded, self.corrupt_packets  # this pass's counts start here
            try:
                expected = container.streams.video[0].frames  # 0 when the container does not say
                finished = self.read(container)
            finally:
                container.close()
            # a rejected packet costs (at least) its frame; fewer than that means data is missing
            passed = self.decoded - decoded + self.corrupt_packets - corrupt
            if finished and expected and passed < expected:
                raise SourceError(
                    self.source, f"truncated: decoded {self.decoded - decoded} of {expected} frames the file declares"
                )
            if not (finished and self.config.loop) or self.decoded == decoded:
                return  # done, stopped, or a pass without a frame (looping it would spin)
            self.pts_offset += self.end_pts

    def read(
        self,
        container: av.container.InputContainer,
        live: bool = False,
        on_packet: Callable[[float, float], None] | None = None,
    ) -> bool:
        """Demux and decode until the end of the stream (True), or until the run stops
        reading or `max_frames` frames are out (False). Raises SourceError if demuxing fails.

        `live`: slice threads only (frame threads hold back a frame per thread, which is
        latency) and a frame's latency starts when its packet arrived (waiting for the
        camera is not ours). `on_packet(asked, arrived)` sees the monotonic times of each
        packet read.
        """
        if self.packets is None:
            return self._read(container, live, on_packet)
        self.packets.opened(container.streams.video[0], self.session)
        try:
            return self._read(container, live, on_packet)
        finally:
            self.packets.closed()

    def _read(
        self,
        container: av.container.InputContainer,
        live: bool,
        on_packet: Callable[[float, float], None] | None,
    ) -> bool:
        stream = container.streams.video[0]
        self._check_size(stream.codec_context.width, stream.codec_context.height, "the stream header declares")
        stream.thread_type = "SLICE" if live else "AUTO"  # decode releases the GIL
        self.filter = keep = FrameFilter(self.config.stride, self.config.max_fps)  # pts restart per read
        time_base = stream.time_base
        rate = float(stream.average_rate or 25)  # only for frames without a pts
        anchor_pts, anchor, index = 0.0, 0, -1  # the last frame with a pts, and its index
        first = self.frames
        packets = container.demux(stream)
        while not self.stage.stopping():
            asked = time.monotonic()
            try:
                packet = next(packets)
            except StopIteration:
                return True
            except av.FFmpegError as exc:
                reason = redact(exc.strerror or str(exc))
                raise SourceError(self.source, f"read error after {self.frames - first} frames: {reason}") from exc
            arrived = time.monotonic()
            if on_packet is not None:
                on_packet(asked, arrived)
            if self.packets is not None:
                self.packets.put(packet)
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                self.corrupt_packets += 1  # a damaged packet costs a frame, not the source
                self.decode_error()
                continue
            for frame in decoded:
                # a stream may change size mid-way: the RGB copy must not exceed the limit either
                self._check_size(frame.width, frame.height, f"frame {self.decoded} is")
                self.decoded += 1
                index += 1
                self.metrics.count_in()
                if frame.pts is not None:
                    anchor_pts, anchor = float(frame.pts * time_base), index
                pts = anchor_pts + (index - anchor) / rate
                self.end_pts = pts + 1 / rate
                if frame.is_corrupt:
                    self.corrupt_frames += 1
                    self.decode_error()
                    continue
                if not keep.keep(pts):
                    continue
                self._emit(frame, pts, arrived if live else asked)
                if self.max_frames is not None and self.frames - self.first_seq >= self.max_frames:
                    return False
        return False

    def _check_size(self, width: int, height: int, what: str) -> None:
        """Refuse frames over `max_pixels` before anything of their size is allocated."""
        if width * height > self.config.max_pixels:
            raise SourceError(
                self.source, f"{what} {width}x{height} pixels, over the limit of {self.config.max_pixels} "
                "(sources[].max_pixels)"
            )

    def _emit(self, frame: av.VideoFrame, pts: float, started: float) -> None:
        image = rotate(frame.to_ndarray(format="rgb24"), frame.rotation)
        item = Frame(self.source, self.frames, self.pts_offset + pts, time.time(), image, session=self.session)
        item.stamps["start"] = started
        item.stamp("decode")
        self.metrics.served((item,), started)
        self.health.count_received()
        self.frames += 1
        evicted = self.output(item)
        if evicted is not None:  # itself: the run stopped taking this source's frames
            self._dropped(SHUTDOWN if evicted is item else QUEUE_FULL)

    def decode_error(self) -> None:
        """A corrupt packet or frame was skipped."""
        self.health.count_decode_errors()
        self.metrics.error()

    def _dropped(self, cause: str) -> None:
        self.health.count_dropped(cause)  # per source
        self.metrics.drop(cause)  # per stage
