"""Sinks: each runs in its own thread behind its own bounded queue.

`make_sink` turns a sink URI (`jsonl:PATH`, `video:PATH.mp4`, `redis://...`) into a sink stage. Files
are opened when the sink is made, so a bad path fails before any frame is decoded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from pipeline.context import RunContext
from pipeline.errors import SinkError
from pipeline.messages import to_message
from pipeline.queues import END, Channel
from pipeline.redis_url import mask_password
from pipeline.types import Detections
from stages.base import Stage


class Sink(Stage):
    """Reads Detections from its own queue and hands each to `write`."""

    def __init__(self, uri: str, ctx: RunContext, queue_size: int) -> None:
        super().__init__(f"sink[{uri}]", ctx)
        self.uri = uri
        self.input = Channel(queue_size, ctx.abort)

    def work(self) -> None:
        while (detections := self.input.get()) is not END:
            frame = detections.frame
            started = self.metrics.arrived((frame,))
            self.write(detections)
            self.metrics.served((frame,), started)
            self.metrics.delivered(frame)
            self.ctx.count(self.name)

    def write(self, detections: Detections) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        """Counters for the run summary beyond frames written (e.g. published, spooled)."""
        return {}


class JsonlSink(Sink):
    """One JSON message per line. Each line is written and flushed whole, so a run that
    is killed leaves only complete lines behind."""

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, model: str, path: str) -> None:
        super().__init__(uri, ctx, queue_size)
        self.model = model
        self.file: TextIO
        if path == "-":
            self.file = sys.stdout
        else:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
            except OSError as exc:
                raise SinkError(f"sink {uri!r}: cannot open {path}: {exc.strerror}") from exc

    def write(self, detections: Detections) -> None:
        line = json.dumps(to_message(detections, self.model), separators=(",", ":"))
        self.file.write(line + "\n")
        self.file.flush()

    def finish(self) -> None:
        if self.file is not sys.stdout:
            self.file.close()


def make_sink(uri: str, ctx: RunContext, queue_size: int, model: str, sources: list[str]) -> Sink:
    from stages.redis_sink import RedisSink  # these subclass Sink, so import late
    from stages.video_sink import VideoSink

    kind, _, target = uri.partition(":")
    if kind == "jsonl":
        return JsonlSink(uri, ctx, queue_size, model, target)
    if kind == "video":
        return VideoSink(uri, ctx, queue_size, target, sources)
    if kind in ("redis", "rediss"):
        return RedisSink(uri, ctx, queue_size, model)
    raise SinkError(
        f"unknown sink kind {kind!r} in {mask_password(uri)!r} (allowed: jsonl:PATH, video:PATH.mp4, redis://HOST:PORT/DB)"
    )
