"""Sink URIs to sink stages: one line per sink kind, in `SINKS`.

A sink URI is `KIND:TARGET` (`jsonl:PATH`, `video:PATH.mp4`, `redis://...`,
`webhook:https://...`, `mqtt://...`). `sink_kind` checks a URI, its options included,
without opening anything (the runner calls it before loading the model);
`make_sink` builds the stage. Files are opened when the sink is made, so a bad path fails
before any frame is decoded. Adding a sink kind: a new module in stages/sinks/ with a
`Sink` subclass, and its line here.
"""

from __future__ import annotations

from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from pipeline.core.secrets import mask_url
from stages.sinks.base import Sink
from stages.sinks.jsonl import JsonlSink
from stages.sinks.mqtt import MqttSink
from stages.sinks.redis_streams import RedisSink
from stages.sinks.video import VideoSink
from stages.sinks.webhook import WebhookSink

SINKS: dict[str, type[Sink]] = {
    "jsonl": JsonlSink,
    "video": VideoSink,
    "redis": RedisSink,
    "rediss": RedisSink,
    "webhook": WebhookSink,
    "mqtt": MqttSink,
    "mqtts": MqttSink,
}


def sink_kind(uri: str) -> type[Sink]:
    """The sink class for `uri` (its options checked), or an error naming what is allowed."""
    kind, sep, target = uri.partition(":")
    if not sep or not target or kind not in SINKS:
        forms = ", ".join(dict.fromkeys(cls.FORM for cls in SINKS.values()))
        raise ConfigError(f"sinks: {mask_url(uri)!r} is not a sink URI (allowed: {forms})")
    SINKS[kind].check(uri)
    return SINKS[kind]


def make_sink(uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> Sink:
    return sink_kind(uri)(uri, ctx, queue_size, sources)
