"""The rendering core: one seeded scene, rendered at any time t with exact ground truth.

Ground-truth rules (the same for video frames and dataset images):

- Every object is drawn as a binary sprite; a label map records, per pixel,
  which object was drawn there last. Objects are painted far to near (larger
  distance first, so a larger foot row = closer = drawn later), interleaved
  with static clutter (lamp posts, trees, bins...) that can hide them.
- An instance's mask is the set of pixels where it is the top-most thing:
  masks of different instances never overlap, occlusion by other objects,
  by clutter and by the frame border is already removed.
- `bbox` is the tight [x, y, w, h] box of that visible mask, `area` its pixel
  count, `occluded` = 1 - visible / full pixels (full = the whole unclipped
  sprite, so a half off-screen car is 0.5 occluded).
- `amodal_bbox` is the tight [x, y, w, h] box of the whole sprite, hidden and
  off-screen parts included (it may reach past the frame): where the object
  really is, e.g. where its feet touch the ground while a parked car hides them.
- An instance is kept only if at least MIN_VISIBLE_PIXELS pixels *and*
  MIN_VISIBLE_FRACTION of it are visible. Objects below that are still drawn
  (that is what a camera shows; a detector that finds them is not penalised
  much at these sizes) but have no annotation. The rule depends only on the
  label map, so video and dataset apply it identically.
- Shadows, motion blur, lighting and sensor noise change the image only;
  masks are the sharp object shapes.

Determinism: all randomness is drawn from the Generator given to the
constructor, in a fixed order; `render(t)` draws nothing from it (per-frame
noise comes from a generator seeded by (scene seed, t)), so the same t always
gives the same frame, in any call order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth.background import Layout, render_background, sample_layout
from synth.categories import NAMES
from synth.compose import clip_rect, paste, shadow, shadow_template
from synth.motion import Track, plan_tracks
from synth.shapes import (
    BicycleLook,
    CarLook,
    DogLook,
    Part,
    Sprite,
    bicycle_parts,
    car_parts,
    dog_parts,
    person_parts,
    rasterize,
    sample_clutter,
)

# Bump when the same seed starts producing different pictures or ground truth.
GENERATOR_VERSION = "1"
MIN_VISIBLE_PIXELS = 30
MIN_VISIBLE_FRACTION = 0.15
MAX_OBJECTS = 100  # the label map is uint8: objects (riders included) plus clutter must fit
CLUTTER_LABEL = 255
_NOISE_PAD = 32  # the noise bank is this much larger than the frame; frames use random crops


@dataclass(frozen=True)
class Instance:
    """One visible object in one rendered image."""

    track_id: int
    category_id: int
    bbox: tuple[int, int, int, int]  # x, y, w, h of the visible pixels
    area: int  # visible pixel count
    occluded: float  # fraction hidden by other things or the frame border
    mask: np.ndarray  # bool, bbox-sized crop of the visible mask
    amodal_bbox: tuple[int, int, int, int] | None = None  # x, y, w, h of the whole object, hidden parts included

    @property
    def category_name(self) -> str:
        return NAMES[self.category_id]

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        x, y, w, h = self.bbox
        return x, y, x + w, y + h

    def full_mask(self, height: int, width: int) -> np.ndarray:
        """The visible mask as a frame-sized bool array."""
        out = np.zeros((height, width), bool)
        x, y, w, h = self.bbox
        out[y:y + h, x:x + w] = self.mask
        return out


@dataclass(frozen=True)
class _Item:
    """Something to paste in this frame, in painter's order."""

    z: float
    label: int
    sprite: Sprite
    blur: tuple[float, float]


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    """y0, y1, x0, x1 (ends exclusive) of the set pixels of a non-empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


class Scene:
    """A seeded camera scene: background, clutter, moving objects, lighting, noise."""

    def __init__(self, rng: np.random.Generator, width: int, height: int, *, objects: int = 6,
                 duration: float = 10.0, exposure: float = 0.01) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"scene size must be at least 16x16, got {width}x{height}")
        if not 0 <= objects <= MAX_OBJECTS // 2:
            raise ValueError(f"objects must be in 0..{MAX_OBJECTS // 2}, got {objects}")
        if not duration > 0 or not math.isfinite(duration):
            raise ValueError(f"duration must be a positive number of seconds, got {duration}")
        self.width, self.height = width, height
        self.duration, self.exposure = duration, exposure
        self.layout: Layout = sample_layout(rng, width, height)
        self.background = render_background(rng, self.layout)
        self._shadow = shadow_template()
        self._clutter = self._place_clutter(rng)
        self.tracks: list[Track] = plan_tracks(rng, self.layout, objects, duration)
        self._shadow_strength = float(rng.uniform(0.15, 0.45))
        # Lighting: a tint, gamma, a slow brightness wave and slower colour waves.
        self._tint = rng.uniform(0.92, 1.08, 3)
        self._gamma_curve = (np.arange(256) / 255.0) ** float(rng.uniform(0.85, 1.15)) * 255.0
        self._brightness = (float(rng.uniform(0.04, 0.18)), float(rng.uniform(8, 40)), float(rng.uniform(0, 6.3)))
        self._color_waves = rng.uniform((0.0, 10.0, 0.0), (0.05, 60.0, 6.3), (3, 3))
        # Sensor noise: one bank, a random crop per frame (drawing fresh gaussian
        # noise for a 720p frame would cost more than rendering the frame).
        sigma = float(rng.uniform(1.5, 5.0))
        bank = rng.standard_normal((height + _NOISE_PAD, width + _NOISE_PAD, 3), dtype=np.float32)
        self._noise = np.rint(bank * sigma).astype(np.int16)
        self._frame_seed = int(rng.integers(2**63))

    def active_tracks(self, t: float) -> list[Track]:
        return [tr for tr in self.tracks if tr.start <= t < tr.end]

    def render(self, t: float) -> tuple[np.ndarray, list[Instance]]:
        """The frame at time t (seconds, >= 0): RGB uint8 H x W x 3 and its visible instances."""
        if not t >= 0:
            raise ValueError(f"time must be >= 0, got {t}")
        cam = self.layout.camera
        w, h = self.width, self.height
        image = self.background.copy()
        labels = np.zeros((h, w), np.uint8)
        items = list(self._clutter)
        drawn: list[tuple[int, Track, Sprite]] = []
        for track in self.active_tracks(t):
            x, z = track.position(t)
            ppm = cam.ppm(z)
            foot = (cam.column(x, z), cam.row(z))
            sprite = rasterize(self._parts(track, t), ppm, foot, track.facing < 0, self.layout.light, (w, h))
            if sprite is None:
                continue
            if track.ride is None:
                half = track.look.half_width * ppm
                shadow(image, self._shadow, (foot[0] - 0.3 * half * self.layout.light, foot[1]),
                       (0.9 * half, 0.12 * half), self._shadow_strength)
            label = len(drawn) + 1
            drawn.append((label, track, sprite))
            # Image motion during the exposure: d(column)/dt and d(row)/dt
            # (no depth motion while the depth is held at a limit).
            vz = track.vz if track.z_limits[0] < z < track.z_limits[1] else 0.0
            dcol = cam.focal * (track.vx / z - x * vz / z**2)
            drow = -cam.focal * cam.cam_height * vz / z**2
            items.append(_Item(z - track.depth_bias, label, sprite, (dcol * self.exposure, drow * self.exposure)))
        items.sort(key=lambda item: (-item.z, item.label))
        for item in items:
            paste(image, labels, item.sprite, item.label, item.blur)
        image = cv2.LUT(image, self._lut(t))
        frame_rng = np.random.default_rng([self._frame_seed, int(round(t * 1_000_000))])
        oy, ox = (int(v) for v in frame_rng.integers(0, _NOISE_PAD + 1, 2))
        image = cv2.add(image, self._noise[oy:oy + h, ox:ox + w], dtype=cv2.CV_8U)
        return image, self._instances(labels, drawn)

    def background_at(self, t: float) -> np.ndarray:
        """The static background under the lighting of time t: no clutter, objects or noise."""
        return cv2.LUT(self.background, self._lut(t))

    def _parts(self, track: Track, t: float) -> list[Part]:
        look = track.look
        dist = track.distance(t)
        if isinstance(look, CarLook):
            return car_parts(look, track.phase0 - dist / look.wheel)  # wheels roll, clockwise
        bike = look if isinstance(look, BicycleLook) else track.ride
        # A cyclist and its bicycle share the crank angle; pedalling turns clockwise.
        crank = 0.0 if bike is None else track.phase0 - 2 * math.pi * dist / bike.stride
        if isinstance(look, BicycleLook):
            return bicycle_parts(look, crank)
        phase = track.phase0 + 2 * math.pi * dist / look.stride
        if isinstance(look, DogLook):
            return dog_parts(look, phase, track.gait)
        if bike is not None:
            return person_parts(look, 0.0, 0.0, ride=bike, ride_phase=crank)
        return person_parts(look, phase, track.gait)

    def _instances(self, labels: np.ndarray, drawn: list[tuple[int, Track, Sprite]]) -> list[Instance]:
        out = []
        for label, track, sprite in drawn:
            rect = clip_rect(sprite.x0, sprite.y0, sprite.mask, self.width, self.height)
            full = cv2.countNonZero(sprite.mask)
            if rect is None or full == 0:
                continue
            rows, cols, _, _ = rect
            visible = labels[rows, cols] == label
            area = int(np.count_nonzero(visible))
            if area < MIN_VISIBLE_PIXELS or area < MIN_VISIBLE_FRACTION * full:
                continue
            y0, y1, x0, x1 = _extent(visible)
            bbox = (cols.start + x0, rows.start + y0, x1 - x0, y1 - y0)
            ay0, ay1, ax0, ax1 = _extent(sprite.mask)  # the whole sprite, unclipped by the frame
            amodal = (sprite.x0 + ax0, sprite.y0 + ay0, ax1 - ax0, ay1 - ay0)
            out.append(Instance(track.track_id, track.category_id, bbox, area,
                                round(1.0 - area / full, 4), visible[y0:y1, x0:x1].copy(), amodal))
        return out

    def _lut(self, t: float) -> np.ndarray:
        amp, period, phase = self._brightness
        gain = self._tint * (1.0 + amp * math.sin(2 * math.pi * t / period + phase))
        for c, (a, p, ph) in enumerate(self._color_waves):
            gain[c] *= 1.0 + a * math.sin(2 * math.pi * t / p + ph)
        table = np.clip(self._gamma_curve[:, None] * gain[None, :] + 0.5, 0, 255).astype(np.uint8)
        return table.reshape(256, 1, 3)

    def _place_clutter(self, rng: np.random.Generator) -> list[_Item]:
        """Static non-object items on the pavements; their shadows go into the background."""
        cam, layout = self.layout.camera, self.layout
        near, far = layout.road
        items = []
        for _ in range(int(rng.integers(2, 8))):
            parts, half = sample_clutter(rng)
            if rng.random() < 0.5:
                z = float(rng.uniform(1.1 * cam.z_near, max(1.1 * cam.z_near, near - 0.5)))
            else:
                z = float(rng.uniform(far + 0.5, max(far + 0.5, 0.98 * layout.z_wall)))
            x = cam.lateral(float(rng.uniform(-0.05, 1.05)) * cam.width, z)
            ppm = cam.ppm(z)
            foot = (cam.column(x, z), cam.row(z))
            sprite = rasterize(parts, ppm, foot, bool(rng.random() < 0.5), layout.light, (cam.width, cam.height))
            if sprite is None:
                continue
            shadow(self.background, self._shadow, (foot[0] - 0.3 * half * ppm * layout.light, foot[1]),
                   (0.6 * half * ppm, 0.1 * half * ppm), 0.3)
            items.append(_Item(z, CLUTTER_LABEL, sprite, (0.0, 0.0)))
        return items
