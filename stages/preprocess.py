"""Preprocess stage: batch frames round-robin across sources, letterbox, normalize.

Each frame is scaled to fit the model input keeping its aspect ratio, placed at the
top-left and zero-padded (zero after normalization, as torchvision pads). The geometry is
recorded so postprocess maps boxes back to source pixels exactly.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from engines.base import ModelInfo
from pipeline.config import BatchConfig
from pipeline.context import RunContext
from pipeline.queues import END, Channel, SourceMux
from pipeline.types import Batch, Frame, Geometry
from stages.base import Stage


def letterbox_size(source: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of `source` scaled to fit inside `target`, aspect kept."""
    scale = min(target[0] / source[0], target[1] / source[1])
    return (
        min(target[0], max(1, round(source[0] * scale))),
        min(target[1], max(1, round(source[1] * scale))),
    )


class Normalizer:
    """Turns RGB uint8 images into one padded, normalized N x 3 x H x W batch."""

    def __init__(self, info: ModelInfo) -> None:
        self.input_size = info.input_size
        # fold /255 into the affine map: x * a + b
        std = torch.tensor(info.std).view(3, 1, 1)
        self.a = 1.0 / (255.0 * std)
        self.b = -torch.tensor(info.mean).view(3, 1, 1) / std

    def __call__(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list[Geometry]]:
        height, width = self.input_size
        batch = torch.zeros(len(images), 3, height, width)
        geometry = []
        for i, image in enumerate(images):
            source = (int(image.shape[0]), int(image.shape[1]))
            resized = letterbox_size(source, self.input_size)
            if resized != source:
                image = cv2.resize(image, (resized[1], resized[0]), interpolation=cv2.INTER_LINEAR)
            pixels = torch.from_numpy(image).permute(2, 0, 1).float()
            batch[i, :, : resized[0], : resized[1]] = pixels * self.a + self.b
            geometry.append(Geometry(source_size=source, resized_size=resized))
        return batch, geometry


class Preprocess(Stage):
    def __init__(
        self,
        mux: SourceMux,
        output: Channel,
        info: ModelInfo,
        batching: BatchConfig,
        ctx: RunContext,
    ) -> None:
        super().__init__("preprocess", ctx)
        self.mux = mux
        self.output = output
        self.normalize = Normalizer(info)
        self.batching = batching

    def work(self) -> None:
        max_wait_s = self.batching.max_wait_ms / 1000.0
        while True:
            self.output.wait_for_demand()  # live runs: frames are taken when the detector is free
            if (frames := self.mux.get_batch(self.batching.max_batch, max_wait_s)) is None:
                break
            started = self.metrics.arrived(frames)
            batch = self.prepare(frames)
            self.metrics.served(frames, started)
            self.output.put(batch)
            self.ctx.count(self.name, len(frames))
        self.output.put(END)

    def prepare(self, frames: list[Frame]) -> Batch:
        images, geometry = self.normalize([f.image for f in frames])
        for frame in frames:
            frame.stamp(self.name)
        return Batch(frames, images, geometry)
