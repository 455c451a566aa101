"""`redis://` and `rediss://` sink: one XADD per frame message to Redis Streams.

The detector never waits on Redis. `write` only hands the message to an Outbox (a bounded
buffer in memory, else the spool on disk); a publisher thread sends chunks of XADDs in
one pipelined round trip each. While Redis is down or too slow, messages go to the spool;
once it answers again the spool is published first, in order, then deleted. A spool left
by an earlier run is published before anything new. Delivery is at-least-once: a chunk
cut off mid-way is sent again, and consumers drop the repeats by `event_id`.

Stream entry fields: `event_id`, `source`, `seq` and `message` (the JSON of schema
detstream.detections/v1, the same line the JSONL sink writes). Events (schema
detstream.events/v1) go through the same outbox and spool, in order with the frames, to
their own stream (`events` option): fields `event_id`, `source`, `type` and `message`.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import redis

from pipeline.core.backoff import Backoff
from pipeline.core.context import RunContext
from pipeline.core.files import cache_folder
from pipeline.core.events import EVENTS_SCHEMA, Event
from pipeline.core.messages import Message
from pipeline.core.redis_url import DEFAULT_EVENTS_STREAM, DEFAULT_STREAM, RedisTarget, check_server, parse_redis_url
from pipeline.core.secrets import redact
from stages.sinks.outbox import Chunk, Outbox
from stages.sinks.spool import Spool
from stages.sinks.base import Sink

log = logging.getLogger("detstream")
SINK_OPTIONS = {
    "stream": f"stream key; {{source}} is replaced by the source id (default {DEFAULT_STREAM})",
    "maxlen": "trim each stream to about N entries (XADD MAXLEN ~ N); 0 never trims (default 100000)",
    "batch": "XADDs per pipelined round trip (default 64)",
    "buffer": "messages held in memory while Redis is slow, before the spool takes over (default 1000)",
    "spool": "spool directory (default ~/.cache/detstream/spool/HOST-PORT-DB, under $DETSTREAM_CACHE if set)",
    "spool_mb": "spool size bound in MB; beyond it the oldest messages are dropped and counted (default 256)",
    "events": f"stream key of track, zone and line events; {{source}} is replaced (default {DEFAULT_EVENTS_STREAM})",
    "channel": "also PUBLISH each live message on this Pub/Sub channel, {source} allowed (lossy; default none)",
}
# retry delays while Redis fails (short: messages wait in memory or the spool meanwhile);
# jittered, so many detectors do not all come back at once after a Redis restart
MIN_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0
BACKOFF_JITTER = 0.2


@dataclass(frozen=True)
class RedisSinkSettings:
    stream: str
    events_stream: str
    maxlen: int | None
    per_round_trip: int  # the URI's `batch` option: XADDs in one pipelined round trip
    buffer: int
    spool: Path
    spool_bytes: int
    channel: str | None

    @classmethod
    def from_target(cls, target: RedisTarget) -> RedisSinkSettings:
        default_spool = cache_folder() / "spool" / f"{target.host}-{target.port}-{target.db}"
        maxlen = int(target.number("maxlen", 100_000, minimum=0))
        return cls(
            stream=target.key_template("stream", DEFAULT_STREAM) or DEFAULT_STREAM,
            events_stream=target.key_template("events", DEFAULT_EVENTS_STREAM) or DEFAULT_EVENTS_STREAM,
            maxlen=maxlen or None,
            per_round_trip=int(target.number("batch", 64, minimum=1)),
            buffer=int(target.number("buffer", 1000, minimum=1)),
            spool=Path(target.options.get("spool") or default_spool).expanduser(),
            spool_bytes=int(target.number("spool_mb", 256, minimum=0.001, integer=False) * 1e6),
            channel=target.key_template("channel", None),
        )


class Publisher(threading.Thread):
    """Takes chunks of lines from the outbox and XADDs them, retrying with backoff on failure."""

    def __init__(self, client: redis.Redis, outbox: Outbox, settings: RedisSinkSettings, display: str) -> None:
        super().__init__(name=f"publisher[{display}]", daemon=True)
        self.client = client
        self.outbox = outbox
        self.settings = settings
        self.display = display
        self.published = 0
        self.replayed = 0
        self.unreadable = 0  # spooled lines that are not messages (e.g. edited by hand)
        self.down = threading.Event()  # the last attempt failed
        self.gave_up = threading.Event()  # finishing, and Redis still fails
        self.finishing = threading.Event()
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._publish_warned = False

    def run(self) -> None:
        backoff = Backoff(MIN_BACKOFF_S, MAX_BACKOFF_S, BACKOFF_JITTER)
        while not self._halt.is_set():
            chunk = self.outbox.take(self.settings.per_round_trip, timeout_s=0.1)
            if chunk is None:
                continue
            try:
                unreadable = self._send(chunk)
            except redis.RedisError as exc:
                self._failed(exc)
                self._wake.wait(backoff.next_delay())
                self._wake.clear()
                continue
            if self.down.is_set():
                log.info("%s answers again: publishing the spool first", self.display)
                self.down.clear()
            backoff.reset()
            self.outbox.done(chunk)
            self.unreadable += unreadable
            sent = len(chunk.lines) - unreadable
            self.published += sent
            if chunk.from_spool:
                self.replayed += sent

    def finish(self) -> None:
        """Last call: publish what is left; one more failure means give up (it stays spooled)."""
        self.finishing.set()
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def _failed(self, exc: redis.RedisError) -> None:
        if not self.down.is_set():
            log.warning(
                "%s: cannot publish (%s): keeping messages in %s until it answers",
                self.display, redact(str(exc)) or type(exc).__name__, self.settings.spool,
            )
            self.down.set()
        if self.finishing.is_set():
            self.gave_up.set()

    def _check(self, results: list[object], commands: list[str]) -> None:
        """Raise the first XADD error; PUBLISH errors only warn (the channel is lossy anyway)."""
        errors = [r for r in results if isinstance(r, redis.RedisError)]
        xadd_errors = [r for r, command in zip(results, commands) if isinstance(r, redis.RedisError) and command == "XADD"]
        if xadd_errors:
            raise xadd_errors[0]
        if errors and not self._publish_warned:
            log.warning("%s: PUBLISH failed (%s); the stream entries were written", self.display, errors[0])
            self._publish_warned = True

    def _send(self, chunk: Chunk) -> int:
        """XADD the chunk in one round trip; returns how many lines were not messages."""
        settings = self.settings
        pipe = self.client.pipeline(transaction=False)
        commands: list[str] = []
        unreadable = 0
        for line in chunk.lines:
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
            if settings.channel and not chunk.from_spool:
                pipe.publish(settings.channel.format(source=source), line)
                commands.append("PUBLISH")
        if len(pipe):
            self._check(pipe.execute(raise_on_error=False), commands)
        if unreadable:
            log.warning("spool %s: skipped %d lines that are not messages", settings.spool, unreadable)
        return unreadable


class RedisSink(Sink):
    FORM = "redis://HOST:PORT/DB?stream=KEY, rediss://... (TLS)"

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> None:
        target = parse_redis_url(uri, SINK_OPTIONS)
        super().__init__(uri, ctx, queue_size, name=target.display)  # the stage name never holds the password
        self.settings = RedisSinkSettings.from_target(target)
        client = target.client()
        unreachable = check_server(client, target)  # bad credentials stop the run here
        if unreachable:
            log.warning("%s unreachable at start-up (%s): spooling until it answers", target.display, unreachable)
        spool = Spool(self.settings.spool, self.settings.spool_bytes)
        if len(spool):
            log.info("spool %s holds %d messages from an earlier run: publishing them first", spool.directory, len(spool))
        self.outbox = Outbox(spool, self.settings.buffer)
        self.publisher = Publisher(client, self.outbox, self.settings, target.display)
        self.left_in_spool = 0

    def work(self) -> None:
        self.publisher.start()
        super().work()

    def write(self, message: Message) -> None:
        self.outbox.offer(message.line)

    def write_events(self, events: tuple[Event, ...]) -> None:
        for event in events:
            self.outbox.offer(event.line)

    def finish(self) -> None:
        # Drain while Redis takes messages; on abort, or if Redis still fails, what is
        # left moves to the spool for the next run.
        self.publisher.finish()
        while not self.ctx.abort.is_set() and not self.publisher.gave_up.is_set() and self.publisher.is_alive():
            if self.outbox.wait_empty(0.1):
                break
        self.publisher.stop()
        self.left_in_spool = self.outbox.close()
        self.publisher.join(timeout=0.2)
        if self.left_in_spool:
            log.warning(
                "%s: %d messages left in spool %s; the next run with this spool publishes them first",
                self.name, self.left_in_spool, self.settings.spool,
            )

    def stats(self) -> dict[str, int]:
        return {
            "published": self.publisher.published,
            "spooled": self.outbox.spooled,
            "replayed": self.publisher.replayed,
            "dropped": self.outbox.spool.dropped + self.publisher.unreadable,
            "left in spool": self.left_in_spool,
        }
