"""Sink URIs to sink stages: one line per sink kind.

`make_sink` turns a sink URI (`jsonl:PATH`, `video:PATH.mp4`, `redis://...`) into a sink stage. Files
are opened when the sink is made, so a bad path fails before any frame is decoded.
"""

from __future__ import annotations

from pipeline.core.context import RunContext
from pipeline.core.errors import SinkError
from pipeline.core.secrets import mask_url
from stages.sinks.base import Sink
from stages.sinks.jsonl import JsonlSink
from stages.sinks.redis_streams import RedisSink
from stages.sinks.video import VideoSink


def make_sink(uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> Sink:
    kind, _, target = uri.partition(":")
    if kind == "jsonl":
        return JsonlSink(uri, ctx, queue_size, target)
    if kind == "video":
        return VideoSink(uri, ctx, queue_size, target, sources)
    if kind in ("redis", "rediss"):
        return RedisSink(uri, ctx, queue_size)
    raise SinkError(
        f"unknown sink kind {kind!r} in {mask_url(uri)!r} (allowed: jsonl:PATH, video:PATH.mp4, redis://HOST:PORT/DB)"
    )
