"""Decode stage for files: one thread per source, reading with the frame reader.

Files are lossless: every kept frame is put on the source's queue, blocking while it is
full. A source that cannot be read is reported once and closed; the others continue.
The reading itself (PyAV demux + decode into RGB frames) is stages/reader.py; live
sources (stages/live.py) reuse this stage and add reconnects.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from pipeline.core.config import SourceConfig
from pipeline.core.context import RunContext
from pipeline.core.queues import SourceMux
from pipeline.core.types import SourceEnd
from stages.base import Stage
from stages.reader import FrameReader


class Decoder(Stage):
    def __init__(
        self,
        config: SourceConfig,
        source: str,
        mux: SourceMux,
        ctx: RunContext,
        max_frames: int | None = None,
        on_end: Callable[[SourceEnd], None] | None = None,
    ) -> None:
        """`on_end`: told how many frames the file gave once it is read to its end (or failed)."""
        super().__init__(f"decode[{source}]", ctx)
        self.on_end = on_end
        self.config = config
        self.source = source
        self.mux = mux
        self.reader = FrameReader(self, config, source, partial(mux.put, source), max_frames)
        self.health = self.reader.health

    @property
    def frames(self) -> int:
        """Frames put downstream so far."""
        return self.reader.frames

    def work(self) -> None:
        self.reader.read_file()
        if self.on_end is not None:
            self.on_end(SourceEnd(self.source, self.frames))

    def finish(self) -> None:
        self.mux.close(self.source)
