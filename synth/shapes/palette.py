"""Colour choices shared by the shape modules."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np

from synth.shapes.primitives import Color


def pick(rng: np.random.Generator, options: Sequence[Color]) -> Color:
    return options[int(rng.integers(len(options)))]


def vivid(rng: np.random.Generator, sat: tuple[float, float] = (0.35, 0.9),
          val: tuple[float, float] = (0.3, 0.95)) -> Color:
    """A colour of any hue, saturation and value drawn from the given ranges."""
    r, g, b = colorsys.hsv_to_rgb(
        float(rng.uniform(0.0, 1.0)), float(rng.uniform(*sat)), float(rng.uniform(*val))
    )
    return (int(r * 255), int(g * 255), int(b * 255))


def jitter(rng: np.random.Generator, color: Color, amount: int = 14) -> Color:
    """Small per-instance variation around a base colour."""
    d = rng.integers(-amount, amount + 1, 3)
    return tuple(int(np.clip(c + x, 0, 255)) for c, x in zip(color, d, strict=True))  # type: ignore[return-value]


SKIN: tuple[Color, ...] = (
    (255, 219, 180), (234, 192, 140), (205, 150, 100), (160, 105, 60), (105, 68, 40), (70, 45, 30),
)
HAIR: tuple[Color, ...] = (
    (25, 18, 12), (60, 40, 22), (110, 70, 35), (190, 150, 90), (140, 140, 140), (120, 40, 20),
)
PANTS: tuple[Color, ...] = (
    (45, 60, 100), (30, 30, 35), (150, 130, 95), (95, 95, 100), (65, 75, 50), (80, 40, 40),
)
DARK: tuple[Color, ...] = ((20, 20, 22), (45, 35, 30), (60, 60, 65), (225, 225, 220))
