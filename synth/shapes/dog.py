"""Dog: body, chest, head with snout and ears, four legs and a tail."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synth.shapes.palette import jitter, pick
from synth.shapes.primitives import Circle, Color, Ellipse, Part, Poly, Stroke, shade

COATS: tuple[Color, ...] = (
    (120, 75, 40), (30, 25, 22), (235, 230, 220), (205, 160, 90), (130, 130, 130), (160, 100, 50),
)


@dataclass(frozen=True)
class DogLook:
    length: float  # metres, chest to rump
    leg: float  # leg length as a fraction of `length`
    bulk: float  # body thickness factor
    coat: Color
    patch: Color | None  # second coat colour
    ears: int  # 0 pointy, 1 floppy
    tail: int  # 0 up, 1 straight, 2 down

    @property
    def stride(self) -> float:
        return 1.6 * self.length

    @property
    def half_width(self) -> float:
        return 0.85 * self.length


def sample_dog(rng: np.random.Generator) -> DogLook:
    coat = jitter(rng, pick(rng, COATS), 12)
    return DogLook(
        length=float(rng.uniform(0.45, 1.0)),
        leg=float(rng.uniform(0.45, 0.75)),
        bulk=float(rng.uniform(0.85, 1.25)),
        coat=coat,
        patch=pick(rng, COATS) if rng.random() < 0.3 else None,
        ears=int(rng.integers(2)),
        tail=int(rng.integers(3)),
    )


def dog_parts(look: DogLook, phase: float, amplitude: float) -> list[Part]:
    """Side view facing +x; `phase` drives the trot, `amplitude` 0 stands still."""
    L = look.length
    leg = look.leg * L
    body_y = leg + 0.12 * L * look.bulk
    coat, far = look.coat, shade(look.coat, 0.7)
    parts: list[Part] = []

    def legs(x: float, offset: float, color: Color, width: float) -> Part:
        a = 0.45 * amplitude * math.sin(phase + offset)
        hip = (x, body_y - 0.05 * L)
        knee = (hip[0] + 0.5 * leg * math.sin(a), hip[1] - 0.5 * leg * math.cos(a))
        bend = 0.35 * amplitude * max(0.0, math.cos(phase + offset))
        paw = (knee[0] + 0.5 * leg * math.sin(a - bend), knee[1] - 0.5 * leg * math.cos(a - bend))
        return Stroke((hip, knee, paw, (paw[0] + 0.06 * L, paw[1])), width, color)

    leg_w = 0.09 * L * look.bulk
    # Diagonal pairs move together in a trot: far-front with near-back.
    parts.append(legs(0.3 * L, 0.0, far, leg_w))
    parts.append(legs(-0.33 * L, math.pi, far, leg_w))
    wag = 0.25 * amplitude * math.sin(2.0 * phase)
    tail_base = (-0.45 * L, body_y + 0.06 * L)
    tail_dir = (0.9 + wag, 0.15 + wag, -0.8 + wag)[look.tail]
    tip = (tail_base[0] - 0.4 * L * math.cos(tail_dir), tail_base[1] + 0.4 * L * math.sin(tail_dir))
    mid = (tail_base[0] - 0.25 * L * math.cos(tail_dir * 0.6), tail_base[1] + 0.25 * L * math.sin(tail_dir * 0.6))
    parts.append(Stroke((tail_base, mid, tip), 0.05 * L, shade(coat, 0.9)))
    thick = 0.17 * L * look.bulk
    parts.append(Ellipse((0.0, body_y), (0.45 * L, thick), 3.0, coat))
    parts.append(Ellipse((0.3 * L, body_y + 0.02 * L), (0.18 * L, 1.1 * thick), -20.0, shade(coat, 1.05)))  # chest
    if look.patch is not None:
        parts.append(Ellipse((-0.1 * L, body_y + 0.05 * L), (0.2 * L, 0.6 * thick), 10.0, look.patch))
    parts.append(Ellipse((-0.05 * L, body_y - 0.7 * thick), (0.32 * L, 0.25 * thick), 0.0,
                         shade(coat, 0.8)))  # belly shadow
    head = (0.52 * L, body_y + 0.3 * L)
    parts.append(Stroke(((0.3 * L, body_y + 0.05 * L), head), 0.2 * L, coat))  # neck
    parts.append(Circle(head, 0.13 * L, coat))
    snout_end = (head[0] + 0.24 * L, head[1] - 0.06 * L)
    parts.append(Stroke((head, snout_end), 0.12 * L, shade(coat, 0.95)))
    parts.append(Circle(snout_end, 0.035 * L, (15, 12, 10)))  # nose
    parts.append(Circle((head[0] + 0.05 * L, head[1] + 0.04 * L), 0.02 * L, (10, 10, 10)))  # eye
    if look.ears == 0:
        ear = ((head[0] - 0.08 * L, head[1] + 0.08 * L), (head[0] - 0.03 * L, head[1] + 0.24 * L),
               (head[0] + 0.03 * L, head[1] + 0.1 * L))
        parts.append(Poly(ear, shade(coat, 0.8)))
    else:
        parts.append(Ellipse((head[0] - 0.08 * L, head[1] - 0.02 * L), (0.05 * L, 0.12 * L), 15.0,
                             shade(coat, 0.7)))
    parts.append(legs(0.3 * L, math.pi, coat, leg_w))
    parts.append(legs(-0.33 * L, 0.0, coat, leg_w))
    return parts
