"""Track stage: identities across frames, zone and line events, and each frame's Message.

    postprocess --Detections--> track --Message (with its events)--> sinks

Every frame passes here, tracked or not: this stage builds each frame's Message once for
all sinks (with `track_id` per detection where its source is tracked). Tracks end when
the tracker says so, when a live source reconnects (stages/tracking/source_tracks.py),
when a source is through (its `SourceEnd`, in band behind its last frame; batch's
per-file marker comes out of band with a frame count, files being lossless), when its
settings change at runtime (`reset`), and at the end of the run. Events that belong
to no frame go to the sinks as an `EventBatch`; a `SourceEnd` is passed on after them
(batch's per-file writer closes the file on it).

With clips (`clips`, stages/clips/recorder.py) events are stamped with their clip before
the message is built, and each written clip's `clip_ready` goes out as an EventBatch:
as soon as it is written (checked after every item, and while the input is idle), and
for a source that ends, before its `SourceEnd`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Callable, Protocol

from engines.base import ModelInfo
from pipeline.core.context import RunContext
from pipeline.core.events import Event, EventBatch
from pipeline.core.messages import Message
from pipeline.core.queues import END, Channel
from pipeline.core.tap import FrameTap
from pipeline.core.types import Detections, SourceEnd
from stages.base import Stage
from stages.tracking.source_tracks import SourceSettings, SourceTracks


class Clips(Protocol):
    """What this stage asks of the run's clips (stages/clips/recorder.py's ClipRecorder;
    given by the runner, so the stages folder does not depend on the clips folder)."""

    def start(self) -> None: ...
    def stamp(self, source: str, events: Sequence[Event]) -> tuple[Event, ...]: ...
    def observe(self, message: Message) -> None: ...
    def ready(self) -> list[Event]: ...
    def end_source(self, source: str) -> list[Event]: ...
    def close(self) -> list[Event]: ...
    def abort(self) -> None: ...


class Track(Stage):
    def __init__(
        self,
        upstream: Channel,
        outputs: list[Channel],
        info: ModelInfo,
        ctx: RunContext,
        settings: Callable[[str], SourceSettings],
        tap: FrameTap | None = None,
        on_end: Callable[[str], None] = lambda source: None,
        clips: Clips | None = None,
    ) -> None:
        """`settings(source)`: the tracking settings, zones and lines of a source, read
        at its first frame (and after `reset`); `tap`: watchers of frames (the live page);
        `on_end(source)`: called once a source's end and last events have been passed on;
        `clips`: the run's clips, if any."""
        super().__init__("track", ctx)
        self.input = upstream
        self.outputs = outputs
        self.info = info
        self.settings = settings
        self.sources: dict[str, SourceTracks | None] = {}  # None: the source is not tracked
        self.seen: Counter[str] = Counter()
        self.ends: dict[str, SourceEnd] = {}
        self.changed: set[str] = set()
        self.last_ids: dict[str, int] = {}
        self.tap = tap or FrameTap()
        self.on_end = on_end
        self.clips = clips

    def work(self) -> None:
        if self.clips is not None:
            self.clips.start()
        while (item := self.input.get(self._publish_clips)) is not END:
            if isinstance(item, SourceEnd):
                self.ends[item.source] = item
                source = item.source
            else:
                source = item.frame.source
                if source in self.changed:  # new settings: the old ones' tracks end first
                    self.changed.discard(source)
                    self._end_tracks(source)
                self._frame(item)
                self.seen[source] += 1
            self._end_finished(source)
            self._publish_clips()
        for source in list(self.sources):
            self._end_tracks(source)
        if self.clips is not None:
            self._publish_events(self.clips.close())
        self._put(END)

    def finish(self) -> None:
        if self.clips is not None:  # aborted: what is buffered is still written, nobody is told
            self.clips.abort()

    def reset(self, source: str) -> None:
        """`source`'s settings changed (any thread): its tracks end before its next frame,
        and its tracker, zones and lines start again from the new settings."""
        self.changed.add(source)

    def _frame(self, detections: Detections) -> None:
        frame = detections.frame
        started = self.metrics.arrived((frame,))
        tracks = self._tracks(frame.source)
        if tracks is None:
            frame.stamp(self.name)
            message = Message.of(detections, self.info.name)
        else:
            ids, events, overlay = tracks.frame(detections)
            if self.clips is not None:
                events = self.clips.stamp(frame.source, events)
            frame.stamp(self.name)  # before the message is built: its latency_ms include this stage
            message = Message.of(detections, self.info.name, ids, tuple(events), overlay)
            self._count(message.events)
            if self.clips is not None:
                self.clips.observe(message)
        self.metrics.served((frame,), started)
        self._put(message)
        self.tap.offer(message)

    def _tracks(self, source: str) -> SourceTracks | None:
        if source not in self.sources:
            settings = self.settings(source)
            tracked = settings.tracking.enabled
            tracks = SourceTracks(source, settings, self.info.class_names, self.info.name) if tracked else None
            if tracks is not None:  # ids go on from the source's previous tracker (reset, re-added)
                tracks.tracker.ids.last = self.last_ids.get(source, 0)
            self.sources[source] = tracks
        return self.sources[source]

    def _end_finished(self, source: str) -> None:
        end = self.ends.get(source)
        if end is None or (end.frames is not None and self.seen[source] < end.frames):
            return
        del self.ends[source]
        self.seen.pop(source, None)
        self.changed.discard(source)
        self._end_tracks(source)
        if self.clips is not None:
            self._publish_events(self.clips.end_source(source))
        self._put(end)
        self.on_end(source)

    def _end_tracks(self, source: str) -> None:
        tracks = self.sources.pop(source, None)
        if tracks is not None:
            self.last_ids[source] = tracks.tracker.ids.last
            events = tracks.end()
            self._publish(EventBatch(source, self.clips.stamp(source, events) if self.clips else tuple(events)))

    def _publish(self, batch: EventBatch) -> None:
        if batch.events:
            self._count(batch.events)
            self._put(batch)

    def _publish_clips(self) -> None:
        if self.clips is not None:
            self._publish_events(self.clips.ready())

    def _publish_events(self, events: list[Event]) -> None:
        """Events of any sources (clip_ready), one batch per source."""
        by_source: dict[str, list[Event]] = {}
        for event in events:
            by_source.setdefault(event.source, []).append(event)
        for source, batch in by_source.items():
            self._publish(EventBatch(source, tuple(batch)))

    def _count(self, events: tuple[Event, ...]) -> None:
        for event in events:
            body = event.body
            place = body.get("zone") or body.get("line") or ""
            self.metrics.event(event.source, event.type, place, body.get("direction") or "", body.get("label", ""))

    def _put(self, item: object) -> None:
        for output in self.outputs:
            output.put(item)
