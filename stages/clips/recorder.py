"""Clips of events: which events get one, each clip's window, and the events' stamps.

Runs in the track stage's thread (stages/track.py calls it for every frame and its
events, before the message goes to the sinks); the packets come from the readers'
threads into each source's buffer (stages/clips/ring.py), the files are written by the
writer's thread (stages/clips/writer.py). Rules:

- An event that matches its source's rules (stages/clips/rules.py) opens a clip with
  the window [pts - pre_s, pts + post_s], or, when that window overlaps the source's
  open clip, extends it: the clip ends post_s after its last event. One open clip per
  source, so overlapping events are one clip.
- Clock: the events' and frames' `pts`, the stream clock the buffered packets carry (for
  files the file's timestamps; for live sources those of the connection, `session`).
  A clip never spans two connections: a reconnect closes the open clip.
- A clip closes once the track stage has seen a frame of its source later than its end
  + pre_s (no later event could overlap it any more): its `clip_ready` comes about pre_s +
  post_s after its last event. It also closes, with what is buffered, when its source
  reconnects, when the source ends (the clip is written and its `clip_ready` published
  before the source's end is passed on), when a live source's read ended LIVE_GRACE_S
  ago and no frame of a new connection came (a camera that stays down), and at the end
  of the run: nothing that was buffered is lost.
- An event stamped gets `clip` (the MP4's path) and, with snapshots on, `snapshot`
  ({annotated, crop}: its track's JPEGs for that clip). Paths are absolute,
  `{dir}/{source}/{UTC time of the clip's first event}-{its event_id[:8]}.mp4` (source
  names with characters other than letters, digits, `.`, `_`, `-` get `_` for those).
  The files are there once the clip's `clip_ready` is.
- A source whose stream cannot go into an MP4, or with nothing buffered for the event's
  connection, gets no clip (its events are not stamped).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.core.clips_config import ClipsConfig
from pipeline.core.events import Event
from pipeline.core.messages import Message
from stages.clips.retention import Retention
from stages.clips.ring import PacketRing
from stages.clips.rules import Rules
from stages.clips.snapshots import BestBoxes, SnapshotJob, snapshot_paths
from stages.clips.writer import Capture, ClipWriter

log = logging.getLogger("detstream")

LIVE_GRACE_S = 2.0  # a live read that ended this long ago: its frames have all come through
FLUSH_TIMEOUT_S = 30.0  # the longest a source's end waits for its clip to be written
ABORT_TIMEOUT_S = 2.0


@dataclass(eq=False)
class SourceClips:
    settings: ClipsConfig
    live: bool
    ring: PacketRing
    rules: Rules
    best: BestBoxes | None
    capture: Capture | None = None
    ended: set[int] = field(default_factory=set)  # ended tracks whose best box the open clip needs


def folder_name(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", source).lstrip(".") or "_"


def clip_name(event: Event) -> str:
    """`20250301T101500.250Z-1a2b3c4d`: the event's capture time (UTC) and its id's start."""
    capture_ts = float(event.body["capture_ts"])
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(capture_ts))
    return f"{stamp}.{int(capture_ts % 1 * 1000):03d}Z-{str(event.body['event_id'])[:8]}"


class ClipRecorder:
    def __init__(self, config: ClipsConfig) -> None:
        """`config`: the run's clips settings (its folder and retention are every source's)."""
        self.folder = config.dir.expanduser().resolve()
        self.writer = ClipWriter(self.folder, Retention(self.folder, config.retention))
        self.sources: dict[str, SourceClips] = {}
        self._lock = threading.Lock()  # sources are added by the control API's threads

    # --- the run's side ---------------------------------------------------------------

    def add_source(self, source: str, settings: ClipsConfig, live: bool) -> PacketRing:
        """A source with clips on (again, after a pause: its buffer is kept); its buffer,
        for its reader."""
        with self._lock:
            held = self.sources.get(source)
            ring = held.ring if held is not None else PacketRing(source, settings.buffer_s, settings.buffer_bytes)
            rules = Rules(settings.rules)
            best = BestBoxes(rules.classes) if settings.snapshots.enabled else None
            self.sources[source] = SourceClips(settings, live, ring, rules, best)
            return ring

    def forget(self, source: str) -> None:
        with self._lock:
            self.sources.pop(source, None)

    def start(self) -> None:
        self.writer.start()

    # --- the track stage's side --------------------------------------------------------

    def stamp(self, source: str, events: Sequence[Event]) -> tuple[Event, ...]:
        """`events` of `source`, those that match its rules with their clip (and snapshots)."""
        state = self.sources.get(source)
        if state is None or not events:
            return tuple(events)
        out = []
        for event in events:
            track_id = event.body["track_id"]
            if event.type == "track_end":
                self._track_ended(state, track_id)
            capture = self._capture_for(source, state, event) if state.rules.match(event) else None
            if capture is None:
                out.append(event)
                continue
            fields: dict[str, object] = {"clip": str(capture.path)}
            if state.best is not None:
                paths = snapshot_paths(capture.path.parent, capture.path.stem, track_id, state.settings.snapshots)
                fields["snapshot"] = {kind: str(path) for kind, path in paths.items()}
            out.append(event.with_fields(**fields))
        return tuple(out)

    def observe(self, message: Message) -> None:
        """A frame's message (after its events were stamped): best boxes, and the clip
        whose window this frame has passed closes."""
        frame = message.detections.frame
        state = self.sources.get(frame.source)
        if state is None:
            return
        if state.best is not None:
            state.best.observe(message)
        capture = state.capture
        if capture is not None and (frame.session != capture.segment.session
                                    or frame.pts > capture.end_t + state.settings.pre_s):
            self._close(state)

    def ready(self) -> list[Event]:
        """The `clip_ready` events of the clips written since the last call (closing first
        the clips of live sources whose read ended LIVE_GRACE_S ago)."""
        now = time.monotonic()
        for state in list(self.sources.values()):
            segment = state.capture.segment if state.capture is not None else None
            if state.live and segment is not None and segment.ended_at is not None and now - segment.ended_at > LIVE_GRACE_S:
                self._close(state)
        with self.writer.cond:
            events = list(self.writer.ready)
            self.writer.ready.clear()
        return events

    def end_source(self, source: str) -> list[Event]:
        """`source` is through: its clip is written with what is buffered; its buffer is
        emptied; the `clip_ready` events to publish before its end."""
        state = self.sources.get(source)
        if state is not None:
            capture = state.capture
            if capture is not None:
                self._close(state)
                self.writer.wait_closed([capture], FLUSH_TIMEOUT_S)
            if state.best is not None:
                state.best.best.clear()
            state.ended.clear()
            state.ring.clear()
        return self.ready()

    def close(self, timeout: float = FLUSH_TIMEOUT_S) -> list[Event]:
        """The end of the run: every open clip is written; the last `clip_ready` events."""
        for state in list(self.sources.values()):
            if state.capture is not None:
                self._close(state)
        self.writer.stop(timeout)
        stats = self.stats()
        log.info("clips: %d written (%d bytes), %d failed; retention deleted %d files of %s", stats["clips"],
                 stats["clip_bytes"], stats["clips_failed"], stats["clip_files_deleted"], self.folder)
        return self.ready()

    def abort(self) -> None:
        """The run was aborted: what is buffered is still written, briefly; nobody is told."""
        self.writer.stop(ABORT_TIMEOUT_S)

    def stats(self) -> dict[str, int]:
        return {"clips": self.writer.written, "clip_bytes": self.writer.bytes, "clips_failed": self.writer.failed,
                "clip_files_deleted": self.writer.retention.deleted}

    # --- helpers -------------------------------------------------------------------------

    def _capture_for(self, source: str, state: SourceClips, event: Event) -> Capture | None:
        body, settings = event.body, state.settings
        t, session = float(body["pts"]), int(body["session"])
        capture = state.capture
        if capture is not None and (capture.segment.session != session or t - settings.pre_s > capture.end_t):
            self._close(state)
            capture = None
        if capture is None:
            segment = state.ring.segment(session)
            if segment is None or segment.template is None:
                return None
            path = self.folder / folder_name(source) / f"{clip_name(event)}.mp4"
            capture = Capture(source, state.ring, segment, settings, t - settings.pre_s, t + settings.post_s, path, event)
            state.capture = capture
            self.writer.add(capture)
        with self.writer.cond:
            capture.end_t = max(capture.end_t, t + settings.post_s)
            capture.events.append(str(body["event_id"]))
            if body["track_id"] not in capture.track_ids:
                capture.track_ids.append(body["track_id"])
        return capture

    def _track_ended(self, state: SourceClips, track_id: int) -> None:
        if state.best is None:
            return
        if state.capture is not None and track_id in state.capture.track_ids:
            state.ended.add(track_id)  # its clip still needs its best box
        else:
            state.best.forget({track_id})

    def _close(self, state: SourceClips) -> None:
        capture, state.capture = state.capture, None
        assert capture is not None
        jobs = []
        if state.best is not None:
            for track_id in capture.track_ids:
                best = state.best.best.get(track_id)
                if best is not None:  # no detection carried its id yet: no snapshot
                    paths = snapshot_paths(capture.path.parent, capture.path.stem, track_id, state.settings.snapshots)
                    jobs.append(SnapshotJob(track_id, best, paths))
            state.best.forget(state.ended)
            state.ended.clear()
        with self.writer.cond:
            capture.snapshots = jobs
            capture.closing = True
            self.writer.cond.notify_all()
