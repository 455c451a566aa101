"""The sink base class: a stage that reads Messages from its own bounded queue."""

from __future__ import annotations

from pipeline.core.context import RunContext
from pipeline.core.queues import END, Channel
from pipeline.core.messages import Message
from stages.base import Stage


class Sink(Stage):
    """Reads each frame's Message from its own queue and hands it to `write`.

    Every sink kind is made the same way, `Kind(uri, ctx, queue_size, sources)` (sources:
    the run's source ids), so stages/sinks/registry.py maps a URI's kind to a class.
    """

    FORM = "KIND:TARGET"  # how the kind's URI looks, for error messages and help

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, name: str | None = None) -> None:
        super().__init__(name or f"sink[{uri}]", ctx)
        self.uri = uri
        self.input = Channel(queue_size, ctx.abort)

    def work(self) -> None:
        while (message := self.input.get()) is not END:
            frame = message.detections.frame
            started = self.metrics.arrived((frame,))
            self.write(message)
            self.metrics.served((frame,), started)
            self.metrics.delivered(frame)

    def write(self, message: Message) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        """Counters for the run summary beyond frames written (e.g. published, spooled)."""
        return {}
