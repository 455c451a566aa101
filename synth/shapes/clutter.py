"""Static street furniture and plants: things in the scene that are *not* objects.

They share shapes with the object classes on purpose (thin poles like bicycle
tubes, round tops like heads, boxes like car bodies) so a detector must learn
the classes rather than "anything drawn on the background".
"""

from __future__ import annotations

import numpy as np

from synth.shapes.palette import jitter, pick, vivid
from synth.shapes.primitives import Circle, Ellipse, Part, Poly, Stroke, shade

GREENS = ((50, 95, 40), (70, 120, 50), (40, 80, 45), (95, 130, 60), (60, 100, 70))


def _lamp(rng: np.random.Generator) -> list[Part]:
    h = float(rng.uniform(3.5, 5.5))
    color = pick(rng, ((40, 42, 45), (70, 80, 75), (30, 50, 40)))
    arm = float(rng.uniform(0.4, 0.9))
    return [
        Stroke(((0.0, 0.0), (0.0, h)), 0.13, color),
        Stroke(((0.0, 0.0), (0.0, 0.4)), 0.22, shade(color, 0.8)),
        Stroke(((0.0, h), (arm, h + 0.15)), 0.07, color),
        Poly(((arm - 0.25, h + 0.18), (arm + 0.25, h + 0.18), (arm + 0.15, h - 0.05),
              (arm - 0.15, h - 0.05)), (235, 230, 200)),
    ]


def _tree(rng: np.random.Generator) -> list[Part]:
    trunk = float(rng.uniform(1.5, 2.8))
    width = float(rng.uniform(0.18, 0.35))
    parts: list[Part] = [Stroke(((0.0, 0.0), (0.05, trunk + 0.5)), width, jitter(rng, (85, 60, 40), 10))]
    crown = float(rng.uniform(1.0, 2.0))
    for _ in range(int(rng.integers(4, 8))):
        x = float(rng.uniform(-0.8, 0.8)) * crown
        y = trunk + crown * float(rng.uniform(0.5, 1.4))
        parts.append(Circle((x, y), crown * float(rng.uniform(0.5, 0.8)), jitter(rng, pick(rng, GREENS), 12)))
    return parts


def _bush(rng: np.random.Generator) -> list[Part]:
    size = float(rng.uniform(0.4, 0.9))
    parts: list[Part] = []
    for _ in range(int(rng.integers(3, 6))):
        x = float(rng.uniform(-1.0, 1.0)) * size
        parts.append(Ellipse((x, size * float(rng.uniform(0.5, 0.8))),
                             (size * float(rng.uniform(0.5, 0.8)), size * float(rng.uniform(0.4, 0.7))),
                             float(rng.uniform(-20, 20)), jitter(rng, pick(rng, GREENS), 15)))
    return parts


def _bench(rng: np.random.Generator) -> list[Part]:
    wood = jitter(rng, pick(rng, ((120, 80, 45), (90, 95, 100), (50, 70, 50))), 10)
    return [
        Stroke(((-0.7, 0.0), (-0.7, 0.45)), 0.06, (40, 40, 40)),
        Stroke(((0.7, 0.0), (0.7, 0.45)), 0.06, (40, 40, 40)),
        Poly(((-0.85, 0.45), (0.85, 0.45), (0.85, 0.52), (-0.85, 0.52)), wood),
        Poly(((-0.85, 0.62), (0.85, 0.62), (0.85, 0.85), (-0.85, 0.85)), shade(wood, 0.85)),
        Stroke(((-0.7, 0.45), (-0.7, 0.85)), 0.05, (40, 40, 40)),
        Stroke(((0.7, 0.45), (0.7, 0.85)), 0.05, (40, 40, 40)),
    ]


def _bin(rng: np.random.Generator) -> list[Part]:
    color = vivid(rng, sat=(0.2, 0.6), val=(0.2, 0.5))
    return [
        Poly(((-0.28, 0.0), (0.28, 0.0), (0.32, 0.9), (-0.32, 0.9)), color),
        Poly(((-0.36, 0.88), (0.36, 0.88), (0.3, 1.0), (-0.3, 1.0)), shade(color, 0.7)),
    ]


def _cone(rng: np.random.Generator) -> list[Part]:
    h = float(rng.uniform(0.45, 0.75))
    return [
        Poly(((-0.2, 0.0), (0.2, 0.0), (0.2, 0.04), (-0.2, 0.04)), (30, 30, 30)),
        Poly(((-0.15, 0.04), (0.15, 0.04), (0.03, h), (-0.03, h)), (240, 110, 20)),
        Poly(((-0.1, 0.4 * h), (0.1, 0.4 * h), (0.07, 0.6 * h), (-0.07, 0.6 * h)), (240, 240, 240)),
    ]


def _hydrant(rng: np.random.Generator) -> list[Part]:
    color = pick(rng, ((190, 30, 25), (220, 190, 30), (60, 90, 160)))
    return [
        Poly(((-0.14, 0.0), (0.14, 0.0), (0.12, 0.6), (-0.12, 0.6)), color),
        Circle((0.0, 0.62), 0.13, shade(color, 0.85)),
        Stroke(((-0.22, 0.4), (0.22, 0.4)), 0.1, shade(color, 0.7)),
    ]


def _sign(rng: np.random.Generator) -> list[Part]:
    h = float(rng.uniform(2.0, 2.8))
    plate = pick(rng, ((30, 80, 170), (200, 30, 30), (240, 240, 240), (240, 200, 20)))
    parts: list[Part] = [Stroke(((0.0, 0.0), (0.0, h)), 0.07, (120, 120, 125))]
    if rng.random() < 0.5:
        parts.append(Circle((0.0, h), 0.3, plate))
        parts.append(Circle((0.0, h), 0.3, (240, 240, 240), width=0.06))
    else:
        parts.append(Poly(((-0.3, h - 0.3), (0.3, h - 0.3), (0.3, h + 0.3), (-0.3, h + 0.3)), plate))
    return parts


def _bollards(rng: np.random.Generator) -> list[Part]:
    color = pick(rng, ((60, 60, 65), (200, 200, 200), (150, 120, 40)))
    gap = float(rng.uniform(1.0, 1.6))
    parts: list[Part] = []
    for k in range(int(rng.integers(2, 5))):
        x = k * gap
        parts.append(Stroke(((x, 0.0), (x, 0.9)), 0.16, color))
        parts.append(Stroke(((x, 0.7), (x, 0.78)), 0.17, (230, 230, 230)))
    return parts


_KINDS = (_lamp, _tree, _bush, _bench, _bin, _cone, _hydrant, _sign, _bollards)


def sample_clutter(rng: np.random.Generator) -> tuple[list[Part], float]:
    """Parts of one random item and its half width in metres."""
    parts = _KINDS[int(rng.integers(len(_KINDS)))](rng)
    xs = [p for part in parts for p in _xs(part)]
    return parts, max(abs(min(xs)), abs(max(xs))) + 0.5


def _xs(part: Part) -> list[float]:
    if isinstance(part, (Poly, Stroke)):
        return [x for x, _ in part.points]
    reach = max(part.axes) if isinstance(part, Ellipse) else part.radius
    return [part.center[0] - reach, part.center[0] + reach]

