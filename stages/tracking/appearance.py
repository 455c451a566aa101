"""How a box looks: a colour layout cheap enough to take for every detection of every frame.

Rules:
- A box's look is the mean colour of BANDS horizontal bands of its middle part (x from
  0.2 to 0.8 of its width: the object, not the background at its sides), from a grid of
  BANDS x SAMPLES pixels, RGB scaled to [0, 1]. People differ most from top to bottom
  (hair, shirt, trousers), so bands keep that order; the grid costs one gather for all
  boxes of a frame, whatever their size.
- The distance of two looks is the mean absolute difference over bands and channels, in
  [0, 1]; NaN where a look is unknown (NaN).
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
    # Written for speed (it runs on every detection of every frame): a handful of numpy
    # calls whatever the number of boxes, none of the slower generic ones (np.clip, a
    # fancy index in two dimensions, a sum over a short axis).
    ys = np.minimum(np.maximum(boxes[:, 1, None] + _ROWS * (boxes[:, 3] - boxes[:, 1])[:, None], 0), height - 1)
    xs = np.minimum(np.maximum(boxes[:, 0, None] + _COLUMNS * (boxes[:, 2] - boxes[:, 0])[:, None], 0), width - 1)
    pixels = (ys.astype(np.intp) * width)[:, :, None] + xs.astype(np.intp)[:, None, :]  # N x BANDS x SAMPLES
    grid = np.take(image.reshape(-1, 3), pixels.ravel(), axis=0).reshape(len(boxes), BANDS, SAMPLES, 3)
    bands = grid[:, :, 0].astype(np.float32)
    for sample in range(1, SAMPLES):
        bands += grid[:, :, sample]
    bands *= 1.0 / (255.0 * SAMPLES)
    return bands


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each look of `a` (N x BANDS x 3) to the look of `b` in the same place:
    N values (pair by pair: a tracker compares only the few pairs in question)."""
    return np.abs(a - b).mean(axis=(1, 2))
