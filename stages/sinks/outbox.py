"""Hand-over between a producer that must never wait and a publisher that may stall.

Records are kept in one order: the chunk the publisher holds, then a bounded in-memory
buffer, then the spool on disk. `offer` never blocks: it appends to the buffer, or once
the buffer is full to the spool, and keeps appending to the spool until the publisher has
read the spool to its end (otherwise newer records could overtake spooled ones). The
publisher `take`s the oldest chunk and calls `done` once it is delivered; a chunk that
was not `done` is handed out again. `close` moves what is still in memory to the front
of the spool, so nothing is lost when the process ends with the publisher stalled.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from stages.sinks.spool import Cursor, Spool


@dataclass(frozen=True)
class Chunk:
    lines: list[str]
    cursor: Cursor | None = None  # set when the lines come from the spool

    @property
    def from_spool(self) -> bool:
        return self.cursor is not None


class Outbox:
    def __init__(self, spool: Spool, capacity: int) -> None:
        self.spool = spool
        self.capacity = capacity
        self.spooled = 0  # records this process wrote to the spool
        self._buffer: deque[str] = deque()
        self._spooling = len(spool) > 0  # a previous run's spool goes out first
        self._in_flight: Chunk | None = None
        self._closed = False
        self._left = 0  # records in the spool at close()
        self._cond = threading.Condition()

    def offer(self, line: str) -> None:
        with self._cond:
            if self._spooling or len(self._buffer) >= self.capacity:
                self.spool.append(line)
                self.spooled += 1
                self._spooling = True
            else:
                self._buffer.append(line)
            self._cond.notify_all()

    def take(self, limit: int, timeout_s: float) -> Chunk | None:
        """The oldest chunk not delivered yet (the same one again until `done`)."""
        with self._cond:
            if self._in_flight is None and not self._closed:
                self._in_flight = self._next(limit)
                if self._in_flight is None:
                    self._cond.wait(timeout_s)
                    self._in_flight = self._next(limit)
            return self._in_flight

    def done(self, chunk: Chunk) -> None:
        with self._cond:
            if self._closed or chunk is not self._in_flight:
                return  # close() already put it back into the spool
            if chunk.cursor is not None:
                self.spool.commit(chunk.cursor)
            self._in_flight = None
            self._cond.notify_all()

    def wait_empty(self, timeout_s: float) -> bool:
        """True once nothing is waiting (in memory or in the spool)."""
        with self._cond:
            if not self._empty():
                self._cond.wait(timeout_s)
            return self._empty()

    def close(self) -> int:
        """Persist what is in memory to the spool's front; returns the records left in the spool."""
        with self._cond:
            if not self._closed:
                self._closed = True
                held = self._in_flight.lines if self._in_flight and not self._in_flight.from_spool else []
                self.spooled += len(held) + len(self._buffer)
                self.spool.push_front([*held, *self._buffer])
                self._buffer.clear()
                self._in_flight = None
                left = len(self.spool)
                self.spool.close()
                self._cond.notify_all()
                self._left = left
            return self._left

    def _next(self, limit: int) -> Chunk | None:
        if self._buffer:
            count = min(limit, len(self._buffer))
            return Chunk([self._buffer.popleft() for _ in range(count)])
        if self._spooling:
            peeked = self.spool.peek(limit)
            if peeked is not None:
                return Chunk(*peeked)
            self._spooling = False  # read to the end: newer records may use the buffer again
        return None

    def _empty(self) -> bool:
        return self._in_flight is None and not self._buffer and not (self._spooling and len(self.spool) > 0)
