"""Car (body, cabin, windows, wheels, lights) and bicycle (thin rings and tubes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.shapes.palette import jitter, pick, vivid
from synth.shapes.primitives import Circle, Color, Ellipse, Part, Point, Poly, Stroke, shade

CAR_PAINT: tuple[Color, ...] = (
    (235, 235, 232), (25, 25, 28), (170, 172, 175), (105, 108, 112), (160, 25, 25),
    (30, 60, 140), (30, 80, 50), (230, 190, 30), (120, 20, 30), (200, 120, 40),
)


@dataclass(frozen=True)
class CarLook:
    length: float  # metres, bumper to bumper
    height: float
    wheel: float  # wheel radius
    kind: int  # 0 sedan, 1 hatchback, 2 van
    paint: Color
    glass: Color
    rims: Color

    @property
    def half_width(self) -> float:
        return 0.5 * self.length


def sample_car(rng: np.random.Generator) -> CarLook:
    kind = int(rng.choice(3, p=[0.45, 0.35, 0.2]))
    length = float(rng.uniform(*((4.3, 5.0), (3.7, 4.3), (4.4, 5.2))[kind]))
    height = float(rng.uniform(*((1.35, 1.5), (1.4, 1.6), (1.8, 2.1))[kind]))
    return CarLook(
        length=length,
        height=height,
        wheel=float(rng.uniform(0.3, 0.37)),
        kind=kind,
        paint=jitter(rng, pick(rng, CAR_PAINT), 12),
        glass=jitter(rng, (60, 75, 90), 15),
        rims=pick(rng, ((170, 170, 175), (60, 60, 65), (200, 200, 205))),
    )


def car_parts(look: CarLook, rotation: float) -> list[Part]:
    """Side view facing +x; `rotation` (radians) turns the wheel rims."""
    half, hgt, r = look.length / 2, look.height, look.wheel
    belt = 0.55 * hgt if look.kind != 2 else 0.5 * hgt
    front, rear = half - 0.85, -half + 0.8  # wheel centres
    paint, dark = look.paint, shade(look.paint, 0.65)
    parts: list[Part] = []
    body = (
        (-half + 0.05, 0.22), (-half, belt - 0.1), (-half + 0.12, belt), (half - 0.9, belt + 0.03),
        (half - 0.15, belt - 0.08), (half, belt - 0.22), (half, 0.28), (half - 0.1, 0.18),
        (-half + 0.15, 0.17),
    )
    parts.append(Poly(body, paint))
    parts.append(Poly(((-half + 0.05, 0.22), (half - 0.05, 0.24), (half - 0.1, 0.18), (-half + 0.15, 0.17)),
                      shade(paint, 0.55)))  # sill in shadow
    if look.kind == 0:
        cabin = ((-half + 0.45, belt), (-half + 1.05, hgt), (half - 1.75, hgt), (half - 1.05, belt))
    elif look.kind == 1:
        cabin = ((-half + 0.12, belt), (-half + 0.3, hgt), (half - 1.6, hgt), (half - 0.95, belt))
    else:
        cabin = ((-half + 0.05, belt), (-half + 0.1, hgt), (half - 0.9, hgt), (half - 0.35, belt - 0.05))
    parts.append(Poly(cabin, shade(paint, 1.05)))
    # Windows: the cabin outline shrunk towards its centre, split by a pillar.
    cx = sum(p[0] for p in cabin) / 4
    cy = sum(p[1] for p in cabin) / 4
    glass = tuple((cx + 0.88 * (x - cx), cy + 0.78 * (y - cy) + 0.02) for x, y in cabin)
    parts.append(Poly(glass, look.glass))
    top, bottom = glass[1][1], glass[0][1]
    parts.append(Poly(((cx - 0.08, top + 0.05), (cx + 0.06, top + 0.05), (cx + 0.06, bottom - 0.05),
                       (cx - 0.08, bottom - 0.05)), shade(paint, 0.9)))  # B pillar
    parts.append(Poly(((cx + 0.2, top), (cx + 0.45, top), (cx + 0.15, bottom), (cx - 0.1, bottom)),
                      shade(look.glass, 1.6)))  # reflection
    # Beltline highlight and door line.
    parts.append(Stroke(((-half + 0.15, belt - 0.04), (half - 0.3, belt - 0.02)), 0.03, shade(paint, 1.25)))
    parts.append(Stroke(((cx + 0.0, belt - 0.02), (cx + 0.02, 0.25)), 0.015, dark))
    parts.append(Stroke(((cx - 0.35, belt - 0.12), (cx - 0.2, belt - 0.12)), 0.03, dark))  # handle
    # Lights.
    parts.append(Poly(((half - 0.02, belt - 0.2), (half - 0.2, belt - 0.1), (half - 0.25, belt - 0.18),
                       (half - 0.03, belt - 0.3)), (250, 245, 210)))
    parts.append(Poly(((-half + 0.01, belt - 0.12), (-half + 0.14, belt - 0.08), (-half + 0.14, belt - 0.25),
                       (-half + 0.03, belt - 0.27)), (200, 20, 20)))
    for x in (rear, front):
        parts.append(Ellipse((x, r + 0.02), (r + 0.07, r + 0.08), 0.0, shade(paint, 0.3)))  # arch
        parts.append(Circle((x, r), r, (22, 22, 24)))
        parts.append(Circle((x, r), 0.58 * r, look.rims))
        for k in range(5):
            a = rotation + k * 2 * math.pi / 5
            parts.append(Stroke(((x, r), (x + 0.5 * r * math.cos(a), r + 0.5 * r * math.sin(a))),
                                0.04, shade(look.rims, 0.6)))
        parts.append(Circle((x, r), 0.15 * r, shade(look.rims, 0.8)))
    return parts


@dataclass(frozen=True)
class BicycleLook:
    wheel: float  # wheel radius (tyre outside)
    frame: Color
    tyre: Color
    step_through: bool

    @property
    def wheelbase(self) -> float:
        return 3.05 * self.wheel

    @property
    def rear_hub(self) -> Point:
        return (-self.wheelbase / 2, self.wheel)

    @property
    def front_hub(self) -> Point:
        return (self.wheelbase / 2, self.wheel)

    @property
    def crank_center(self) -> Point:
        return (self.rear_hub[0] + 1.25 * self.wheel, 0.85 * self.wheel)

    @property
    def crank(self) -> float:
        return 0.5 * self.wheel

    @property
    def seat_top(self) -> Point:
        a = math.radians(73)
        bb = self.crank_center
        return (bb[0] - 1.6 * self.wheel * math.cos(a), bb[1] + 1.6 * self.wheel * math.sin(a))

    @property
    def saddle(self) -> Point:
        a = math.radians(73)
        s = self.seat_top
        return (s[0] - 0.35 * self.wheel * math.cos(a), s[1] + 0.35 * self.wheel * math.sin(a))

    def _fork(self, k: float) -> Point:
        a = math.radians(72)
        f = self.front_hub
        return (f[0] - k * self.wheel * math.cos(a), f[1] + k * self.wheel * math.sin(a))

    @property
    def grip(self) -> Point:
        stem = self._fork(1.95)
        return (stem[0] - 0.35 * self.wheel, stem[1] + 0.05 * self.wheel)

    @property
    def half_width(self) -> float:
        return 0.5 * self.wheelbase + self.wheel

    @property
    def stride(self) -> float:
        """Metres per crank turn (about two wheel turns with common gearing)."""
        return 4.0 * math.pi * self.wheel


def sample_bicycle(rng: np.random.Generator) -> BicycleLook:
    return BicycleLook(
        wheel=float(rng.uniform(0.3, 0.36) if rng.random() < 0.85 else rng.uniform(0.22, 0.28)),
        frame=vivid(rng, sat=(0.2, 0.95), val=(0.2, 0.95)),
        tyre=pick(rng, ((20, 20, 20), (40, 38, 36), (60, 50, 40))),
        step_through=bool(rng.random() < 0.3),
    )


def bicycle_parts(look: BicycleLook, crank_angle: float) -> list[Part]:
    """Side view facing +x. Wheels turn twice per crank turn."""
    r = look.wheel
    tube = 0.11 * r
    rear, front, bb = look.rear_hub, look.front_hub, look.crank_center
    seat, head_lo, head_hi, stem = look.seat_top, look._fork(1.2), look._fork(1.65), look._fork(1.95)
    frame, far = look.frame, shade(look.frame, 0.65)
    parts: list[Part] = []
    far_pedal = (bb[0] + look.crank * math.cos(crank_angle + math.pi),
                 bb[1] + look.crank * math.sin(crank_angle + math.pi))
    parts.append(Stroke((bb, far_pedal), 0.07 * r, (60, 60, 60)))
    parts.append(Stroke(((far_pedal[0] - 0.1 * r, far_pedal[1]), (far_pedal[0] + 0.1 * r, far_pedal[1])),
                        0.06 * r, (40, 40, 40)))
    spin = 2.0 * crank_angle
    for hub in (rear, front):
        for k in range(8):
            a = spin + k * math.pi / 4
            parts.append(Stroke((hub, (hub[0] + 0.85 * r * math.cos(a), hub[1] + 0.85 * r * math.sin(a))),
                                0.004, (150, 150, 155)))
        parts.append(Circle(hub, 0.86 * r, (175, 175, 180), width=0.03 * r))  # rim
        parts.append(Circle(hub, 0.94 * r, look.tyre, width=0.12 * r))  # tyre
        parts.append(Circle(hub, 0.08 * r, (120, 120, 125)))
    parts.append(Stroke((rear, bb), tube, far))  # chain stay
    parts.append(Stroke((rear, seat), tube, far))  # seat stay
    parts.append(Stroke((bb, look.saddle), tube, frame))  # seat tube and post
    parts.append(Stroke((bb, head_lo), 1.3 * tube, frame))  # down tube
    if look.step_through:
        parts.append(Stroke(((bb[0] + 0.3 * r, bb[1] + 0.1 * r), (head_lo[0], head_lo[1] + 0.3 * r)), tube, frame))
    else:
        parts.append(Stroke((seat, head_hi), tube, frame))  # top tube
    parts.append(Stroke((front, head_hi), tube, shade(frame, 0.85)))  # fork and head tube
    parts.append(Stroke((head_hi, stem, look.grip), 0.08 * r, (50, 50, 55)))  # stem, handlebar
    s = look.saddle
    parts.append(Poly(((s[0] - 0.35 * r, s[1] + 0.02 * r), (s[0] + 0.3 * r, s[1] + 0.06 * r),
                       (s[0] + 0.25 * r, s[1] - 0.06 * r), (s[0] - 0.3 * r, s[1] - 0.08 * r)), (30, 30, 30)))
    parts.append(Circle(bb, 0.3 * r, (90, 90, 95), width=0.05 * r))  # chain ring
    near_pedal = (bb[0] + look.crank * math.cos(crank_angle), bb[1] + look.crank * math.sin(crank_angle))
    parts.append(Stroke((bb, near_pedal), 0.08 * r, (110, 110, 115)))
    parts.append(Stroke(((near_pedal[0] - 0.1 * r, near_pedal[1]), (near_pedal[0] + 0.1 * r, near_pedal[1])),
                        0.07 * r, (30, 30, 30)))
    return parts
