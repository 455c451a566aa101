"""`redis://` and `rediss://` sink: one XADD per frame message to Redis Streams.

The detector never waits on Redis: the push-sink machinery of stages/sinks/publisher.py
(outbox, spool, publisher thread, backoff) delivers, and this module's transport sends
each chunk as XADDs in one pipelined round trip. While Redis is down or too slow,
messages go to the spool; once it answers again the spool is published first, in order,
then deleted. A spool left by an earlier run is published before anything new. Delivery
is at-least-once: a chunk cut off mid-way is sent again, and consumers drop the repeats
by `event_id`.

Stream entry fields: `event_id`, `source`, `seq` and `message` (the JSON of schema
detstream.detections/v1, the same line the JSONL sink writes). Events (schema
detstream.events/v1) go through the same outbox and spool, in order with the frames, to
their own stream (`events` option): fields `event_id`, `source`, `type` and `message`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import redis

from pipeline.core.context import RunContext
from pipeline.core.events import EVENTS_SCHEMA
from pipeline.core.messages import Message
from pipeline.core.redis_url import DEFAULT_EVENTS_STREAM, DEFAULT_STREAM, RedisTarget, check_server, parse_redis_url
from pipeline.core.secrets import redact
from pipeline.core.uri_options import UriOptions
from stages.sinks.publisher import DeliverySettings, Progress, PushSink, SendFailed, delivery_options, spool_folder

log = logging.getLogger("detstream")
SINK_OPTIONS = {
    "stream": f"stream key; {{source}} is replaced by the source id (default {DEFAULT_STREAM})",
    "maxlen": "trim each stream to about N entries (XADD MAXLEN ~ N); 0 never trims (default 100000)",
    **delivery_options("XADDs per pipelined round trip (default 64)", "~/.cache/detstream/spool/HOST-PORT-DB"),
    "events": f"stream key of track, zone and line events; {{source}} is replaced (default {DEFAULT_EVENTS_STREAM})",
    "channel": "also PUBLISH each live message on this Pub/Sub channel, {source} allowed (lossy; default none)",
}
# retry delays while Redis fails (short: messages wait in memory or the spool meanwhile)
MIN_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0


@dataclass(frozen=True)
class RedisSinkSettings:
    stream: str
    events_stream: str
    maxlen: int | None
    channel: str | None
    delivery: DeliverySettings  # the URI's batch option: XADDs in one pipelined round trip

    @classmethod
    def from_target(cls, target: RedisTarget) -> RedisSinkSettings:
        maxlen = int(target.number("maxlen", 100_000, minimum=0))
        default_spool = spool_folder(f"{target.host}-{target.port}-{target.db}")
        return cls(
            stream=target.key_template("stream", DEFAULT_STREAM) or DEFAULT_STREAM,
            events_stream=target.key_template("events", DEFAULT_EVENTS_STREAM) or DEFAULT_EVENTS_STREAM,
            maxlen=maxlen or None,
            channel=target.key_template("channel", None),
            delivery=DeliverySettings.from_options(UriOptions(target.options, target.error), default_spool, 64),
        )


class RedisTransport:
    """XADDs a chunk in one pipelined round trip."""

    retry_s = (MIN_BACKOFF_S, MAX_BACKOFF_S)

    def __init__(self, client: redis.Redis, settings: RedisSinkSettings, display: str) -> None:
        self.client = client
        self.settings = settings
        self.display = display
        self._publish_warned = False

    def send(self, lines: list[str], replay: bool) -> Progress:
        try:
            unreadable = self._send(lines, replay)
        except redis.RedisError as exc:
            raise SendFailed(redact(str(exc)) or type(exc).__name__) from exc
        return Progress(delivered=len(lines) - unreadable, unreadable=unreadable)

    def idle(self) -> bool:
        return False  # redis-py reconnects on the next command by itself

    def close(self) -> None:
        self.client.close()

    def _check(self, results: list[object], commands: list[str]) -> None:
        """Raise the first XADD error; PUBLISH errors only warn (the channel is lossy anyway)."""
        errors = [r for r in results if isinstance(r, redis.RedisError)]
        xadd_errors = [r for r, command in zip(results, commands) if isinstance(r, redis.RedisError) and command == "XADD"]
        if xadd_errors:
            raise xadd_errors[0]
        if errors and not self._publish_warned:
            log.warning("%s: PUBLISH failed (%s); the stream entries were written", self.display, errors[0])
            self._publish_warned = True

    def _send(self, lines: list[str], replay: bool) -> int:
        """XADD `lines` in one round trip; returns how many were not messages."""
        settings = self.settings
        pipe = self.client.pipeline(transaction=False)
        commands: list[str] = []
        unreadable = 0
        for line in lines:
            try:
                message = json.loads(line)
                source, event_id = str(message["source"]), str(message["event_id"])
                is_event = message.get("schema") == EVENTS_SCHEMA
                key = str(message["type"]) if is_event else int(message["seq"])
            except (ValueError, KeyError, TypeError, AttributeError):
                unreadable += 1
                continue
            if is_event:
                fields = {"event_id": event_id, "source": source, "type": key, "message": line}
                pipe.xadd(settings.events_stream.format(source=source), fields, maxlen=settings.maxlen, approximate=True)
                commands.append("XADD")
                continue
            fields = {"event_id": event_id, "source": source, "seq": key, "message": line}
            pipe.xadd(settings.stream.format(source=source), fields, maxlen=settings.maxlen, approximate=True)
            commands.append("XADD")
            # live dashboards want now, not the backlog: replayed messages are not announced
            if settings.channel and not replay:
                pipe.publish(settings.channel.format(source=source), line)
                commands.append("PUBLISH")
        if len(pipe):
            self._check(pipe.execute(raise_on_error=False), commands)
        return unreadable


class RedisSink(PushSink):
    FORM = "redis://HOST:PORT/DB?stream=KEY, rediss://... (TLS)"

    @classmethod
    def check(cls, uri: str) -> None:
        RedisSinkSettings.from_target(parse_redis_url(uri, SINK_OPTIONS))

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> None:
        target = parse_redis_url(uri, SINK_OPTIONS)
        self.settings = RedisSinkSettings.from_target(target)
        client = target.client()
        unreachable = check_server(client, target)  # bad credentials stop the run here
        if unreachable:
            log.warning("%s unreachable at start-up (%s): spooling until it answers", target.display, unreachable)
        transport = RedisTransport(client, self.settings, target.display)
        super().__init__(uri, ctx, queue_size, target.display, transport, self.settings.delivery)

    def write(self, message: Message) -> None:
        self.offer(message.line)
