"""Postprocess stage: final selection and mapping back to the source frame.

Score thresholds, kept classes, class-wise NMS and top-k run here (not in the engine)
so they are runtime settings; the maths is engines/outputs.py, shared with evaluation.
A frame gets its source's own selection when that source has one, else the run's.
"""

from __future__ import annotations

import time

from engines.base import ModelInfo
from engines.outputs import Selection, finish_frame
from pipeline.core.context import RunContext
from pipeline.core.messages import Message
from pipeline.core.queues import END, Channel
from stages.base import Stage


class Postprocess(Stage):
    def __init__(
        self,
        upstream: Channel,
        outputs: list[Channel],
        selection: Selection,
        info: ModelInfo,
        ctx: RunContext,
        source_selections: dict[str, Selection] | None = None,
    ) -> None:
        super().__init__("postprocess", ctx)
        self.input = upstream
        self.outputs = outputs
        self.selection = selection
        self.source_selections = source_selections or {}
        self.info = info

    def work(self) -> None:
        while (inference := self.input.get()) is not END:
            batch = inference.batch
            self.metrics.arrived(batch.frames)
            for frame, geometry, raw in zip(batch.frames, batch.geometry, inference.outputs):
                started = time.monotonic()  # the unit of work here is one frame
                selection = self.source_selections.get(frame.source, self.selection)
                detections = finish_frame(frame, geometry, raw, selection, self.info.class_names)
                frame.stamp(self.name)
                message = Message.of(detections, self.info.name)  # once, for every sink
                self.metrics.served((frame,), started)
                for output in self.outputs:
                    output.put(message)
        for output in self.outputs:
            output.put(END)
