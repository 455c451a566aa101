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
from collections.abc import Callable
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

    def get(self, on_idle: Callable[[], object] | None = None) -> Any:
        """The next item; `on_idle()` is called in this (the consumer's) thread every
        POLL_S that passes without one (the track stage publishes finished clips then)."""
        if self._requests is not None:
            self._requests.release()
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if on_idle is not None:
                    on_idle()

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
        keep_open: bool = False,
    ) -> None:
        """`keep_open`: with no source left the mux still waits for sources `add`ed later
        (a run with a control API), until `release`."""
        self._queues: dict[str, deque[Any]] = {s: deque() for s in sources}
        self._open = set(sources)
        self._maxsize = dict(maxsize) if isinstance(maxsize, dict) else {s: maxsize for s in sources}
        self._drop_oldest = set(drop_oldest)
        self._keep_open = keep_open
        self._abort = abort
        self._cond = threading.Condition()
        self._next = 0  # round-robin position

    def add(self, source: str, maxsize: int, drop_oldest: bool) -> None:
        """A new source, read round-robin with the others from now on."""
        with self._cond:
            if source in self._queues:
                raise ValueError(f"source {source!r} is already in the mux")
            self._queues[source] = deque()
            self._open.add(source)
            self._maxsize[source] = maxsize
            if drop_oldest:
                self._drop_oldest.add(source)
            self._cond.notify_all()

    def release(self) -> None:
        """No more sources will be added: `get_batch` ends once every source is drained."""
        with self._cond:
            self._keep_open = False
            self._cond.notify_all()

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
                if source not in self._open:  # closed while this reader waited for room
                    return item
            q.append(item)
            self._cond.notify_all()
            return evicted

    def close(self, source: str, marker: Any = None) -> None:
        """Mark `source` finished; its queued frames are still delivered, then `marker`
        (if given: an in-band end of the source). Closing twice does nothing more."""
        with self._cond:
            if source in self._open:
                self._open.discard(source)
                if marker is not None:
                    self._queues[source].append(marker)
                self._forget_if_drained(source)
            self._cond.notify_all()

    def _forget_if_drained(self, source: str) -> None:
        if source not in self._open and source in self._queues and not self._queues[source]:
            del self._queues[source]
            self._maxsize.pop(source, None)
            self._drop_oldest.discard(source)

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
                if not self._open and not self._queues and not self._keep_open:
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
        took = True
        while took and len(batch) < max_batch:
            took = False
            names = list(self._queues)
            for offset in range(len(names)):
                name = names[(self._next + offset) % len(names)]
                if self._queues[name]:
                    batch.append(self._queues[name].popleft())
                    self._next = (self._next + offset + 1) % len(names)
                    self._forget_if_drained(name)  # a closed source is gone once its queue is
                    took = True
                    break

    def depth(self, source: str) -> int:
        return len(self._queues.get(source, ()))
