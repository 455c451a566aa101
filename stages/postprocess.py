"""Postprocess stage: final selection and mapping back to the source frame.

Score threshold, class-wise NMS and top-k run here (not in the engine) so they are
runtime settings; the maths is engines/outputs.py, shared with evaluation.
"""

from __future__ import annotations

import time

from engines.outputs import Selection, finish_frame
from pipeline.core.context import RunContext
from pipeline.core.queues import END, Channel
from stages.base import Stage


class Postprocess(Stage):
    def __init__(
        self,
        source: Channel,
        outputs: list[Channel],
        selection: Selection,
        class_names: tuple[str, ...],
        ctx: RunContext,
    ) -> None:
        super().__init__("postprocess", ctx)
        self.input = source
        self.outputs = outputs
        self.selection = selection
        self.class_names = class_names

    def work(self) -> None:
        while (item := self.input.get()) is not END:
            batch, raw_outputs = item
            self.metrics.arrived(batch.frames)
            for frame, geometry, raw in zip(batch.frames, batch.geometry, raw_outputs):
                started = time.monotonic()  # the unit of work here is one frame
                detections = finish_frame(frame, geometry, raw, self.selection, self.class_names)
                frame.stamp(self.name)
                self.metrics.served((frame,), started)
                for output in self.outputs:
                    output.put(detections)
                self.ctx.count(self.name)
        for output in self.outputs:
            output.put(END)
