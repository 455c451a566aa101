"""Proposals stage: selective search region proposals for the models that take them.

R-CNN and Fast R-CNN have no RPN: between preprocess and detect this stage runs
selective search (engines/selective_search.py) on each frame, with the settings the
model was trained with (kept in its model file), and attaches the boxes to the batch in
model-input pixels. As its own stage it shows up with its own time in `detstream
profile` and in the messages' `latency_ms` — the point of the R-CNN ladder: on a CPU the
search, not the network, is most of a Fast R-CNN's time per frame.

The search runs on the source frame (the search scales it down to its `max_side`
itself), as it ran on the training images, and the boxes are mapped into the letterboxed
input with the frame's geometry.
"""

from __future__ import annotations

import numpy as np
import torch

from engines.base import ModelInfo
from engines.models import takes_proposals
from engines.selective_search import SelectiveSearch
from pipeline.core.context import RunContext
from pipeline.core.queues import END, Channel
from pipeline.core.types import FrameBatch, Geometry
from stages.base import Stage


class Proposals(Stage):
    def __init__(self, search: SelectiveSearch, upstream: Channel, output: Channel, ctx: RunContext) -> None:
        super().__init__("proposals", ctx)
        self.search = search
        self.input = upstream
        self.output = output

    def work(self) -> None:
        while (batch := self.input.get()) is not END:
            if isinstance(batch, FrameBatch):
                started = self.metrics.arrived(batch.frames)
                batch.proposals = [self.propose(frame.image, geometry) for frame, geometry in zip(batch.frames, batch.geometry)]
                for frame in batch.frames:
                    frame.stamp(self.name)
                self.metrics.served(batch.frames, started)
            self.output.put(batch)  # a SourceEnd passes through in band
        self.output.put(END)

    def propose(self, image: np.ndarray, geometry: Geometry) -> torch.Tensor:
        """One frame's proposals, P x 4 xyxy in model-input pixels."""
        return geometry.to_input(torch.from_numpy(self.search(image)))


def proposal_stage(info: ModelInfo, batches: Channel, capacity: int, ctx: RunContext) -> tuple[list[Stage], Channel]:
    """The stages between preprocess and detect (the proposals stage for a model that
    takes proposals, none for the others) and the channel detect reads. `batches` is
    preprocess's output; `capacity` bounds the new channel."""
    if not takes_proposals(info.architecture):
        return [], batches
    proposed = Channel(capacity, ctx.abort)
    ctx.metrics.add_queue("proposed", "detect", proposed.qsize, capacity)
    return [Proposals(SelectiveSearch.of_model(info.extra), batches, proposed, ctx)], proposed
