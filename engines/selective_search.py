"""Selective search region proposals (Uijlings et al.), on OpenCV contrib's implementation.

Rules:
- Input is an RGB uint8 H x W x 3 image, as everywhere in the pipeline; it is converted
  to BGR for OpenCV, whose colour-space strategies assume BGR.
- The image is scaled down (never up) so its longer side is at most `max_side` before the
  search: the search costs roughly in proportion to pixels, and quality mode on a full
  720p frame takes tens of seconds. Boxes are mapped back to source pixels.
- Output is an N x 4 float32 array of xyxy boxes in source pixels, inside the image, in
  OpenCV's ranking order, at most `top_n`, without exact duplicates, and without boxes
  narrower or shorter than `min_side` source pixels (single-pixel slivers of the
  segmentation are no object).
- OpenCV ranks regions by hierarchy level times a random factor, as the paper does, from
  a generator it seeds itself: the set of boxes is the same on every run, but the order,
  and so the top N, varies from run to run (cv2.setRNGSeed does not reach it).
- `threads` sets OpenCV's thread count for the whole process (cv2.setNumThreads has no
  per-call form); None leaves it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.core.errors import ConfigError

MODES = ("fast", "quality")
SEARCH_KEY = "selective_search"  # a model file's `extra` entry: the settings it was trained with


@dataclass(frozen=True)
class SelectiveSearch:
    """Settings of the search; `__call__` runs it on one image."""

    mode: str = "fast"  # fast: 2 colour spaces x 2 strategies; quality: 4 x 4 (the paper's two settings)
    max_side: int = 500  # longer image side during the search, in pixels
    top_n: int = 2000  # boxes returned at most
    min_side: float = 4.0  # shorter boxes (source pixels) are dropped
    threads: int | None = None  # OpenCV threads, process-wide; None: leave as is

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"selective search mode {self.mode!r}: allowed are {', '.join(MODES)}", "mode")
        for name, least in (("max_side", 32), ("top_n", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"selective search {name} = {value!r}: expected an integer >= {least}", name)
        if not np.isfinite(self.min_side) or self.min_side < 0:
            raise ConfigError(f"selective search min_side = {self.min_side!r}: expected a number >= 0", "min_side")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"selective search threads = {self.threads!r}: expected an integer >= 1 or none", "threads")

    @classmethod
    def of_model(cls, extra: dict[str, Any], threads: int | None = None) -> SelectiveSearch:
        """The search a model was trained with (its `extra[SEARCH_KEY]`): at run time the
        proposals must look like those it learned from."""
        try:
            settings = extra[SEARCH_KEY]
            return cls(mode=settings["mode"], max_side=settings["max_side"], top_n=settings["top_n"], threads=threads)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"the model file does not say which selective search it was trained with "
                              f"(extra.{SEARCH_KEY}: missing {exc}); train it again with this version") from None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Proposals of one RGB image: N x 4 float32 xyxy boxes in its pixels."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 1:
            raise ConfigError(
                f"selective search needs an H x W x 3 uint8 RGB image, got shape {image.shape} of {image.dtype}"
            )
        if self.threads is not None:
            cv2.setNumThreads(self.threads)
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)  # AREA: no aliasing when shrinking
        search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
        search.setBaseImage(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if self.mode == "fast":
            search.switchToSelectiveSearchFast()
        else:
            search.switchToSelectiveSearchQuality()
        rects = np.asarray(search.process(), np.float32).reshape(-1, 4)  # x, y, w, h in the small image
        return self._boxes(rects, (small.shape[0], small.shape[1]), (height, width))

    def _boxes(self, rects: np.ndarray, small: tuple[int, int], source: tuple[int, int]) -> np.ndarray:
        # per-axis scales: the small size was rounded to whole pixels
        sx, sy = source[1] / small[1], source[0] / small[0]
        boxes = np.empty_like(rects)
        boxes[:, 0] = rects[:, 0] * sx
        boxes[:, 1] = rects[:, 1] * sy
        boxes[:, 2] = (rects[:, 0] + rects[:, 2]) * sx
        boxes[:, 3] = (rects[:, 1] + rects[:, 3]) * sy
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, source[1])
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, source[0])
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        boxes = boxes[(sides >= self.min_side) & (sides > 0)]
        # OpenCV may return one rectangle twice (different merges, same extent): keep the first
        _, first = np.unique(boxes, axis=0, return_index=True)
        return np.ascontiguousarray(boxes[np.sort(first)][: self.top_n], dtype=np.float32)
