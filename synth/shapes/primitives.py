"""Vector parts in metres and their rasterization into sprites.

Shapes are described in an object frame: metres, x forward (the way the object
faces), y up, origin at the ground contact point. `rasterize` maps them to
pixels with a scale (pixels per metre), a position and a facing direction, and
draws them with OpenCV into a small RGBA patch. The alpha channel is binary
(LINE_8, no anti-aliasing) on purpose: it *is* the instance mask, so the ground
truth is exactly the set of pixels that got the object's colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

Color = tuple[int, int, int]
Point = tuple[float, float]

# OpenCV draws with fixed-point coordinates when given `shift`; 4 bits gives
# 1/16 px positions so slow objects move smoothly instead of in 1 px jumps.
SHIFT = 4
_ONE = 1 << SHIFT


@dataclass(frozen=True)
class Poly:
    points: tuple[Point, ...]
    color: Color


@dataclass(frozen=True)
class Circle:
    center: Point
    radius: float
    color: Color
    width: float = 0.0  # 0: filled disc; else ring line width in metres


@dataclass(frozen=True)
class Ellipse:
    center: Point
    axes: tuple[float, float]  # half-axes in metres
    angle: float  # degrees, counter-clockwise in the object frame
    color: Color


@dataclass(frozen=True)
class Stroke:
    points: tuple[Point, ...]
    width: float  # metres; never thinner than 1 px
    color: Color


Part = Poly | Circle | Ellipse | Stroke


@dataclass(frozen=True)
class Sprite:
    """A drawn object: top-left corner in frame pixels, RGB patch and 0/255 mask."""

    x0: int
    y0: int
    rgb: np.ndarray  # h x w x 3 uint8
    mask: np.ndarray  # h x w uint8, 255 where the object is

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])


def shade(color: Color, factor: float) -> Color:
    """Darker (factor < 1) or lighter (> 1) version of a colour."""
    return (
        min(255, int(color[0] * factor)),
        min(255, int(color[1] * factor)),
        min(255, int(color[2] * factor)),
    )


def ellipse_points(
    center: Point, axes: tuple[float, float], start: float, end: float, steps: int = 12
) -> tuple[Point, ...]:
    """Points along an elliptic arc (degrees, counter-clockwise) in the object frame."""
    out = []
    for i in range(steps + 1):
        a = math.radians(start + (end - start) * i / steps)
        out.append((center[0] + axes[0] * math.cos(a), center[1] + axes[1] * math.sin(a)))
    return tuple(out)


def _extent(part: Part) -> tuple[list[Point], float]:
    """Points of a part and how far (metres) its drawing reaches beyond them."""
    if isinstance(part, Poly):
        return list(part.points), 0.0
    if isinstance(part, Circle):
        return [part.center], part.radius + part.width
    if isinstance(part, Ellipse):
        return [part.center], max(part.axes)
    return list(part.points), part.width


def rasterize(
    parts: list[Part],
    ppm: float,
    foot: Point,
    flip: bool,
    light: float = 0.0,
    frame: tuple[int, int] | None = None,
) -> Sprite | None:
    """Draw parts with `ppm` pixels per metre, ground point at frame pixel `foot`.

    `flip` mirrors the object (it faces left). `light` in [-1, 1] is the
    horizontal direction of the scene light; the patch gets a soft gradient so
    objects are lit from above and that side. With `frame` = (width, height),
    returns None when the object would not touch the frame at all.
    """
    sx = -1.0 if flip else 1.0
    fx, fy = foot
    xs: list[float] = []
    ys: list[float] = []
    for part in parts:
        pts, pad = _extent(part)
        pad_px = pad * ppm + 2.0  # 1 px minimum stroke width and rounding
        for x, y in pts:
            px, py = fx + sx * x * ppm, fy - y * ppm
            xs += (px - pad_px, px + pad_px)
            ys += (py - pad_px, py + pad_px)
    x0, y0 = math.floor(min(xs)), math.floor(min(ys))
    x1, y1 = math.ceil(max(xs)), math.ceil(max(ys))
    if frame is not None and (x1 <= 0 or y1 <= 0 or x0 >= frame[0] or y0 >= frame[1]):
        return None
    w, h = x1 - x0 + 1, y1 - y0 + 1
    rgba = np.zeros((h, w, 4), np.uint8)

    def fixed(p: Point) -> tuple[int, int]:
        return (
            round((fx + sx * p[0] * ppm - x0) * _ONE),
            round((fy - p[1] * ppm - y0) * _ONE),
        )

    for part in parts:
        color = (*part.color, 255)
        if isinstance(part, Poly):
            poly = np.array([fixed(p) for p in part.points], np.int32)
            cv2.fillPoly(rgba, [poly], color, cv2.LINE_8, SHIFT)
        elif isinstance(part, Circle):
            radius = round(part.radius * ppm * _ONE)
            thickness = -1 if part.width <= 0 else max(1, round(part.width * ppm))
            cv2.circle(rgba, fixed(part.center), radius, color, thickness, cv2.LINE_8, SHIFT)
        elif isinstance(part, Ellipse):
            axes = (round(part.axes[0] * ppm * _ONE), round(part.axes[1] * ppm * _ONE))
            angle = -part.angle * sx  # y axis points down in the image
            cv2.ellipse(rgba, fixed(part.center), axes, angle, 0, 360, color, -1, cv2.LINE_8, SHIFT)
        else:
            line = np.array([fixed(p) for p in part.points], np.int32)
            thickness = max(1, round(part.width * ppm))
            cv2.polylines(rgba, [line], False, color, thickness, cv2.LINE_8, SHIFT)

    rgb = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    return Sprite(x0, y0, _apply_light(rgb, light), cv2.extractChannel(rgba, 3))


def _apply_light(rgb: np.ndarray, light: float) -> np.ndarray:
    """Soft top-to-bottom and side-to-side brightness gradient."""
    h, w = rgb.shape[:2]
    # Gain in 1/128 units: top ~10% brighter, bottom ~18% darker, the lit side brighter.
    rows = np.linspace(141, 105, h, dtype=np.float32)[:, None]
    cols = np.linspace(-12 * light, 12 * light, w, dtype=np.float32)[None, :]
    gain = (rows + cols).astype(np.uint8)
    return cv2.multiply(rgb, cv2.merge([gain, gain, gain]), scale=1 / 128)
