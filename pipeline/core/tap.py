"""Latest-frame taps: a watcher (the live page) sees a source's newest Message, and the
pipeline pays nothing for sources nobody watches.

The track stage `offer`s every Message; when no one watches its source that is one dict
lookup. A watcher keeps only the newest message (a slow viewer skips frames, it never
holds the pipeline back), and whoever watches does the costly work (drawing, JPEG) in its
own thread, at its own rate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.core.messages import Message


class Watcher:
    def __init__(self) -> None:
        self._latest: Message | None = None
        self._cond = threading.Condition()

    def put(self, message: Message) -> None:
        with self._cond:
            self._latest = message
            self._cond.notify_all()

    def next(self, timeout_s: float) -> Message | None:
        """The newest message not yet taken, waiting up to `timeout_s`; None if none came."""
        with self._cond:
            if self._latest is None:
                self._cond.wait(timeout_s)
            message, self._latest = self._latest, None
            return message


class FrameTap:
    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = {}
        self._lock = threading.Lock()

    def offer(self, message: Message) -> None:
        watchers = self._watchers.get(message.detections.frame.source)
        if watchers:
            for watcher in list(watchers):
                watcher.put(message)

    @contextmanager
    def watch(self, source: str) -> Iterator[Watcher]:
        watcher = Watcher()
        with self._lock:
            self._watchers.setdefault(source, set()).add(watcher)
        try:
            yield watcher
        finally:
            with self._lock:
                self._watchers[source].discard(watcher)
                if not self._watchers[source]:
                    del self._watchers[source]

    def watching(self, source: str) -> int:
        return len(self._watchers.get(source, ()))
