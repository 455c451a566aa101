"""Detect stage: runs the engine on each batch. Knows nothing about the backend."""

from __future__ import annotations

from collections import Counter

from engines.base import Engine
from pipeline.context import RunContext
from pipeline.errors import StageError
from pipeline.queues import END, Channel
from stages.base import Stage


class Detect(Stage):
    def __init__(self, engine: Engine, source: Channel, output: Channel, ctx: RunContext) -> None:
        super().__init__("detect", ctx)
        self.engine = engine
        self.input = source
        self.output = output
        self.batch_sizes: Counter[int] = Counter()  # engine calls per batch size

    def work(self) -> None:
        while (batch := self.input.get()) is not END:
            outputs = self.engine.infer(batch.images, [g.resized_size for g in batch.geometry])
            if len(outputs) != len(batch):
                raise StageError(f"engine returned {len(outputs)} outputs for a batch of {len(batch)}")
            for frame in batch.frames:
                frame.stamp(self.name)
            self.batch_sizes[len(batch)] += 1
            self.ctx.count(self.name, len(batch))
            self.output.put((batch, outputs))
        self.output.put(END)
