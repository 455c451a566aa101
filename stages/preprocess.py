"""Preprocess stage: batch frames round-robin across sources, letterbox, normalize.

The letterbox and normalization maths is engines/inputs.py (shared with training and
evaluation); the recorded geometry lets postprocess map boxes back to source pixels.
"""

from __future__ import annotations

from engines.base import ModelInfo
from engines.inputs import Normalizer
from pipeline.core.config import EngineBatchConfig
from pipeline.core.context import RunContext
from pipeline.core.queues import END, Channel, SourceMux
from pipeline.core.types import FrameBatch, Frame, SourceEnd
from stages.base import Stage


class Preprocess(Stage):
    def __init__(
        self,
        mux: SourceMux,
        output: Channel,
        info: ModelInfo,
        engine_batch: EngineBatchConfig,
        ctx: RunContext,
    ) -> None:
        super().__init__("preprocess", ctx)
        self.mux = mux
        self.output = output
        self.normalize = Normalizer(info)
        self.engine_batch = engine_batch

    def work(self) -> None:
        max_wait_s = self.engine_batch.max_wait_ms / 1000.0
        while True:
            self.output.wait_for_demand()  # live runs: frames are taken when the detector is free
            if (items := self.mux.get_batch(self.engine_batch.max_batch, max_wait_s)) is None:
                break
            frames = [item for item in items if isinstance(item, Frame)]
            if frames:
                started = self.metrics.arrived(frames)
                batch = self.prepare(frames)
                self.metrics.served(frames, started)
                self.output.put(batch)
            for end in items:  # a source's end follows its last frame, which is in this batch or before
                if isinstance(end, SourceEnd):
                    self.output.put(end)
        self.output.put(END)

    def on_stop(self) -> None:
        self.mux.release()  # a run with a control API stops waiting for new sources

    def prepare(self, frames: list[Frame]) -> FrameBatch:
        images, geometry = self.normalize([f.image for f in frames])
        for frame in frames:
            frame.stamp(self.name)
        return FrameBatch(frames, images, geometry)
