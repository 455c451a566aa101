"""Consume detstream messages from Redis Streams with a consumer group, at least once.

    consumer = Consumer(client, "detstream:{source}", ConsumerSettings(group="g", name="c1"))
    consumer.run(handler)          # handler(message: dict) -> None; raise to fail

One round (`step`):
1. entries this consumer was given before and never acknowledged (it crashed, the
   handler failed, or the connection broke: a reply lost with it) are read again first,
   from the start of its pending list;
2. entries of *other* consumers idle longer than `claim_idle_ms` are taken over with
   XAUTOCLAIM (their consumer is presumably dead);
3. new entries (XREADGROUP >), blocking up to `block_ms`.

An entry is acknowledged (XACK) only after the handler returned. A failing entry stays
pending and comes back through step 1 or 2; after `max_deliveries` deliveries it goes to
the dead-letter stream and is acknowledged. Repeats of an `event_id` already handled by
this consumer (a sink retry can publish a message twice) are acknowledged unhandled.
With `{source}` in the stream key, streams are found by SCAN and new ones picked up.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from pipeline.core.backoff import Backoff
from pipeline.core.secrets import redact

log = logging.getLogger("detstream")
Handler = Callable[[dict[str, Any]], None]
# retry delays while Redis is unreachable (jittered: consumers do not reconnect in lock-step)
MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 2.0
BACKOFF_JITTER = 0.2


@dataclass(frozen=True)
class ConsumerSettings:
    group: str
    name: str
    block_ms: int = 1000  # longest wait for new entries in one round
    count: int = 100  # entries per read
    claim_idle_ms: int = 60_000  # take over other consumers' entries idle this long
    max_deliveries: int = 5  # then the entry goes to the dead-letter stream
    dead_letter: str = "{stream}:dead"  # dead-letter stream key; {stream} is the source stream
    start: str = "0"  # where a new group starts reading: 0 = all retained entries, $ = new only
    dedupe: int = 100_000  # event ids remembered to drop repeats
    rescan_s: float = 5.0  # how often to look for new streams


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    failures: int = 0  # handler calls that raised
    dead_lettered: int = 0
    claimed: int = 0  # idle pending entries taken over (from dead consumers, or own retries)
    trimmed: int = 0  # pending entries MAXLEN deleted before anyone handled them

    def line(self) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in vars(self).items())


@dataclass
class Entry:
    stream: str
    id: str
    fields: dict[str, str]
    deliveries: int = 1


@dataclass
class _StreamState:
    own_pending_from: str | None = "0"  # where to resume re-reading own pending; None: done


class Consumer:
    def __init__(self, client: redis.Redis, stream: str, settings: ConsumerSettings) -> None:
        self.client = client
        self.stream = stream
        self.settings = settings
        self.stats = ConsumerStats()
        self._streams: dict[str, _StreamState] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._next_scan = 0.0
        self._next_claim = 0.0

    def run(self, handler: Handler, stop: threading.Event | None = None, idle_exit_s: float | None = None) -> ConsumerStats:
        """Consume until `stop` is set, or until nothing arrived for `idle_exit_s` seconds.

        Connection failures are logged and retried with backoff (Redis restarts are normal).
        """
        stop = stop or threading.Event()
        last_activity = time.monotonic()
        backoff, down = Backoff(MIN_BACKOFF_S, MAX_BACKOFF_S, BACKOFF_JITTER), False
        while not stop.is_set():
            try:
                worked = self.step(handler)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not down:
                    log.warning("consumer %s: Redis unreachable (%s), retrying", self.settings.name, redact(str(exc)))
                    down = True
                stop.wait(backoff.next_delay())
                continue
            if down:
                log.info("consumer %s: Redis answers again", self.settings.name)
                down = False
                backoff.reset()
            now = time.monotonic()
            if worked:
                last_activity = now
            elif idle_exit_s is not None and now - last_activity >= idle_exit_s:
                break
        return self.stats

    def step(self, handler: Handler) -> int:
        """One round (own pending, claims, new entries); returns entries dealt with."""
        try:
            return self._step(handler)
        except (redis.ConnectionError, redis.TimeoutError):
            # Redis may have delivered entries (XREADGROUP >, recorded in our pending list)
            # whose reply the broken connection lost: read our own pending list again at
            # once, not after claim_idle_ms; entries handled already are dropped by event_id
            for state in self._streams.values():
                state.own_pending_from = "0"
            raise
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis restarted without our group (no persistence): create it again
            log.warning("consumer %s: group %s is gone, creating it again", self.settings.name, self.settings.group)
            self._streams.clear()
            self._next_scan = 0.0
            return 0

    def _step(self, handler: Handler) -> int:
        now = time.monotonic()
        if now >= self._next_scan:
            self._discover()
            self._next_scan = now + self.settings.rescan_s
        if not self._streams:
            time.sleep(self.settings.block_ms / 1000)
            return 0
        done = 0
        for stream, state in self._streams.items():
            if state.own_pending_from is not None:
                done += self._own_pending(stream, state, handler)
        if now >= self._next_claim:
            for stream in self._streams:
                done += self._claim(stream, handler)
            # often enough that an idle entry waits at most ~1.5x the threshold
            self._next_claim = now + self.settings.claim_idle_ms / 2000
        if done:
            return done  # deal with the backlog before blocking on new entries
        reply = self.client.xreadgroup(
            self.settings.group, self.settings.name, {s: ">" for s in self._streams},
            count=self.settings.count, block=self.settings.block_ms,
        )
        for stream, items in reply or []:
            entries = [Entry(stream, entry_id, fields or {}) for entry_id, fields in items]
            done += self._process(entries, handler)
        return done

    # -- the three sources of entries

    def _own_pending(self, stream: str, state: _StreamState, handler: Handler) -> int:
        reply = self.client.xreadgroup(
            self.settings.group, self.settings.name, {stream: state.own_pending_from}, count=self.settings.count
        )
        items = reply[0][1] if reply else []
        if not items:
            state.own_pending_from = None  # all re-read; failures come back through claims
            return 0
        state.own_pending_from = items[-1][0]
        entries = [Entry(stream, entry_id, fields or {}) for entry_id, fields in items]
        self._fill_deliveries(entries)
        return self._process(entries, handler)

    def _claim(self, stream: str, handler: Handler) -> int:
        done, start = 0, "0-0"
        while True:
            reply = self.client.xautoclaim(
                stream, self.settings.group, self.settings.name,
                min_idle_time=self.settings.claim_idle_ms, start_id=start, count=self.settings.count,
            )
            start, items = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            self.stats.trimmed += len(deleted)  # XAUTOCLAIM already dropped them from the pending list
            entries = [Entry(stream, entry_id, fields or {}) for entry_id, fields in items]
            self.stats.claimed += len(entries)
            self._fill_deliveries(entries)
            done += self._process(entries, handler) + len(deleted)
            if start == "0-0":
                return done

    # -- handling

    def _fill_deliveries(self, entries: list[Entry]) -> None:
        """Delivery counts from the group's pending list (re-reads and claims raise them)."""
        if not entries:
            return
        stream = entries[0].stream
        pending = self.client.xpending_range(
            stream, self.settings.group, min=entries[0].id, max=entries[-1].id, count=len(entries) * 2 + 10,
        )
        counts = {p["message_id"]: p["times_delivered"] for p in pending}
        for entry in entries:
            entry.deliveries = counts.get(entry.id, entry.deliveries)

    def _process(self, entries: list[Entry], handler: Handler) -> int:
        acks: dict[str, list[str]] = {}
        dead: list[tuple[Entry, str]] = []
        for entry in entries:
            outcome = self._handle(entry, handler)
            if outcome is None:
                continue  # failed, stays pending for a later delivery
            if outcome:
                dead.append((entry, outcome))
            acks.setdefault(entry.stream, []).append(entry.id)
        if acks or dead:
            pipe = self.client.pipeline(transaction=False)
            for entry, reason in dead:
                fields = {**entry.fields, "dead_stream": entry.stream, "dead_id": entry.id,
                          "dead_group": self.settings.group, "deliveries": entry.deliveries, "reason": reason}
                pipe.xadd(self.settings.dead_letter.format(stream=entry.stream), fields)
            for stream, ids in acks.items():
                pipe.xack(stream, self.settings.group, *ids)
            pipe.execute()
        return len(entries)

    def _handle(self, entry: Entry, handler: Handler) -> str | None:
        """'' to acknowledge, a reason to dead-letter and acknowledge, None to leave pending."""
        if not entry.fields:
            self.stats.trimmed += 1  # pending, but MAXLEN deleted it before anyone handled it
            return ""
        where = f"{entry.stream} {entry.id}"
        if entry.deliveries > self.settings.max_deliveries:
            # earlier deliveries never came back (e.g. the handler crashed the process)
            self.stats.dead_lettered += 1
            log.error("%s: delivered %d times without success: dead-lettered", where, entry.deliveries)
            return f"delivered {entry.deliveries} times without an acknowledgement"
        try:
            message = json.loads(entry.fields["message"])
            event_id = str(message["event_id"])
        except (KeyError, ValueError, TypeError):
            self.stats.dead_lettered += 1
            log.error("%s: not a detstream message: dead-lettered", where)
            return "not a detstream message"
        if event_id in self._seen:
            self.stats.duplicates += 1
            return ""
        try:
            handler(message)
        except Exception as exc:  # noqa: BLE001 - a handler failure is data, not a crash
            self.stats.failures += 1
            reason = f"{type(exc).__name__}: {exc}"
            if entry.deliveries >= self.settings.max_deliveries:
                self.stats.dead_lettered += 1
                log.error("%s: handler failed on delivery %d of %d (%s): dead-lettered",
                          where, entry.deliveries, self.settings.max_deliveries, reason)
                return reason
            log.warning("%s: handler failed on delivery %d of %d (%s): will retry",
                        where, entry.deliveries, self.settings.max_deliveries, reason)
            return None
        self.stats.handled += 1
        self._seen[event_id] = None
        if len(self._seen) > self.settings.dedupe:
            self._seen.popitem(last=False)
        return ""

    # -- streams and groups

    def _discover(self) -> None:
        if "{source}" not in self.stream:
            found = [self.stream]
        else:
            pattern = self.stream.format(source="*")
            dead = self.settings.dead_letter.format(stream=pattern)
            found = sorted(k for k in self.client.scan_iter(match=pattern, _type="stream") if not fnmatch.fnmatchcase(k, dead))
        for stream in found:
            if stream in self._streams:
                continue
            try:
                self.client.xgroup_create(stream, self.settings.group, id=self.settings.start, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._streams[stream] = _StreamState()
