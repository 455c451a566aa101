"""Detect stage: runs the engine on each batch. Knows nothing about the backend.

Latency bound: a frame of a live source that is older than its source's max age when it
reaches the detector is dropped here (and counted), because detections that late are of
no use to whoever watches the camera, and skipping it lets the detector catch up.
"""

from __future__ import annotations

import time
from collections import Counter

from engines.base import Engine
from pipeline.core.context import RunContext
from pipeline.core.health import TOO_OLD
from pipeline.core.queues import END, Channel
from pipeline.core.types import FrameBatch, Inference, SourceEnd
from stages.base import Stage


class Detect(Stage):
    def __init__(
        self,
        engine: Engine,
        upstream: Channel,
        output: Channel,
        ctx: RunContext,
        max_age_s: dict[str, float] | None = None,
    ) -> None:
        super().__init__("detect", ctx)
        self.engine = engine
        self.input = upstream
        self.output = output
        self.max_age_s = max_age_s if max_age_s is not None else {}  # per source (shared, may change); absent: never dropped
        self.batch_sizes: Counter[int] = Counter()  # engine calls per batch size

    def work(self) -> None:
        while (batch := self.input.get()) is not END:
            if isinstance(batch, SourceEnd):
                self.output.put(batch)
                continue
            started = self.metrics.arrived(batch.frames)
            ages = self._ages_ms(batch)
            batch = self._drop_stale(batch, ages)
            if batch is None:
                continue
            # checked on construction: one output per frame
            sizes = [g.resized_size for g in batch.geometry]
            if batch.proposals is None:
                outputs = self.engine.infer(batch.images, sizes)
            else:  # R-CNN, Fast R-CNN: the proposals stage's boxes (only their engines take the argument)
                outputs = self.engine.infer(batch.images, sizes, batch.proposals)
            inference = Inference(batch, outputs)
            for frame in batch.frames:
                frame.stamp(self.name)
                if frame.source in self.ctx.health:
                    self.ctx.health[frame.source].count_processed(ages[id(frame)])
            self.metrics.served(batch.frames, started)
            self.batch_sizes[len(batch)] += 1
            self.output.put(inference)
        self.output.put(END)

    @staticmethod
    def _ages_ms(batch: FrameBatch) -> dict[int, float]:
        """Age of each frame on arrival here: time since it was decoded."""
        now = time.monotonic()
        return {id(f): (now - f.stamps.get("decode", now)) * 1000.0 for f in batch.frames}

    def _drop_stale(self, batch: FrameBatch, ages: dict[int, float]) -> FrameBatch | None:
        """The batch without frames past their source's max age; None if none is left."""
        keep = []
        for i, frame in enumerate(batch.frames):
            limit = self.max_age_s.get(frame.source)
            if limit is not None and ages[id(frame)] > limit * 1000.0:
                self.metrics.drop(TOO_OLD)
                if frame.source in self.ctx.health:
                    self.ctx.health[frame.source].count_dropped(TOO_OLD)
            else:
                keep.append(i)
        if len(keep) == len(batch):
            return batch
        if not keep:
            return None
        proposals = None if batch.proposals is None else [batch.proposals[i] for i in keep]
        return FrameBatch([batch.frames[i] for i in keep], batch.images[keep], [batch.geometry[i] for i in keep], proposals)
