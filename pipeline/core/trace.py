"""Per-frame spans in Chrome's trace-event format (opens in ui.perfetto.dev, chrome://tracing).

One complete event ("ph": "X") per frame per stage, on the track of the stage's thread
(tid = the OS thread id, named by a "thread_name" metadata event). A batch's frames share
its span. Recording is only on under `detstream profile`, and bounded: past `limit`
events new spans are counted but not kept, and the report says so.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from pipeline.core.types import Frame

DEFAULT_LIMIT = 200_000  # about 30 MB of JSON; at 10 frames/s through 5 stages, over an hour


class Trace:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.origin: float | None = None  # ts 0: when the first stage thread started
        self.dropped = 0  # spans not kept because the limit was reached
        self._spans: list[tuple[int, str, float, float, str, int, int]] = []
        self._threads: dict[int, tuple[str, int]] = {}  # tid -> (stage name, position in the pipeline)
        self._lock = threading.Lock()  # several stage threads add spans

    def name_thread(self, tid: int, name: str, order: int) -> None:
        with self._lock:
            self.origin = self.origin or time.monotonic()
            self._threads[tid] = (name, order)

    def add(self, tid: int, stage: str, frames: Sequence[Frame], started: float, took: float) -> None:
        """One span per frame: `stage` worked on `frames` from `started` (monotonic) for `took` s."""
        with self._lock:
            if len(self._spans) + len(frames) > self.limit:
                self.dropped += len(frames)
                return
            for frame in frames:
                self._spans.append((tid, stage, started, took, frame.source, frame.seq, len(frames)))

    @property
    def events(self) -> int:
        return len(self._spans)

    def to_chrome(self) -> dict[str, Any]:
        """The trace as a JSON-ready dict: {"traceEvents": [...], ...}."""
        pid = os.getpid()
        with self._lock:
            spans = list(self._spans)
            threads = dict(self._threads)
            origin = self.origin or 0.0
        events: list[dict[str, Any]] = [
            {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "detstream"}},
        ]
        for tid, (name, order) in threads.items():
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
            # tracks in pipeline order (decode first, sinks last) rather than by tid
            events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": order}})
        for tid, stage, started, took, source, seq, batch in spans:
            events.append({
                "ph": "X", "name": stage, "cat": "stage", "pid": pid, "tid": tid,
                "ts": round((started - origin) * 1e6, 1), "dur": round(took * 1e6, 1),
                "args": {"source": source, "seq": seq, "batch": batch},
            })
        return {
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "otherData": {"spans": len(spans), "limit": self.limit, "dropped_spans": self.dropped},
        }
