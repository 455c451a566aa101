"""A bounded, append-only queue of text lines on disk, read back in order.

The Redis sink writes here what it cannot publish yet. The spool is a directory of
segment files `<n>.spool`, one line per record; records are read from the lowest segment
number up. Appends go to the newest segment, which is closed at 1/8 of the size bound.
Over the bound the *oldest* segment is deleted and its records are counted in `dropped`:
when the disk budget runs out, recent detections are worth more than old ones.

Reads do not remove anything: `peek` returns records and a cursor, and `commit(cursor)`
once they are safely elsewhere. A crash between the two replays those records again
(at-least-once). Each write is flushed whole, so a killed process leaves whole lines
(a torn last line is cut off when the spool is opened again). A lock file keeps two
processes from sharing one spool. Not thread-safe: the owner serialises calls.
"""

from __future__ import annotations

import fcntl
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.core.errors import SinkError
from pipeline.core.files import write_atomic

log = logging.getLogger("detstream")
SEGMENTS_PER_BOUND = 8
FIRST_SEGMENT = 1_000_000  # leaves room below for push_front


@dataclass
class Segment:
    number: int
    path: Path
    size: int  # bytes
    count: int  # records


@dataclass(frozen=True)
class Cursor:
    """Where a peek started and ended, so commit can check nothing moved meanwhile."""

    segment: int
    start: int
    end: int
    count: int


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = max(1, max_bytes // SEGMENTS_PER_BOUND)
        self.dropped = 0  # records deleted by the size bound
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.directory / "lock", "a")  # noqa: SIM115 - held until close()
        except OSError as exc:
            raise SinkError(f"spool {self.directory}: cannot create it: {exc.strerror}") from exc
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock.close()
            raise SinkError(f"spool {self.directory} is in use by another detstream process") from exc
        self._segments = [self._load(path) for path in self._segment_paths()]
        self._read_offset = 0  # bytes of the first segment already committed
        self._read_count = 0
        self._tail: BinaryIO | None = None  # append handle on the last segment

    def __len__(self) -> int:
        """Records not committed yet."""
        return sum(s.count for s in self._segments) - self._read_count

    @property
    def size(self) -> int:
        """Bytes on disk not committed yet."""
        return sum(s.size for s in self._segments) - self._read_offset

    def append(self, line: str) -> None:
        data = line.encode() + b"\n"
        if not self._segments or self._segments[-1].size >= self.segment_bytes or self._tail is None:
            self._start_segment()
        assert self._tail is not None
        self._tail.write(data)
        self._tail.flush()
        self._segments[-1].size += len(data)
        self._segments[-1].count += 1
        self._enforce_bound()

    def push_front(self, lines: list[str]) -> None:
        """Write `lines` so that they are read before everything already spooled."""
        if not lines:
            return
        self._rewrite_head()  # a partly read first segment must not be read again
        number = self._segments[0].number - 1 if self._segments else FIRST_SEGMENT
        path = self.directory / f"{number}.spool"
        data = "".join(line + "\n" for line in lines).encode()
        write_atomic(path, data)
        self._segments.insert(0, Segment(number, path, len(data), len(lines)))
        self._enforce_bound()

    def peek(self, limit: int) -> tuple[list[str], Cursor] | None:
        """Up to `limit` of the oldest records (from one segment), or None if empty."""
        while self._segments:
            head = self._segments[0]
            if self._read_offset < head.size:
                with open(head.path, "rb") as f:
                    f.seek(self._read_offset)
                    raw = [f.readline() for _ in range(limit)]
                lines = [r for r in raw if r.endswith(b"\n")]
                end = self._read_offset + sum(len(r) for r in lines)
                cursor = Cursor(head.number, self._read_offset, end, len(lines))
                return [r[:-1].decode(errors="replace") for r in lines], cursor
            self._drop_head(counted=False)  # empty (left so by an earlier process)
        return None

    def commit(self, cursor: Cursor) -> None:
        """The records of `cursor` are delivered: forget them, delete finished segments."""
        if not self._segments or self._segments[0].number != cursor.segment or self._read_offset != cursor.start:
            return  # the bound deleted them meanwhile; they were counted as dropped
        self._read_offset = cursor.end
        self._read_count += cursor.count
        head = self._segments[0]
        if self._read_offset >= head.size:
            self._drop_head(counted=False)

    def close(self) -> None:
        """Persist the read position (rewrite a partly read segment) and unlock."""
        if self._tail is not None:
            self._tail.close()
            self._tail = None
        self._rewrite_head()
        for segment in self._segments:
            if segment.size == 0:
                segment.path.unlink(missing_ok=True)
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    # -- internals

    def _segment_paths(self) -> list[Path]:
        found = []
        for path in self.directory.glob("*.spool"):
            try:
                found.append((int(path.stem), path))
            except ValueError:
                continue  # not ours
        return [path for _, path in sorted(found)]

    def _load(self, path: Path) -> Segment:
        data = path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        if len(whole) < len(data):  # a write cut short by a crash
            log.warning("spool %s: cutting off a torn last record (%d bytes)", path, len(data) - len(whole))
            with open(path, "r+b") as f:
                f.truncate(len(whole))
        return Segment(int(path.stem), path, len(whole), whole.count(b"\n"))

    def _start_segment(self) -> None:
        if self._tail is not None:
            self._tail.close()
        if self._segments and self._segments[-1].size < self.segment_bytes:
            last = self._segments[-1]  # reopen a segment left by an earlier process
        else:
            number = self._segments[-1].number + 1 if self._segments else FIRST_SEGMENT
            last = Segment(number, self.directory / f"{number}.spool", 0, 0)
            self._segments.append(last)
        self._tail = open(last.path, "ab")  # noqa: SIM115 - closed by close() or the next segment

    def _drop_head(self, counted: bool) -> None:
        head = self._segments.pop(0)
        if counted:
            self.dropped += head.count - self._read_count
        if not self._segments and self._tail is not None:
            self._tail.close()
            self._tail = None
        head.path.unlink(missing_ok=True)
        self._read_offset = 0
        self._read_count = 0

    def _enforce_bound(self) -> None:
        while self.size > self.max_bytes and len(self._segments) > 1:
            log.warning("spool %s over %d bytes: dropping its oldest %d records", self.directory, self.max_bytes,
                        self._segments[0].count - self._read_count)
            self._drop_head(counted=True)

    def _rewrite_head(self) -> None:
        """Cut the committed part off the first segment, so it is not read again later."""
        if not self._segments or self._read_offset == 0:
            return
        head = self._segments[0]
        if head is self._segments[-1] and self._tail is not None:
            self._tail.close()
            self._tail = None
        data = head.path.read_bytes()[self._read_offset :]
        write_atomic(head.path, data)
        head.size -= self._read_offset
        head.count -= self._read_count
        self._read_offset = 0
        self._read_count = 0
