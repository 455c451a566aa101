"""The delivery loop of every push sink (Redis Streams, webhook, MQTT), written once.

A push sink never makes the pipeline wait for its receiver. `write` only hands a record
(one JSON line) to an Outbox (a bounded buffer in memory, then the spool on disk); one
Publisher thread per sink takes the oldest chunk and gives it to the sink's Transport,
which is all that differs between the kinds. Rules:

- A chunk is `done` (and leaves the spool) only once the transport returned for all of
  it. A transport that cannot deliver raises `SendFailed`; the same chunk is tried again
  after the shared jittered Backoff (each transport sets its bounds), skipping the records
  at its front that `SendFailed.progress` says were handled.
- Records the receiver refuses for good (`rejected`) or that are not messages
  (`unreadable`, e.g. a spool edited by hand) are dropped and counted, never retried.
- The first failure of an outage is logged once (foreign error text redacted by the
  transport), and so is the recovery; meanwhile records go to the spool.
- At the end of the run the sink delivers what the receiver takes, retrying a failure
  quickly up to FINISH_ATTEMPTS times (a receiver answering 503 once must not strand the
  last records); then, or on an abort, the rest stays in the spool, which the next run
  with that spool delivers before anything new.
- The publisher thread owns the transport: `send`, `idle` (nothing waiting: keepalives,
  retained state) and `close` (last, before the thread ends) all run in it, so
  transports need no locks.

Delivery is at-least-once: a record whose acknowledgement was lost is sent again, with
the same `event_id`; receivers deduplicate by it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.core.backoff import Backoff
from pipeline.core.context import RunContext
from pipeline.core.events import Event
from pipeline.core.files import cache_folder
from pipeline.core.uri_options import UriOptions
from stages.sinks.base import Sink
from stages.sinks.outbox import Chunk, Outbox
from stages.sinks.spool import Spool

log = logging.getLogger("detstream")
# jitter of every push sink's retry delays: many detectors do not all come back at once
# after their receiver restarts
BACKOFF_JITTER = 0.2
TAKE_WAIT_S = 0.1  # how long the publisher waits for records before calling `idle`
CLOSE_WAIT_S = 2.0  # the publisher's `close` (e.g. MQTT's final retained state) gets this long
FINISH_ATTEMPTS = 3  # failed attempts once the run is over before the rest is left in the spool


def delivery_options(batch: str, spool: str) -> dict[str, str]:
    """Help of the options every push sink takes; `batch` and `spool` describe the kind's defaults."""
    return {
        "batch": batch,
        "buffer": "records held in memory while the receiver is slow, before the spool takes over (default 1000)",
        "spool": f"spool directory (default {spool}, under $DETSTREAM_CACHE if set)",
        "spool_mb": "spool size bound in MB; beyond it the oldest records are dropped and counted (default 256)",
    }


def spool_folder(name: str) -> Path:
    """The default spool directory `name` of a sink (one per receiver: a spool has one owner)."""
    return cache_folder() / "spool" / name


@dataclass(frozen=True)
class DeliverySettings:
    batch: int  # records taken from the outbox at once
    buffer: int
    spool: Path
    spool_bytes: int

    @classmethod
    def from_options(cls, options: UriOptions, default_spool: Path, default_batch: int) -> DeliverySettings:
        return cls(
            batch=int(options.number("batch", default_batch, minimum=1)),
            buffer=int(options.number("buffer", 1000, minimum=1)),
            spool=Path(options.get("spool") or default_spool).expanduser(),
            spool_bytes=int(options.number("spool_mb", 256, minimum=0.001, integer=False) * 1e6),
        )


@dataclass
class Progress:
    """What happened to the records at the front of a chunk, in order."""

    delivered: int = 0  # the receiver took them
    rejected: int = 0  # the receiver refused them for good
    unreadable: int = 0  # not messages: nothing to send

    @property
    def handled(self) -> int:
        return self.delivered + self.rejected + self.unreadable


