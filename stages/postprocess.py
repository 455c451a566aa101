"""Postprocess stage: final selection and mapping back to the source frame.

Score thresholds, kept classes, class-wise NMS and top-k run here (not in the engine)
so they are runtime settings; the maths is engines/outputs.py, shared with evaluation.
A frame gets its source's own selection when that source has one, else the run's, and
its source's regions of interest (stages/roi.py). The per-source tables may change while
the run goes on (the control API): they are read at every frame.
Where its source is tracked, the frame also carries the weaker candidates down to the
tracker's `low_score` (never emitted). Detections go on to the track stage.
"""

from __future__ import annotations

import time
from typing import Callable

from engines.base import ModelInfo
from engines.outputs import Selection, finish_frame
from pipeline.core.context import RunContext
from pipeline.core.queues import END, Channel
from pipeline.core.types import SourceEnd
from stages.base import Stage
from stages.roi import Roi


class Postprocess(Stage):
    def __init__(
        self,
        upstream: Channel,
        output: Channel,
        selection: Selection,
        info: ModelInfo,
        ctx: RunContext,
        source_selections: dict[str, Selection] | None = None,
        low_score: Callable[[str], float | None] = lambda source: None,
        rois: dict[str, Roi] | None = None,
    ) -> None:
        """`low_score(source)`: the tracker's low score for a tracked source, else None;
        `rois`: sources' regions of interest (detections outside are dropped)."""
        super().__init__("postprocess", ctx)
        self.input = upstream
        self.output = output
        self.selection = selection
        self.source_selections = source_selections or {}
        self.low_score = low_score
        self.rois = rois if rois is not None else {}
        self.info = info

    def work(self) -> None:
        while (inference := self.input.get()) is not END:
            if isinstance(inference, SourceEnd):
                self.output.put(inference)
                continue
            batch = inference.batch
            self.metrics.arrived(batch.frames)
            for frame, geometry, raw in zip(batch.frames, batch.geometry, inference.outputs):
                started = time.monotonic()  # the unit of work here is one frame
                selection = self.source_selections.get(frame.source, self.selection)
                low = self.low_score(frame.source)
                detections = finish_frame(frame, geometry, raw, selection, self.info.class_names, low)
                if (roi := self.rois.get(frame.source)) is not None:
                    detections = roi.keep(detections)
                frame.stamp(self.name)
                self.metrics.served((frame,), started)
                self.output.put(detections)
        self.output.put(END)
