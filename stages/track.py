"""Track stage: identities across frames, zone and line events, and each frame's Message.

    postprocess --Detections--> track --Message (with its events)--> sinks

Every frame passes here, tracked or not: this stage builds each frame's Message once for
all sinks (with `track_id` per detection where its source is tracked). Tracks end when
the tracker says so, when a live source reconnects (stages/tracking/source_tracks.py),
when a file source is through (its decoder's `SourceEnd`: once that many frames of the
source have passed, files being lossless), and at the end of the run. Events that belong
to no frame go to the sinks as an `EventBatch`; a `SourceEnd` is passed on after them
(batch's per-file writer closes the file on it).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

from engines.base import ModelInfo
from pipeline.core.context import RunContext
from pipeline.core.events import Event, EventBatch
from pipeline.core.messages import Message
from pipeline.core.queues import END, Channel
from pipeline.core.types import Detections, SourceEnd
from stages.base import Stage
from stages.tracking.source_tracks import SourceSettings, SourceTracks


class Track(Stage):
    def __init__(
        self,
        upstream: Channel,
        outputs: list[Channel],
        info: ModelInfo,
        ctx: RunContext,
        settings: Callable[[str], SourceSettings],
    ) -> None:
        """`settings(source)`: the tracking settings, zones and lines of a source."""
        super().__init__("track", ctx)
        self.input = upstream
        self.outputs = outputs
        self.info = info
        self.settings = settings
        self.sources: dict[str, SourceTracks | None] = {}  # None: the source is not tracked
        self.seen: Counter[str] = Counter()
        self.ends: dict[str, SourceEnd] = {}

    def work(self) -> None:
        while (item := self.input.get()) is not END:
            if isinstance(item, SourceEnd):
                self.ends[item.source] = item
            else:
                self._frame(item)
                self.seen[item.frame.source] += 1
            self._end_finished(item.source if isinstance(item, SourceEnd) else item.frame.source)
        for source, tracks in list(self.sources.items()):
            if tracks is not None:
                self._publish(EventBatch(source, tuple(tracks.end())))
        self._put(END)

    def _frame(self, detections: Detections) -> None:
        frame = detections.frame
        started = self.metrics.arrived((frame,))
        tracks = self._tracks(frame.source)
        if tracks is None:
            frame.stamp(self.name)
            message = Message.of(detections, self.info.name)
        else:
            ids, events, overlay = tracks.frame(detections)
            frame.stamp(self.name)  # before the message is built: its latency_ms include this stage
            message = Message.of(detections, self.info.name, ids, tuple(events), overlay)
            self._count(message.events)
        self.metrics.served((frame,), started)
        self._put(message)

    def _tracks(self, source: str) -> SourceTracks | None:
        if source not in self.sources:
            settings = self.settings(source)
            tracked = settings.tracking.enabled
            self.sources[source] = SourceTracks(source, settings, self.info.class_names, self.info.name) if tracked else None
        return self.sources[source]

    def _end_finished(self, source: str) -> None:
        end = self.ends.get(source)
        if end is None or self.seen[source] < end.frames:
            return
        del self.ends[source]
        tracks = self.sources.pop(source, None)
        self.seen.pop(source, None)
        if tracks is not None:
            self._publish(EventBatch(source, tuple(tracks.end())))
        self._put(end)

    def _publish(self, batch: EventBatch) -> None:
        if batch.events:
            self._count(batch.events)
            self._put(batch)

    def _count(self, events: tuple[Event, ...]) -> None:
        for event in events:
            body = event.body
            place = body.get("zone") or body.get("line") or ""
            self.metrics.event(event.source, event.type, place, body.get("direction") or "", body["label"])

    def _put(self, item: object) -> None:
        for output in self.outputs:
            output.put(item)
