"""The clip writer: one thread that remuxes buffered packets into MP4s, and writes snapshots.

The recorder (stages/clips/recorder.py, in the track stage's thread) opens a `Capture`,
moves its end, and closes it; this thread does the file work. Rules:

- Stream copy: packets go into the MP4 as they were demuxed (PyAV, no decoder or
  encoder): a clip's packets are byte-identical to the source's.
- A clip starts at the last key frame whose presentation time is at or before its start
  (`start_t`: the first event's pts - pre_s), or at the oldest key frame buffered, and
  takes the packets in decode order up to the first whose decode time is after `end_t`
  (the last event's pts + post_s): cutting in decode order keeps every frame decodable,
  and every frame shown up to `end_t` is in. Frames shown before the start key frame
  (leading pictures of an open GOP, which reference the previous one) are left out.
- Times in the MP4 start at 0: the first packet's dts is subtracted (the clip_ready
  event gives `start_pts`, the source's stream time of the first frame). Decode times
  that do not increase (a camera's jitter) are nudged up by one tick: the MP4 muxer
  refuses them.
- Written as packets come (every TICK_S), so a long clip never has to be held in memory:
  the buffer only needs to reach back to `start_t` when the clip opens. The file is a
  hidden temporary until the clip is closed, then renamed into place (AtomicFile). A
  packet gone from the buffer before it was written (this thread fell behind by more
  than the buffer) is a gap: the clip goes on from the next key frame, and is not
  `complete`.
- Once closed: the MP4 is committed, the snapshots written, retention applied, and a
  `clip_ready` event queued for the track stage to publish. A clip that cannot be
  written (disk full, muxer error) is logged and dropped: no clip_ready for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from pipeline.core.clips_config import ClipsConfig
from pipeline.core.events import CLIP_READY, EVENTS_SCHEMA, Event, clip_event_id
from pipeline.core.files import AtomicFile
from stages.clips.retention import APPLY_EVERY_S, Retention
from stages.clips.ring import PacketRing, Segment, StoredPacket
from stages.clips.snapshots import SnapshotJob, write_snapshots

log = logging.getLogger("detstream")

TICK_S = 0.1


@dataclass(eq=False)
class Capture:
    """One clip: its window on the stream clock, the events in it, and where it goes. The
    recorder changes `end_t`, `events`, `track_ids`, `snapshots` and `closing` under the
    writer's lock."""

    source: str
    ring: PacketRing
    segment: Segment
    settings: ClipsConfig
    start_t: float
    end_t: float
    path: Path
    opened_by: Event
    events: list[str] = field(default_factory=list)
    track_ids: list[int] = field(default_factory=list)
    snapshots: list[SnapshotJob] = field(default_factory=list)
    closing: bool = False
    done: bool = False


@dataclass(eq=False)
class Output:
    """This thread's state of a clip being written."""

    target: AtomicFile
    container: av.container.OutputContainer
    stream: av.video.stream.VideoStream
    cursor: int  # index of the last packet written
    offset: int  # subtracted from every timestamp
    key_pts_s: float  # presentation time of the first (key) frame
    last_dts: int | None = None
    last_pts_s: float = 0.0
    packets: int = 0
    gaps: int = 0
    past_end: bool = False  # the buffer held a packet after end_t: the window is covered


