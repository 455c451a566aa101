"""The sink base class: a stage that reads Messages (and events) from its own bounded queue."""

from __future__ import annotations

from pipeline.core.context import RunContext
from pipeline.core.events import Event, EventBatch
from pipeline.core.messages import Message
from pipeline.core.queues import END, Channel
from pipeline.core.types import SourceEnd
from stages.base import Stage


class Sink(Stage):
    """Reads each frame's Message from its own queue and hands it to `write`, then the
    frame's events to `write_events`; events that belong to no frame (tracks ended at the
    end of a source) come alone, and `source_ended` hears when a file source is through.

    Every sink kind is made the same way, `Kind(uri, ctx, queue_size, sources)` (sources:
    the run's source ids), so stages/sinks/registry.py maps a URI's kind to a class.
    """

    FORM = "KIND:TARGET"  # how the kind's URI looks, for error messages and help

    @classmethod
    def check(cls, uri: str) -> None:
        """Check the URI's form and options without opening or connecting to anything
        (the runner calls it before the model loads); raise a DetstreamError if bad."""

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, name: str | None = None) -> None:
        super().__init__(name or f"sink[{uri}]", ctx)
        self.uri = uri
        self.input = Channel(queue_size, ctx.abort)

    def work(self) -> None:
        while (item := self.input.get()) is not END:
            if isinstance(item, Message):
                frame = item.detections.frame
                started = self.metrics.arrived((frame,))
                self.write(item)
                if item.events:
                    self.write_events(item.events)
                self.metrics.served((frame,), started)
                self.metrics.delivered(frame)
            elif isinstance(item, EventBatch):
                self.write_events(item.events)
            elif isinstance(item, SourceEnd):
                self.source_ended(item)

    def write(self, message: Message) -> None:
        raise NotImplementedError

    def write_events(self, events: tuple[Event, ...]) -> None:
        """Events of schema detstream.events/v1 (a sink that cannot store them draws or drops them)."""

    def source_ended(self, end: SourceEnd) -> None:
        """A file source is through and its tracks have ended."""

    def stats(self) -> dict[str, int]:
        """Counters for the run summary beyond frames written (e.g. published, spooled)."""
        return {}