class SendFailed(Exception):
    """The receiver could not be reached or did not confirm; retry later. `reason` is safe
    to log (credentials masked); `progress` counts the records at the front that were handled."""

    def __init__(self, reason: str, progress: Progress | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.progress = progress or Progress()


class Transport(Protocol):
    """How one push sink kind talks to its receiver (used from the publisher thread only)."""

    retry_s: tuple[float, float]  # shortest and longest wait between attempts

    def send(self, lines: list[str], replay: bool) -> Progress:
        """Deliver `lines` in order (`replay`: they come from the spool); raise SendFailed if it cannot."""
        ...

    def idle(self) -> bool:
        """Nothing waits: housekeeping. True if it reached the receiver, False if it did nothing."""
        ...

    def close(self) -> None:
        """The run is over (last call)."""
        ...


class Publisher(threading.Thread):
    """Takes chunks of records from the outbox and has the transport deliver them."""

    def __init__(self, transport: Transport, outbox: Outbox, batch: int, display: str) -> None:
        super().__init__(name=f"publisher[{display}]", daemon=True)
        self.transport = transport
        self.outbox = outbox
        self.batch = batch
        self.display = display
        self.published = 0
        self.replayed = 0
        self.rejected = 0
        self.unreadable = 0
        self.down = threading.Event()  # the last attempt failed
        self.gave_up = threading.Event()  # finishing, and the receiver still fails
        self.finishing = threading.Event()
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._backoff = Backoff(*transport.retry_s, BACKOFF_JITTER)
        self._partial: tuple[Chunk, int] | None = None  # a chunk and how many of its records are handled
        self._finish_failures = 0  # failed attempts since finish()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                chunk = self.outbox.take(self.batch, timeout_s=TAKE_WAIT_S)
                try:
                    if chunk is None:
                        if self.transport.idle():
                            self._answered()
                    else:
                        self._deliver(chunk)
                        self._answered()
                except SendFailed as exc:
                    self._failed(exc.reason)
                    # once the run is over, retry from the shortest delay: the run waits for us
                    finishing = self._finish_failures
                    self._wake.wait(self._backoff.delay(finishing) if finishing else self._backoff.next_delay())
                    self._wake.clear()
        finally:
            self.transport.close()

    def finish(self) -> None:
        """Last call: deliver what is left; FINISH_ATTEMPTS more failures mean give up (it stays spooled)."""
        self.finishing.set()
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def _deliver(self, chunk: Chunk) -> None:
        skip = self._partial[1] if self._partial and self._partial[0] is chunk else 0
        try:
            progress = self.transport.send(chunk.lines[skip:], chunk.from_spool)
        except SendFailed as exc:
            self._count(exc.progress, chunk)
            self._partial = (chunk, skip + exc.progress.handled)
            raise
        self._partial = None
        self._count(progress, chunk)
        self.outbox.done(chunk)

    def _count(self, progress: Progress, chunk: Chunk) -> None:
        self.published += progress.delivered
        self.rejected += progress.rejected
        self.unreadable += progress.unreadable
        if chunk.from_spool:
            self.replayed += progress.delivered
        if progress.unreadable:
            log.warning("%s: skipped %d spooled lines that are not messages", self.display, progress.unreadable)

    def _answered(self) -> None:
        if self.down.is_set():
            log.info("%s answers again: delivering the spool first", self.display)
            self.down.clear()
        self._backoff.reset()

    def _failed(self, reason: str) -> None:
        log.debug("%s: attempt failed: %s", self.display, reason)
        if not self.down.is_set():
            log.warning("%s: cannot deliver (%s): keeping records in %s until it answers",
                        self.display, reason, self.outbox.spool.directory)
            self.down.set()
        if self.finishing.is_set():
            self._finish_failures += 1
            if self._finish_failures >= FINISH_ATTEMPTS:
                self.gave_up.set()


class PushSink(Sink):
    """A sink whose records a Publisher delivers through `transport`. Subclasses make the
    transport (checking everything that can be checked at start-up first), then call this
    `__init__`, and `offer` lines from `write` / `write_events` (events by default)."""

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, display: str,
                 transport: Transport, settings: DeliverySettings) -> None:
        super().__init__(uri, ctx, queue_size, name=display)  # the stage name never holds a password
        self.delivery = settings
        spool = Spool(settings.spool, settings.spool_bytes)
        if len(spool):
            log.info("spool %s holds %d records from an earlier run: delivering them first", spool.directory, len(spool))
        self.outbox = Outbox(spool, settings.buffer)
        self.publisher = Publisher(transport, self.outbox, settings.batch, display)
        self.left_in_spool = 0

    def work(self) -> None:
        self.publisher.start()
        super().work()

    def offer(self, line: str) -> None:
        self.outbox.offer(line)

    def write_events(self, events: tuple[Event, ...]) -> None:
        for event in events:
            self.outbox.offer(event.line)

    def finish(self) -> None:
        # Drain while the receiver takes records; on abort, or if it still fails, what is
        # left moves to the spool for the next run.
        if self.publisher.is_alive():
            self.publisher.finish()
            while not self.ctx.abort.is_set() and not self.publisher.gave_up.is_set() and self.publisher.is_alive():
                if self.outbox.wait_empty(0.1):
                    break
            self.publisher.stop()
        self.left_in_spool = self.outbox.close()
        if self.publisher.is_alive():
            self.publisher.join(timeout=0.2 if self.ctx.abort.is_set() else CLOSE_WAIT_S)
        if self.left_in_spool:
            log.warning(
                "%s: %d records left in spool %s; the next run with this spool delivers them first",
                self.name, self.left_in_spool, self.delivery.spool,
            )

    def stats(self) -> dict[str, int]:
        return {
            "published": self.publisher.published,
            "spooled": self.outbox.spooled,
            "replayed": self.publisher.replayed,
            "dropped": self.outbox.spool.dropped + self.publisher.unreadable,
            "left in spool": self.left_in_spool,
        }
