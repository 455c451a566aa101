"""JSON Lines sink: `jsonl:PATH` (or `jsonl:-` for stdout)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from pipeline.core.context import RunContext
from pipeline.core.errors import SinkError
from pipeline.core.messages import Message
from stages.sinks.base import Sink


class JsonlSink(Sink):
    """One JSON message per line. Each line is written and flushed whole, so a run that
    is killed leaves only complete lines behind."""

    FORM = "jsonl:PATH (- for stdout)"

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> None:
        super().__init__(uri, ctx, queue_size)
        path = uri.partition(":")[2]
        self.file: TextIO
        if path == "-":
            self.file = sys.stdout
        else:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
            except OSError as exc:
                raise SinkError(f"sink {uri!r}: cannot open {path}: {exc.strerror}") from exc

    def write(self, message: Message) -> None:
        self.file.write(message.line + "\n")
        self.file.flush()

    def finish(self) -> None:
        if self.file is not sys.stdout:
            self.file.close()
