"""The buffer of one source's *encoded* video: packets as demuxed, never decoded again.

The frame reader (stages/reader.py) hands it every packet of its reads (PacketSink), in
the decoder's thread; the clip writer (stages/clips/writer.py) reads packets out of it in
its own thread. Rules:

- Each read (a file, or one connection of a live source) is a `Segment` with its stream's
  codec parameters (`StreamTemplate`, what an MP4 of its packets needs) and the reader's
  `session`: packet times restart with a new read, so a clip never mixes two segments.
- A segment starts at a key frame: packets before its first key frame are dropped (no
  clip could start there), as are empty packets (demuxers' end-of-stream markers).
- Bounds, per source: the newest segment keeps at least `max_s` seconds of stream time
  when it has them, from a key frame: its oldest GOP goes once the next GOP alone starts
  `max_s` or more before the newest packet. Older segments go once the newest holds
  `max_s`. And all segments together hold at most `max_bytes`: the oldest GOP goes
  first, even when that leaves less than `max_s` (a GOP larger than `max_bytes` empties
  the segment until its next key frame; counted in `overflows`). A segment dropped while a
  clip is still written from it lives on in that clip until it is closed.
- Times are seconds on the stream clock: `t` the decode time (dts, else pts), `pts_s`
  the presentation time (pts, else dts). A packet with neither gets the previous one's.
  The frames the pipeline sees carry the same clock (the reader's pts), so an event's
  `pts` finds its packets here.
- Only the reader's thread puts packets (and numbers them); readers of the buffer take
  its lock.
- Packets are copied out of PyAV's buffers (`bytes`): a stored packet holds no reference
  to a container, which the reader closes at the end of its read.
- Never raises into the reader: a stream that cannot go into an MP4 (a codec the muxer
  does not take) is logged once per segment and buffers nothing.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import av

log = logging.getLogger("detstream")


class StreamTemplate:
    """The codec parameters of an input stream (codec, size, extradata, time base), kept
    apart from its container, to add the same stream to clips written after the reader
    closed it. PyAV copies parameters only from a stream (`add_stream_from_template`), so
    the copy lives in a stream of an MP4 container in memory that is never written."""

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        self._holder = av.open(io.BytesIO(), mode="w", format="mp4")
        self.stream = self._holder.add_stream_from_template(stream)
        self.time_base: Fraction = stream.time_base or Fraction(1, 90000)
        self.codec = stream.codec_context.name

    def add_to(self, output: av.container.OutputContainer) -> av.video.stream.VideoStream:
        """A stream of `output` with these parameters (stream copy: no encoder is opened)."""
        return output.add_stream_from_template(self.stream)


@dataclass(frozen=True, slots=True)
class StoredPacket:
    index: int  # increasing within its ring, without gaps: a writer's cursor
    data: bytes
    pts: int  # in the segment's time base
    dts: int
    duration: int
    key: bool
    t: float  # decode time, stream seconds
    pts_s: float  # presentation time, stream seconds


@dataclass(eq=False)
class Segment:
    """The packets of one read, from a key frame on."""

    session: int
    template: StreamTemplate | None  # None: this stream cannot be clipped
    packets: deque[StoredPacket] = field(default_factory=deque)
    keys: deque[int] = field(default_factory=deque)  # indexes of the key packets held
    bytes: int = 0
    ended: bool = False
    ended_at: float | None = None  # monotonic time of the read's end

    @property
    def time_base(self) -> Fraction:
        assert self.template is not None
        return self.template.time_base

    def drop_gop(self) -> int:
        """Drop the oldest GOP (up to the next key frame, or everything); the bytes freed."""
        freed = 0
        self.keys.popleft()
        while self.packets and (not self.keys or self.packets[0].index < self.keys[0]):
            freed += len(self.packets.popleft().data)
        self.bytes -= freed
        return freed


class PacketRing:
    """One source's buffer of encoded packets (a PacketSink); thread-safe."""

    def __init__(self, source: str, max_s: float, max_bytes: int) -> None:
        self.source = source
        self.max_s = max_s
        self.max_bytes = max_bytes
        self.segments: deque[Segment] = deque()
        self.bytes = 0
        self.overflows = 0  # GOPs dropped whole because they alone exceeded max_bytes
        self._next = 0
        self._last: tuple[int, int] = (0, 0)  # the previous packet's pts and dts
        self._lock = threading.Lock()

    # --- the reader's side (PacketSink) ----------------------------------------------

    def opened(self, stream: av.video.stream.VideoStream, session: int) -> None:
        try:
            template: StreamTemplate | None = StreamTemplate(stream)
        except (av.FFmpegError, ValueError) as exc:  # e.g. a codec MP4 does not take
            log.warning("source %r: its %s stream cannot be clipped: %s", self.source,
                        stream.codec_context.name, exc)
            template = None
        with self._lock:
            if self.segments:
                self._end(self.segments[-1])
            self.segments.append(Segment(session, template))
            self._last = (0, 0)

    def put(self, packet: av.Packet) -> None:
        segment = self.segments[-1] if self.segments else None
        if segment is None or segment.template is None or packet.size == 0:
            return
        if not segment.packets and not packet.is_keyframe:
            # a clip can only start at a key frame; the index still counts, so a writer
            # whose next packet was among those dropped sees the gap
            self._next += 1
            return
        pts = packet.pts if packet.pts is not None else packet.dts
        dts = packet.dts if packet.dts is not None else packet.pts
        if pts is None or dts is None:
            pts, dts = self._last
        time_base = segment.time_base
        stored = StoredPacket(self._next, bytes(packet), pts, dts, packet.duration or 0, packet.is_keyframe,
                              float(dts * time_base), float(pts * time_base))
        with self._lock:
            if not self.segments or self.segments[-1] is not segment:
                return  # cleared meanwhile (the source ended)
            self._next += 1
            self._last = (pts, dts)
            segment.packets.append(stored)
            if stored.key:
                segment.keys.append(stored.index)
            segment.bytes += len(stored.data)
            self.bytes += len(stored.data)
            self._evict(stored.t)

    def closed(self) -> None:
        with self._lock:
            if self.segments:
                self._end(self.segments[-1])

    # --- the writer's side ------------------------------------------------------------

    def segment(self, session: int) -> Segment | None:
        """The latest segment of `session` (a paused and resumed file reads it again)."""
        with self._lock:
            return next((s for s in reversed(self.segments) if s.session == session), None)

    def start(self, segment: Segment, t: float) -> StoredPacket | None:
        """The last key frame whose presentation time is at or before `t`, else the oldest
        key frame held; None while the segment holds nothing."""
        with self._lock:
            if not segment.keys:
                return None
            first = segment.packets[0].index
            best = segment.packets[segment.keys[0] - first]
            for index in segment.keys:
                packet = segment.packets[index - first]
                if packet.pts_s > t:
                    break
                best = packet
            return best

    def after(self, segment: Segment, index: int, until_t: float) -> tuple[list[StoredPacket], bool, bool]:
        """The packets of `segment` after `index` whose decode time is at most `until_t`;
        whether the packet right after `index` is gone (evicted: a gap); and whether a
        packet after `until_t` is held (the window is all here)."""
        with self._lock:
            packets = segment.packets
            if not packets:
                return [], False, False  # emptied: a gap shows once packets come again
            position = index + 1 - packets[0].index
            out: list[StoredPacket] = []
            for offset in range(max(position, 0), len(packets)):
                packet = packets[offset]
                if packet.t > until_t:
                    return out, position < 0, True
                out.append(packet)
            return out, position < 0, False

    def newest_t(self, segment: Segment) -> float | None:
        with self._lock:
            return segment.packets[-1].t if segment.packets else None

    def clear(self) -> None:
        """Forget every segment (the source is through)."""
        with self._lock:
            for segment in self.segments:
                self._end(segment)
            self.segments.clear()
            self.bytes = 0

    # --- bounds (under the lock) ---------------------------------------------------------

    def _end(self, segment: Segment) -> None:
        if not segment.ended:
            segment.ended = True
            segment.ended_at = time.monotonic()

    def _evict(self, newest_t: float) -> None:
        current = self.segments[-1]
        keys = current.keys
        # the newest segment keeps max_s from a key frame: its oldest GOP goes once the next one suffices
        while len(keys) > 1 and current.packets[keys[1] - current.packets[0].index].pts_s <= newest_t - self.max_s:
            self.bytes -= current.drop_gop()
        if len(self.segments) > 1 and current.packets and newest_t - current.packets[0].t >= self.max_s:
            while len(self.segments) > 1:
                self.bytes -= self.segments.popleft().bytes
        while self.bytes > self.max_bytes:
            oldest = self.segments[0]
            if not oldest.keys:
                if oldest is current:
                    break
                self.bytes -= oldest.bytes
                self.segments.popleft()
                continue
            if oldest is current and len(oldest.keys) == 1:
                self.overflows += 1
            self.bytes -= oldest.drop_gop()
            if not oldest.packets and oldest is not current:
                self.segments.popleft()
