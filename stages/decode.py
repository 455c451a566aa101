"""Decode stage for files: one thread per source, reading with the frame reader.

Files are lossless: every kept frame is put on the source's queue, blocking while it is
full. When the reader is done (end of file, failure, or the source is stopped) the
source's `SourceEnd` goes into its queue behind its last frame. A source that cannot be read is reported once and closed; the others continue.
The reading itself (PyAV demux + decode into RGB frames) is stages/reader.py; live
sources (stages/live.py) reuse this stage and add reconnects.
"""

from __future__ import annotations

import threading
from functools import partial

from pipeline.core.config import SourceConfig
from pipeline.core.context import RunContext
from pipeline.core.queues import SourceMux
from pipeline.core.types import SourceEnd
from stages.base import Stage
from stages.reader import FrameReader, PacketSink


class Decoder(Stage):
    def __init__(
        self,
        config: SourceConfig,
        source: str,
        mux: SourceMux,
        ctx: RunContext,
        max_frames: int | None = None,
        first_seq: int = 0,
        packets: PacketSink | None = None,
    ) -> None:
        """`packets`: where the source's encoded packets go too (the clips' buffer)."""
        super().__init__(f"decode[{source}]", ctx)
        self.stop = threading.Event()  # this source only (removed at runtime); the run's is ctx.stop_reading
        self.config = config
        self.source = source
        self.mux = mux
        self.reader = FrameReader(self, config, source, partial(mux.put, source), max_frames, first_seq, packets)
        self.health = self.reader.health

    @property
    def frames(self) -> int:
        """Frames put downstream so far."""
        return self.reader.frames

    def stopping(self) -> bool:
        return self.stop.is_set() or self.ctx.stop_reading.is_set()

    def work(self) -> None:
        self.reader.read_file()

    def finish(self) -> None:
        # its end follows its last frame through the pipeline: the track stage ends its tracks then
        self.mux.close(self.source, SourceEnd(self.source))
