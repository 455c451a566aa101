"""Bounded queues between stages.

`Channel` is a bounded FIFO with an explicit end-of-stream sentinel. `SourceMux` holds one
bounded queue per source and hands out batches round-robin, so no source starves and
each source has its own back-pressure: a file's reader blocks when its queue is full
(lossless), a live source's queue drops its oldest frame instead (latency stays bounded;
the caller counts the drop). Both wake up when the run is aborted, so no thread can block
forever on a queue whose other end has died.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any

# How often a blocked put/get re-checks the abort flag. Short enough for a 5 s shutdown.
POLL_S = 0.1


class Aborted(Exception):
    """Raised inside a stage when the run is aborted while it waits on a queue."""


class EndOfStream:
    """Sentinel passed downstream once all input of a stage is done."""

    def __repr__(self) -> str:
        return "END"


END = EndOfStream()


class Channel:
    """Bounded FIFO between two stages; put blocks when full (lossless).

    An `on_demand` channel also tells its producer when the consumer asks for the next
    item (`wait_for_demand`), so the producer can build that item just in time: for a
    live camera a batch prepared ahead of the detector only ages while it waits.
    """

    def __init__(self, maxsize: int, abort: threading.Event, on_demand: bool = False) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)
        self._abort = abort
        # one token per `get`: the consumer's requests not yet answered by the producer
        self._requests = threading.Semaphore(0) if on_demand else None

    def wait_for_demand(self) -> None:
        """Block until the consumer asks for an item; returns at once if not on demand."""
        if self._requests is None:
            return
        while not self._requests.acquire(timeout=POLL_S):
            if self._abort.is_set():
                raise Aborted

    def put(self, item: Any) -> None:
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def get(self) -> Any:
        if self._requests is not None:
            self._requests.release()
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def qsize(self) -> int:
        return self._queue.qsize()


class SourceMux:
    """Per-source bounded queues, read as batches in round-robin order."""

    def __init__(
        self,
        sources: list[str],
        maxsize: int | dict[str, int],
        abort: threading.Event,
        drop_oldest: frozenset[str] = frozenset(),
    ) -> None:
        self._queues: dict[str, deque[Any]] = {s: deque() for s in sources}
        self._open = set(sources)
        self._maxsize = maxsize if isinstance(maxsize, dict) else {s: maxsize for s in sources}
        self._drop_oldest = drop_oldest
        self._abort = abort
        self._cond = threading.Condition()
        self._next = 0  # round-robin position

    def put(self, source: str, item: Any) -> Any | None:
        """Append a frame of `source`; returns the frame that was not kept, if any.

        When the queue is full, a drop-oldest source evicts (and returns) its oldest frame;
        any other source blocks until there is room. A frame for a source that was already
        closed is not queued and is returned as well.
        """
        with self._cond:
            if source not in self._open:
                return item
            q = self._queues[source]
            evicted = None
            if source in self._drop_oldest and len(q) >= self._maxsize[source]:
                evicted = q.popleft()
            while len(q) >= self._maxsize[source]:
                if self._abort.is_set():
                    raise Aborted
                self._cond.wait(POLL_S)
            q.append(item)
            self._cond.notify_all()
            return evicted

    def close(self, source: str) -> None:
        """Mark `source` finished; its queued frames are still delivered."""
        with self._cond:
            self._open.discard(source)
            self._cond.notify_all()

    def get_batch(self, max_batch: int, max_wait_s: float) -> list[Any] | None:
        """Up to `max_batch` items, waiting at most `max_wait_s` once the first arrived.

        Returns None when every source is closed and drained.
        """
        batch: list[Any] = []
        deadline: float | None = None
        with self._cond:
            while len(batch) < max_batch:
                if self._abort.is_set():
                    raise Aborted
                self._take_round_robin(batch, max_batch)
                if len(batch) >= max_batch:
                    break
                if not self._open and not any(self._queues.values()):
                    break  # everything delivered
                if batch:
                    deadline = deadline or time.monotonic() + max_wait_s
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(min(remaining, POLL_S))
                else:
                    self._cond.wait(POLL_S)
            self._cond.notify_all()  # producers may have room now
        return batch or None

    def _take_round_robin(self, batch: list[Any], max_batch: int) -> None:
        names = list(self._queues)
        took = True
        while took and len(batch) < max_batch:
            took = False
            for offset in range(len(names)):
                name = names[(self._next + offset) % len(names)]
                if self._queues[name]:
                    batch.append(self._queues[name].popleft())
                    self._next = (self._next + offset + 1) % len(names)
                    took = True
                    break

    def depth(self, source: str) -> int:
        return len(self._queues[source])
