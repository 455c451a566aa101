"""How a box looks: a colour layout cheap enough to take for every detection of every frame.

Rules:
- A box's look is the mean colour of BANDS horizontal bands of its middle part (x from
  0.2 to 0.8 of its width: the object, not the background at its sides), from a grid of
  BANDS x SAMPLES pixels, RGB scaled to [0, 1]. People differ most from top to bottom
  (hair, shirt, trousers), so bands keep that order; the grid costs one gather for all
  boxes of a frame, whatever their size.
- The distance of two looks is the mean absolute difference over bands and channels, in
  [0, 1].
"""

from __future__ import annotations

import numpy as np

BANDS = 8
SAMPLES = 4  # pixels per band, across the box
_ROWS = (np.arange(BANDS, dtype=np.float32) + 0.5) / BANDS
_COLUMNS = 0.2 + 0.6 * (np.arange(SAMPLES, dtype=np.float32) + 0.5) / SAMPLES


def looks(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The looks of xyxy `boxes` (N x 4, source pixels) in `image` (H x W x 3): N x BANDS x 3 float32."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    height, width = image.shape[:2]
    ys = boxes[:, 1, None] + _ROWS * (boxes[:, 3] - boxes[:, 1])[:, None]
    xs = boxes[:, 0, None] + _COLUMNS * (boxes[:, 2] - boxes[:, 0])[:, None]
    ys = np.clip(ys.astype(np.intp), 0, height - 1)
    xs = np.clip(xs.astype(np.intp), 0, width - 1)
    grid = image[ys[:, :, None], xs[:, None, :]]  # N x BANDS x SAMPLES x 3
    return grid.mean(axis=2, dtype=np.float32) / 255.0


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of every look of `a` (N x BANDS x 3) to every look of `b` (M x ...): N x M."""
    a = a.reshape(len(a), 1, -1)
    b = b.reshape(1, len(b), -1)
    return np.abs(a - b).mean(axis=2)
