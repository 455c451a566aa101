"""Person: head, hair, torso, arms and legs in a walking (or cycling) pose."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from synth.shapes.palette import DARK, HAIR, PANTS, SKIN, jitter, pick, vivid
from synth.shapes.primitives import Circle, Color, Part, Point, Poly, Stroke, ellipse_points, shade

if TYPE_CHECKING:
    from synth.shapes.vehicles import BicycleLook


@dataclass(frozen=True)
class PersonLook:
    height: float  # metres
    build: float  # body width factor
    skin: Color
    hair: Color
    shirt: Color
    pants: Color
    shoes: Color
    hair_style: int  # 0 short, 1 long, 2 cap
    skirt: bool
    bag: int  # 0 none, 1 backpack, 2 hand bag
    bag_color: Color

    @property
    def stride(self) -> float:
        """Metres travelled per full gait cycle (two steps)."""
        return 0.8 * self.height

    @property
    def half_width(self) -> float:
        """Half of the horizontal extent in metres, for entry/exit planning."""
        return 0.3 * self.height


def sample_person(rng: np.random.Generator, height: float | None = None) -> PersonLook:
    if height is None:
        # Mostly adults, some children.
        height = float(rng.uniform(1.55, 1.95) if rng.random() < 0.85 else rng.uniform(1.05, 1.45))
    return PersonLook(
        height=height,
        build=float(rng.uniform(0.85, 1.25)),
        skin=jitter(rng, pick(rng, SKIN), 8),
        hair=pick(rng, HAIR),
        shirt=vivid(rng, sat=(0.1, 0.85), val=(0.25, 0.95)),
        pants=jitter(rng, pick(rng, PANTS), 10),
        shoes=pick(rng, DARK),
        hair_style=int(rng.choice(3, p=[0.55, 0.3, 0.15])),
        skirt=bool(rng.random() < 0.15),
        bag=int(rng.choice(3, p=[0.6, 0.25, 0.15])),
        bag_color=vivid(rng, sat=(0.1, 0.7), val=(0.15, 0.7)),
    )


def _rot(v: Point, angle: float) -> Point:
    c, s = math.cos(angle), math.sin(angle)
    return (c * v[0] - s * v[1], s * v[0] + c * v[1])


def _add(a: Point, b: Point, k: float = 1.0) -> Point:
    return (a[0] + k * b[0], a[1] + k * b[1])


def _joint(root: Point, target: Point, l1: float, l2: float, bend: float) -> tuple[Point, Point]:
    """Two-bone inverse kinematics: (middle joint, reached end point).

    `bend` +1 puts the joint counter-clockwise of the root->target line (a knee
    in front of a downward leg), -1 clockwise (an elbow below a forward arm).
    """
    dx, dy = target[0] - root[0], target[1] - root[1]
    d = math.hypot(dx, dy) or 1e-6
    reach = min(max(d, abs(l1 - l2) + 1e-3), l1 + l2 - 1e-3)
    u = (dx / d, dy / d)
    cos_a = (l1 * l1 + reach * reach - l2 * l2) / (2 * l1 * reach)
    mid = _add(root, _rot(u, bend * math.acos(max(-1.0, min(1.0, cos_a)))), l1)
    return mid, _add(root, u, reach)


def _torso(hip: Point, shoulder: Point, width: float) -> tuple[Point, ...]:
    """Torso outline around the spine segment; `width` is the hip width in metres."""
    u = (shoulder[0] - hip[0], shoulder[1] - hip[1])
    n = (u[1], -u[0])  # forward-facing normal
    length = math.hypot(*u) or 1e-6
    n = (n[0] / length, n[1] / length)
    outline = [
        (0.0, -0.5), (0.0, 0.45), (0.35, 0.42), (0.7, 0.55), (0.95, 0.45),
        (1.05, 0.15), (1.05, -0.3), (0.9, -0.55), (0.4, -0.45),
    ]
    return tuple(_add(_add(hip, u, a), n, b * width) for a, b in outline)


def person_parts(look: PersonLook, phase: float, amplitude: float,
                 ride: BicycleLook | None = None, ride_phase: float = 0.0) -> list[Part]:
    """Parts of a person facing +x. `amplitude` 0..1 scales the gait (0 = standing).

    With `ride`, the person sits on that bicycle (same origin): hips on the
    saddle, hands on the grips, feet on the pedals at crank angle `ride_phase`.
    """
    h, b = look.height, look.build
    thigh, shin = 0.245 * h, 0.245 * h
    upper_arm, forearm = 0.17 * h, 0.16 * h
    leg_w, arm_w = 0.072 * h * b, 0.05 * h * b
    far_pants, far_shirt = shade(look.pants, 0.7), shade(look.shirt, 0.7)
    legs_color = look.skin if look.skirt else look.pants

    if ride is None:
        swing = 0.45 * amplitude * math.sin(phase)
        # Lower the whole body as the legs spread so the stance foot stays on the ground.
        drop = (thigh + shin) * (1 - math.cos(abs(swing)))
        hip: Point = (0.0, 0.52 * h - drop)
        shoulder: Point = (0.01 * h, 0.815 * h - drop)
        feet, knees = [], []
        for sign, bend_on in ((-1.0, -math.cos(phase)), (1.0, math.cos(phase))):
            a = sign * swing  # far leg first, then near leg
            bend = 0.1 + 0.6 * amplitude * max(0.0, bend_on)
            knee = _add(hip, (math.sin(a), -math.cos(a)), thigh)
            ankle = _add(knee, (math.sin(a - bend), -math.cos(a - bend)), shin)
            knees.append(knee)
            feet.append(ankle)
        hands, elbows = [], []
        for sign in (1.0, -1.0):  # far arm swings with the near leg
            s = sign * 0.7 * swing
            elbow = _add(shoulder, (math.sin(s), -math.cos(s)), upper_arm)
            e = s + 0.25 + 0.25 * amplitude
            elbows.append(elbow)
            hands.append(_add(elbow, (math.sin(e), -math.cos(e)), forearm))
        head_c: Point = (0.015 * h, 0.935 * h - drop)
    else:
        hip = _add(ride.saddle, (-0.02, 0.05))
        lean = 0.5
        shoulder = _add(hip, (math.sin(lean), math.cos(lean)), 0.3 * h)
        knees, feet = [], []
        for angle in (ride_phase + math.pi, ride_phase):
            pedal = _add(ride.crank_center, (math.cos(angle), math.sin(angle)), ride.crank)
            knee, ankle = _joint(hip, pedal, thigh, shin + 0.03 * h, 1.0)
            knees.append(knee)
            feet.append(ankle)
        elbows, hands = [], []
        for _ in range(2):
            elbow, hand = _joint(shoulder, ride.grip, upper_arm, forearm, -1.0)
            elbows.append(elbow)
            hands.append(hand)
        head_c = _add(shoulder, (0.06 * h, 0.11 * h))

    parts: list[Part] = []
    # Far side limbs first, darker.
    parts.append(Stroke((shoulder, elbows[0], hands[0]), arm_w, far_shirt))
    parts.append(Circle(hands[0], 0.026 * h, shade(look.skin, 0.75)))
    parts.append(Stroke((hip, knees[0], feet[0]), leg_w, shade(legs_color, 0.7) if look.skirt else far_pants))
    parts.append(Stroke((feet[0], _add(feet[0], (0.07 * h, -0.012 * h))), 0.04 * h, shade(look.shoes, 0.8)))
    if look.bag == 1:
        parts.append(Poly(_torso(_add(hip, (-0.1 * h * b, 0.09 * h)), _add(shoulder, (-0.11 * h * b, -0.03 * h)),
                                 0.12 * h), look.bag_color))
    parts.append(Poly(_torso(hip, shoulder, 0.14 * h * b), look.shirt))
    # Trousers top / skirt over the hips.
    if look.skirt:
        parts.append(Poly((_add(hip, (-0.08 * h * b, 0.03 * h)), _add(hip, (0.08 * h * b, 0.03 * h)),
                           _add(hip, (0.13 * h * b, -0.2 * h)), _add(hip, (-0.12 * h * b, -0.2 * h))), look.pants))
    else:
        parts.append(Stroke((hip, _add(hip, (0.0, 0.03 * h))), 0.14 * h * b, look.pants))
    neck_top = _add(head_c, (-0.01 * h, -0.05 * h))
    parts.append(Stroke((_add(shoulder, (0.0, -0.02 * h)), neck_top), 0.045 * h, shade(look.skin, 0.85)))
    r = 0.062 * h
    parts.append(Circle(head_c, r, look.skin))
    parts.append(Poly((_add(head_c, (0.9 * r, 0.1 * r)), _add(head_c, (1.2 * r, -0.15 * r)),
                       _add(head_c, (0.85 * r, -0.3 * r))), shade(look.skin, 0.9)))  # nose
    if look.hair_style == 2:
        parts.append(Poly(ellipse_points(_add(head_c, (0.0, 0.15 * r)), (1.08 * r, 0.95 * r), 0, 180),
                          look.bag_color))
        parts.append(Stroke((_add(head_c, (0.3 * r, 0.2 * r)), _add(head_c, (1.6 * r, 0.15 * r))),
                            0.25 * r, shade(look.bag_color, 0.8)))
    else:
        hair = ellipse_points(head_c, (1.1 * r, 1.1 * r), 40, 235)
        if look.hair_style == 1:
            hair = hair + (_add(head_c, (-1.2 * r, -2.2 * r)), _add(head_c, (-0.4 * r, -1.8 * r)))
        parts.append(Poly(hair, look.hair))
    # Near side limbs on top.
    if look.skirt:
        parts.append(Stroke((_add(hip, (0.0, -0.15 * h)), knees[1], feet[1]), leg_w, legs_color))
    else:
        parts.append(Stroke((hip, knees[1], feet[1]), leg_w, legs_color))
    parts.append(Stroke((feet[1], _add(feet[1], (0.07 * h, -0.012 * h))), 0.04 * h, look.shoes))
    parts.append(Stroke((shoulder, elbows[1], hands[1]), arm_w, shade(look.shirt, 1.1)))
    parts.append(Circle(hands[1], 0.026 * h, look.skin))
    if look.bag == 2:
        top = _add(hands[1], (0.0, -0.02 * h))
        parts.append(Poly((_add(top, (-0.06 * h, 0.0)), _add(top, (0.06 * h, 0.0)),
                           _add(top, (0.07 * h, -0.14 * h)), _add(top, (-0.07 * h, -0.14 * h))), look.bag_color))
    return parts
