"""What the control API may do to a running pipeline: the `SourceControl` protocol.

`detstream run` implements it over its live stage graph (pipeline/run/sources.py); the
HTTP API (pipeline/api/) only translates requests into these calls and their errors
into status codes: ConfigError -> 422 (the message names the field), UnknownSource ->
404, SourceExists -> 409. Every method is thread-safe and returns plain JSON-able values
with credentials masked; none of them stops or delays another source.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from pipeline.core.tap import Watcher

# the keys PATCH /sources/{name} may change, everything else of a source is fixed once added
UPDATABLE = ("enabled", "classes", "score_threshold", "score_thresholds", "max_fps", "zones", "lines", "roi", "tracking")


class SourceControl(Protocol):
    def live(self) -> bool:
        """The process serves requests (the pipeline has not stopped)."""

    def ready(self) -> dict[str, Any]:
        """{"ready": bool, "model_loaded": bool, "sources": {name: state}}: ready once the
        model is loaded and every enabled source is streaming or finished."""

    def sources(self) -> list[dict[str, Any]]:
        """Each source: name, settings (masked), state, counters, last frame time, fps."""

    def source(self, name: str) -> dict[str, Any]:
        """One source as in `sources`; UnknownSource if there is none of that name."""

    def add(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Start a source (validated like a config entry; ConfigError names the field)."""

    def remove(self, name: str) -> None:
        """Stop a source: its reader stops, its queued frames drain, its tracks end, its
        threads and sockets are freed; returns once all that is done."""

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change keys of UPDATABLE of a running source; returns the source."""

    def config(self) -> dict[str, Any]:
        """The effective run config, with credentials masked."""

    def watch(self, name: str) -> AbstractContextManager[Watcher]:
        """Newest Messages of a source while the context is open (pipeline/core/tap.py);
        UnknownSource if there is none of that name."""