class ClipWriter(threading.Thread):
    def __init__(self, folder: Path, retention: Retention) -> None:
        super().__init__(name="clip-writer", daemon=True)
        self.folder = folder
        self.retention = retention
        self.cond = threading.Condition()
        self.captures: list[Capture] = []
        self.outputs: dict[Capture, Output] = {}
        self.ready: deque[Event] = deque()  # clip_ready events for the track stage
        self.written = 0
        self.failed = 0
        self.bytes = 0
        self._stopping = False

    # --- the recorder's side ---------------------------------------------------------------

    def add(self, capture: Capture) -> None:
        with self.cond:
            self.captures.append(capture)
            self.cond.notify_all()

    def wait_closed(self, captures: list[Capture], timeout: float) -> bool:
        """Wait until every one of `captures` (each already closing) is written or dropped."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.cond.notify_all()
            while not all(c.done for c in captures):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.is_alive():
                    return False
                self.cond.wait(min(remaining, TICK_S))
        return True

    def stop(self, timeout: float) -> None:
        """Close every clip with what is buffered, then end the thread."""
        with self.cond:
            for capture in self.captures:
                capture.closing = True
            self._stopping = True
            self.cond.notify_all()
        if self.is_alive():
            self.join(timeout)

    # --- this thread -------------------------------------------------------------------

    def run(self) -> None:
        self._retain()
        while True:
            with self.cond:
                if self._stopping and not self.captures:
                    return
                self.cond.wait(TICK_S)
                captures = list(self.captures)
            for capture in captures:
                self._advance(capture)
            if time.monotonic() - self.retention.applied_at > APPLY_EVERY_S:
                self._retain()

    def _advance(self, capture: Capture) -> None:
        with self.cond:
            end_t, closing = capture.end_t, capture.closing
        try:
            output = self.outputs.get(capture) or self._open(capture, closing)
            if output is not None:
                self._write(capture, output, end_t)
            if closing:
                self._close(capture, self.outputs.pop(capture, None))
        except (av.FFmpegError, OSError, ValueError) as exc:
            log.error("clip %s of source %r failed: %s", capture.path.name, capture.source, exc)
            self._drop(capture)
        except Exception:  # noqa: BLE001 - a bug: this clip is lost, the thread and the other clips go on
            log.exception("clip %s of source %r failed", capture.path.name, capture.source)
            self._drop(capture)

    def _open(self, capture: Capture, closing: bool) -> Output | None:
        first = capture.ring.start(capture.segment, capture.start_t)
        if first is None:
            if closing:
                raise ValueError("no video was buffered for it")
            return None  # nothing buffered yet: wait
        template = capture.segment.template
        assert template is not None
        target = AtomicFile(capture.path)
        try:
            container = av.open(str(target.temp), mode="w", format="mp4")
            stream = template.add_to(container)
        except BaseException:
            target.discard()
            raise
        output = Output(target, container, stream, first.index - 1, first.dts, first.pts_s, last_pts_s=first.pts_s)
        self.outputs[capture] = output
        return output

    def _write(self, capture: Capture, output: Output, end_t: float) -> None:
        packets, gap, past = capture.ring.after(capture.segment, output.cursor, end_t)
        if gap:
            output.gaps += 1
            log.warning("clip %s of source %r: packets left the buffer before they were written (a gap)",
                        capture.path.name, capture.source)
        time_base = capture.segment.time_base
        for stored in packets:
            output.cursor = stored.index
            if stored.pts_s < output.key_pts_s:
                continue  # a leading picture of an open GOP: its references are not in the clip
            output.container.mux(self._packet(stored, output, time_base))
            output.packets += 1
            output.last_pts_s = max(output.last_pts_s, stored.pts_s)
        output.past_end = past

    def _packet(self, stored: StoredPacket, output: Output, time_base: Fraction) -> av.Packet:
        packet = av.Packet(stored.data)
        dts = stored.dts - output.offset
        if output.last_dts is not None and dts <= output.last_dts:
            dts = output.last_dts + 1
        output.last_dts = dts
        packet.dts, packet.pts = dts, max(stored.pts - output.offset, dts)
        packet.time_base = time_base
        packet.duration = stored.duration
        packet.is_keyframe = stored.key
        packet.stream = output.stream
        return packet

    def _close(self, capture: Capture, output: Output | None) -> None:
        if output is None or output.packets == 0:
            if output is not None:
                output.container.close()
                output.target.discard()
            raise ValueError("no video was buffered for it")
        output.container.close()  # the MP4's index (moov) is written here
        output.target.commit()
        size = capture.path.stat().st_size
        snapshots = []
        for job in capture.snapshots:
            try:
                snapshots += write_snapshots(job, capture.settings.snapshots)
            except (OSError, ValueError) as exc:  # the clip is there: its clip_ready goes out without them
                log.error("clip %s of source %r: snapshot of track %d failed: %s", capture.path.name,
                          capture.source, job.track_id, exc)
        complete = output.key_pts_s <= capture.start_t + 1e-6 and output.past_end and not output.gaps
        self.written += 1
        self.bytes += size
        self._retain()
        with self.cond:
            self.ready.append(self._ready_event(capture, output, size, snapshots, complete))
            self._finish(capture)
        log.info("source %r: clip %s (%.1f s, %d bytes, %d snapshots)", capture.source, capture.path.name,
                 output.last_pts_s - output.key_pts_s, size, len(snapshots))

    def _drop(self, capture: Capture) -> None:
        output = self.outputs.pop(capture, None)
        if output is not None:
            try:
                output.container.close()
            except (av.FFmpegError, OSError, ValueError):
                pass  # the file is discarded anyway
            output.target.discard()
        self.failed += 1
        with self.cond:
            self._finish(capture)

    def _finish(self, capture: Capture) -> None:
        capture.done = True
        if capture in self.captures:
            self.captures.remove(capture)
        self.cond.notify_all()

    def _retain(self) -> None:
        try:
            self.retention.apply()
        except OSError as exc:
            log.warning("clips: retention of %s failed: %s", self.folder, exc)

    def _ready_event(self, capture: Capture, output: Output, size: int, snapshots: list[Path], complete: bool) -> Event:
        opener = capture.opened_by.body
        body = {
            "schema": EVENTS_SCHEMA,
            "event_id": clip_event_id(capture.source, capture.events[0]),
            "type": CLIP_READY,
            "source": capture.source,
            "session": opener["session"],
            "seq": opener["seq"],
            "pts": round(output.last_pts_s, 6),
            "capture_ts": round(time.time(), 6),
            "clip": str(capture.path),
            "start_pts": round(output.key_pts_s, 6),
            "end_pts": round(output.last_pts_s, 6),
            "bytes": size,
            "complete": complete,
            "events": list(capture.events),
            "track_ids": list(capture.track_ids),
            "snapshots": [str(path) for path in snapshots],
        }
        return Event.of(body)
