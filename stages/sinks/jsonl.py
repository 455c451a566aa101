"""JSON Lines sink: `jsonl:PATH` (or `jsonl:-` for stdout).

Frame messages go to PATH; events (schema detstream.events/v1) to a file of their own
next to it, `events_path(PATH)` (`out/dets.jsonl` -> `out/dets.events.jsonl`), opened
when the first event comes. With stdout both go to stdout (tell them apart by `schema`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from pipeline.core.context import RunContext
from pipeline.core.errors import SinkError
from pipeline.core.events import Event
from pipeline.core.messages import Message
from stages.sinks.base import Sink

EVENTS_SUFFIX = ".events.jsonl"


def events_path(path: Path) -> Path:
    """Where the events of the messages file `path` go."""
    stem = path.name.removesuffix(".jsonl")
    return path.with_name(stem + EVENTS_SUFFIX)


def _open(uri: str, path: Path) -> TextIO:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
    except OSError as exc:
        raise SinkError(f"sink {uri!r}: cannot open {path}: {exc.strerror}") from exc


class JsonlSink(Sink):
    """One JSON message per line. Each line is written and flushed whole, so a run that
    is killed leaves only complete lines behind."""

    FORM = "jsonl:PATH (- for stdout; events go to PATH with .events.jsonl)"

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> None:
        super().__init__(uri, ctx, queue_size)
        target = uri.partition(":")[2]
        self.path = None if target == "-" else Path(target)
        self.file: TextIO = sys.stdout if self.path is None else _open(uri, self.path)
        self.events_file: TextIO | None = sys.stdout if self.path is None else None

    def write(self, message: Message) -> None:
        self.file.write(message.line + "\n")
        self.file.flush()

    def write_events(self, events: tuple[Event, ...]) -> None:
        if self.events_file is None:
            assert self.path is not None
            self.events_file = _open(self.uri, events_path(self.path))
        self.events_file.write("".join(event.line + "\n" for event in events))
        self.events_file.flush()

    def finish(self) -> None:
        for file in (self.file, self.events_file):
            if file is not None and file is not sys.stdout:
                file.close()
