"""Tracks: which object is where, from when to when.

Every track moves in straight lines on the ground plane (metres, constant
velocity, depth clamped to a range), so its position at any time is a closed
formula and `Scene.render(t)` needs no state: frames can be rendered in any
order, which the still-image dataset relies on.

A scene has `slots` concurrent movers. Each slot starts with an object already
in view at t=0, and when that object has left the frame the next one enters from
the side after a short gap, until the clip ends. A bicycle usually carries a
rider: a second (person) track with the same motion, drawn just in front of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from synth.background import Layout
from synth.categories import BICYCLE, CAR, DOG, PERSON
from synth.shapes import (
    BicycleLook,
    CarLook,
    DogLook,
    PersonLook,
    sample_bicycle,
    sample_car,
    sample_dog,
    sample_person,
)

Look = PersonLook | CarLook | BicycleLook | DogLook

# Class mix of the movers (a cyclist also adds a person).
CLASS_WEIGHTS = {PERSON: 0.42, CAR: 0.24, BICYCLE: 0.16, DOG: 0.18}


@dataclass(frozen=True)
class Track:
    track_id: int
    category_id: int
    look: Look
    start: float  # seconds; the track exists for start <= t < end
    end: float
    x0: float  # lateral position (metres) at `start`
    z0: float  # distance (metres) at `start`
    vx: float  # metres per second
    vz: float
    z_limits: tuple[float, float]
    facing: int  # +1 right, -1 left
    gait: float  # 0 standing still .. 1 full walking/trotting motion
    phase0: float  # radians, so instances are not in step
    ride: BicycleLook | None = None  # a cyclist: the bicycle this person sits on
    depth_bias: float = 0.0  # metres nearer than its position, for draw order

    def position(self, t: float) -> tuple[float, float]:
        dt = t - self.start
        z = min(max(self.z0 + self.vz * dt, self.z_limits[0]), self.z_limits[1])
        return self.x0 + self.vx * dt, z

    def distance(self, t: float) -> float:
        """Metres travelled since `start` (drives the gait and wheel rotation)."""
        return math.hypot(self.vx, self.vz) * (t - self.start)


def plan_tracks(rng: np.random.Generator, layout: Layout, slots: int, duration: float) -> list[Track]:
    tracks: list[Track] = []
    classes = list(CLASS_WEIGHTS)
    weights = np.array(list(CLASS_WEIGHTS.values()))
    for _ in range(slots):
        t, first = 0.0, True
        while t < duration:
            category = classes[int(rng.choice(len(classes), p=weights / weights.sum()))]
            track = _new_track(rng, layout, len(tracks) + 1, category, t, first)
            tracks.append(track)
            if isinstance(track.look, BicycleLook) and rng.random() < 0.75:
                tracks.append(_rider(rng, track, len(tracks) + 1))
            t, first = track.end + float(rng.uniform(0.3, 3.0)), False
    return tracks


def _new_track(rng: np.random.Generator, layout: Layout, track_id: int, category: int,
               start: float, first: bool) -> Track:
    cam = layout.camera
    z_near = cam.z_near
    near, far = layout.road
    vz = 0.0
    gait = 1.0
    if category == CAR:
        look: Look = sample_car(rng)
        z, direction = layout.lanes[int(rng.integers(len(layout.lanes)))]
        speed = float(rng.uniform(2.5, 9.0))
        z_limits = (z, z)
    elif category == BICYCLE:
        look = sample_bicycle(rng)
        side = int(rng.integers(2))
        z = near + float(rng.uniform(0.4, 1.5)) if side == 0 else far - float(rng.uniform(0.4, 1.5))
        direction = layout.lanes[side][1]
        speed = float(rng.uniform(2.5, 6.0))
        z_limits = (z, z)
    else:
        if category == PERSON:
            look = sample_person(rng)
            speed = float(rng.uniform(0.7, 1.8))
            smallest = 0.2
        else:
            look = sample_dog(rng)
            speed = float(rng.uniform(0.6, 3.5))
            smallest = 0.3
        # Depth as an even spread over image rows, from the far limit to just
        # below the bottom edge (feet cut off by the border).
        z_limits = (0.92 * z_near, min(0.97 * layout.z_wall, z_near / smallest))
        z = z_near / float(rng.uniform(z_near / z_limits[1], 1.0 / 0.92))
        direction = 1 if rng.random() < 0.5 else -1
        if first and category == PERSON and rng.random() < 0.15:
            speed, gait = 0.0, 0.0  # someone standing, waiting
        else:
            gait = min(1.0, max(0.5, speed / 1.4))
        if speed > 0 and rng.random() < 0.35:
            # Walk at an angle to the street: the object changes scale over time.
            heading = float(rng.uniform(-0.6, 0.6))
            vz = speed * math.sin(heading)
            speed *= math.cos(heading)
    vx = direction * speed
    half = look.half_width
    if first:
        x0 = cam.lateral(float(rng.uniform(-0.1, 1.1)) * cam.width, z)
    elif direction > 0:
        x0 = cam.lateral(0, z) - half - 0.1
    else:
        x0 = cam.lateral(cam.width, z) + half + 0.1
    track = Track(track_id, category, look, start, math.inf, x0, z, vx, vz, z_limits, direction, gait,
                  float(rng.uniform(0, 2 * math.pi)))
    return _with_end(track, layout)


def _with_end(track: Track, layout: Layout) -> Track:
    """The time at which a moving track has fully left the frame on its far side."""
    if track.vx == 0.0:
        return track
    cam = layout.camera
    half = track.look.half_width
    t = track.start
    # Coarse steps are enough: this only decides when the next object may enter.
    for _ in range(20000):
        t += 0.1
        x, z = track.position(t)
        left = cam.column(x - half, z)
        right = cam.column(x + half, z)
        if (track.vx > 0 and left > cam.width) or (track.vx < 0 and right < 0):
            return replace(track, end=t)
    return track


def _rider(rng: np.random.Generator, bike: Track, track_id: int) -> Track:
    assert isinstance(bike.look, BicycleLook)
    look = bike.look
    # Pick a rider whose legs reach the pedals: hip-to-lowest-pedal is about half the height.
    reach = look.saddle[1] + 0.05 - (look.crank_center[1] - look.crank)
    height = min(2.0, max(1.2, reach / 0.5 * float(rng.uniform(0.97, 1.06))))
    return Track(track_id, PERSON, sample_person(rng, height), bike.start, bike.end, bike.x0, bike.z0,
                 bike.vx, bike.vz, bike.z_limits, bike.facing, 0.0, bike.phase0, ride=look, depth_bias=0.01)
