"""Camera geometry, scene layout and the static background image.

The camera is a pinhole at `cam_height` metres looking horizontally across a
flat ground plane, so a ground point at distance z (metres) and lateral offset
x projects to column `width/2 + focal*x/z` and row `horizon + focal*cam_height/z`,
and an object there is drawn at `focal/z` pixels per metre. That one relation
gives perspective for free: nearer objects are lower in the frame, bigger and
faster in pixels. The street runs across the view (constant z), like a camera
mounted on a wall watching the traffic go by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from synth.shapes.palette import jitter, pick

STREET, PARK, PLAZA = 0, 1, 2


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    horizon: float  # image row of the horizon
    cam_height: float  # metres above the ground
    focal: float  # pixels

    @property
    def z_near(self) -> float:
        """Ground distance seen at the bottom image row."""
        return self.focal * self.cam_height / (self.height - self.horizon)

    def row(self, z: float) -> float:
        return self.horizon + self.focal * self.cam_height / z

    def column(self, x: float, z: float) -> float:
        return self.width / 2 + self.focal * x / z

    def ppm(self, z: float) -> float:
        """Pixels per metre for something standing at distance z."""
        return self.focal / z

    def lateral(self, column: float, z: float) -> float:
        """Inverse of `column`: lateral metres of an image column at distance z."""
        return (column - self.width / 2) * z / self.focal


@dataclass(frozen=True)
class Layout:
    camera: Camera
    style: int  # STREET, PARK or PLAZA
    z_wall: float  # distance of the building fronts / tree line; nothing stands beyond
    road: tuple[float, float]  # near and far distance of the road band
    lanes: tuple[tuple[float, int], ...]  # (distance, direction of travel) per lane
    light: float  # horizontal light direction, -1 (from the left) .. 1


def sample_layout(rng: np.random.Generator, width: int, height: int) -> Layout:
    horizon = height * float(rng.uniform(0.22, 0.4))
    hfov = math.radians(float(rng.uniform(55.0, 75.0)))
    camera = Camera(width, height, horizon, float(rng.uniform(2.2, 3.5)), width / 2 / math.tan(hfov / 2))
    z_near = camera.z_near
    z_wall = z_near * float(rng.uniform(5.0, 8.0))
    road_near = z_near * float(rng.uniform(1.5, 2.3))
    road_far = min(road_near + float(rng.uniform(6.0, 9.0)), 0.8 * z_wall)
    direction = 1 if rng.random() < 0.5 else -1
    span = road_far - road_near
    lanes = ((road_near + 0.27 * span, direction), (road_near + 0.73 * span, -direction))
    return Layout(camera, int(rng.integers(3)), z_wall, (road_near, road_far), lanes,
                  float(rng.uniform(-1.0, 1.0)))


def fractal_noise(rng: np.random.Generator, height: int, width: int, cell: float,
                  octaves: int = 4, aspect: float = 1.0) -> np.ndarray:
    """Smooth value noise in about [-1, 1]: random grids upsampled and summed.

    `cell` is the coarsest feature size in pixels; `aspect` > 1 stretches the
    features horizontally (ground seen at a grazing angle).
    """
    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        gh = max(2, int(height / cell) + 2)
        gw = max(2, int(width / (cell * aspect)) + 2)
        grid = rng.standard_normal((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
        cell = max(cell / 2.0, 1.0)
    return out / (total * 1.5)


SKIES = (((95, 150, 215), (195, 215, 235)), ((150, 155, 165), (205, 205, 210)),
         ((70, 80, 140), (235, 170, 120)), ((120, 170, 225), (225, 230, 235)))
FACADES = ((170, 95, 70), (210, 195, 165), (150, 150, 150), (185, 175, 160), (120, 110, 100), (225, 215, 200))
GRASS = ((80, 125, 55), (95, 135, 60), (70, 110, 60))
PAVING = ((160, 155, 150), (190, 180, 165), (140, 140, 145))
ASPHALT = ((75, 75, 78), (95, 93, 90), (60, 62, 66))


def render_background(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """The static scene behind the objects, H x W x 3 uint8 RGB."""
    cam = layout.camera
    w, h = cam.width, cam.height
    img = np.zeros((h, w, 3), np.uint8)
    wall_row = int(round(cam.row(layout.z_wall)))
    top, bottom = SKIES[int(rng.integers(len(SKIES)))]
    ramp = np.linspace(0.0, 1.0, max(wall_row, 1), dtype=np.float32)[:, None]
    sky = np.array(top, np.float32) * (1 - ramp) + np.array(bottom, np.float32) * ramp
    img[:wall_row] = sky[:, None, :].astype(np.uint8)
    clouds = np.clip(fractal_noise(rng, h, w, w / 4, 4, 2.5) * 2.0 - 0.3, 0.0, 1.0)
    clouds[wall_row:] = 0.0

    sky_only = img.copy()
    if layout.style == PARK:
        _tree_line(rng, img, cam, layout.z_wall, wall_row)
    else:
        _buildings(rng, img, cam, layout.z_wall, wall_row)
    clouds[np.any(img != sky_only, axis=2)] = 0.0  # clouds only where the sky shows
    _ground(rng, img, layout, wall_row)

    texture = fractal_noise(rng, h, w, w / 10, 5, 2.0) * float(rng.uniform(0.06, 0.14))
    texture[:wall_row] *= 0.3
    grain = rng.standard_normal((h, w), dtype=np.float32) * 0.02
    gain = (1.0 + texture + grain)[:, :, None]
    out = img.astype(np.float32) * gain
    out += clouds[:, :, None] * (np.float32(235.0) - out) * 0.8
    return np.clip(out, 0, 255).astype(np.uint8)


def _buildings(rng: np.random.Generator, img: np.ndarray, cam: Camera, z: float, base: int) -> None:
    ppm = cam.ppm(z)
    x = -float(rng.uniform(0, 4)) * ppm
    while x < cam.width:
        bw = float(rng.uniform(8, 25)) * ppm
        top = base - float(rng.uniform(6, 30)) * ppm
        color = jitter(rng, pick(rng, FACADES), 12)
        x0, x1 = int(x), int(x + bw)
        cv2.rectangle(img, (x0, int(top)), (x1, base), color, -1)
        cv2.rectangle(img, (x0, int(top)), (x1, int(top + 0.6 * ppm)), tuple(int(c * 0.7) for c in color), -1)
        lit = jitter(rng, (70, 85, 100), 15)
        floor = 3.2 * ppm
        row = base - floor * 1.2
        while row - 1.4 * ppm > top + 0.8 * ppm:
            col = x + 1.2 * ppm
            while col + 1.3 * ppm < x + bw - 0.6 * ppm:
                glass = (200, 190, 140) if rng.random() < 0.08 else lit
                cv2.rectangle(img, (int(col), int(row - 1.5 * ppm)), (int(col + 1.2 * ppm), int(row)), glass, -1)
                col += 2.6 * ppm
            row -= floor
        door = x + float(rng.uniform(0.2, 0.7)) * bw
        cv2.rectangle(img, (int(door), int(base - 2.3 * ppm)), (int(door + 1.4 * ppm), base), (50, 45, 40), -1)
        x += bw + float(rng.uniform(0, 3)) * ppm


def _tree_line(rng: np.random.Generator, img: np.ndarray, cam: Camera, z: float, base: int) -> None:
    ppm = cam.ppm(z)
    hill = (90, 120, 80)
    cv2.rectangle(img, (0, int(base - 1.5 * ppm)), (cam.width, base), hill, -1)
    for _ in range(int(cam.width / (1.5 * ppm)) + 2):
        x = float(rng.uniform(0, cam.width))
        trunk = float(rng.uniform(2, 5)) * ppm
        cv2.line(img, (int(x), base), (int(x), int(base - trunk)), (70, 55, 40), max(1, int(0.3 * ppm)))
        r = float(rng.uniform(1.5, 3.5)) * ppm
        cv2.circle(img, (int(x), int(base - trunk - 0.6 * r)), int(r), jitter(rng, (55, 95, 50), 20), -1)


def _ground(rng: np.random.Generator, img: np.ndarray, layout: Layout, wall_row: int) -> None:
    cam = layout.camera
    w, h = cam.width, cam.height
    near, far = layout.road
    ground = pick(rng, GRASS if layout.style == PARK else PAVING)
    road = pick(rng, ASPHALT)
    img[wall_row:] = ground
    if layout.style == PLAZA:
        img[wall_row:] = jitter(rng, road, 8)
    r_far, r_near = int(round(cam.row(far))), int(round(cam.row(near)))
    img[r_far:r_near] = road
    # Kerb faces: 15 cm vertical strips at both road edges.
    for z, shade_ in ((near, 0.9), (far, 1.2)):
        y = cam.row(z)
        kerb = max(1, int(round(0.15 * cam.ppm(z))))
        color = tuple(min(255, int(c * shade_)) for c in (170, 168, 160))
        cv2.rectangle(img, (0, int(y) - kerb), (w, int(y)), color, -1)
    # Dashed centre line, 3 m dashes every 8 m.
    mid = (near + far) / 2
    x_lo, x_hi = cam.lateral(0, mid) - 8, cam.lateral(w, mid) + 8
    x = math.floor(x_lo / 8) * 8 + float(rng.uniform(0, 8))
    paint = (230, 225, 200) if rng.random() < 0.7 else (230, 190, 40)
    while x < x_hi:
        quad = [(cam.column(x, mid - 0.08), cam.row(mid - 0.08)), (cam.column(x + 3, mid - 0.08), cam.row(mid - 0.08)),
                (cam.column(x + 3, mid + 0.08), cam.row(mid + 0.08)), (cam.column(x, mid + 0.08), cam.row(mid + 0.08))]
        cv2.fillPoly(img, [np.array(quad, np.int32)], paint)
        x += 8
    # Paving joints (or parking bays on a plaza) on the near side, converging to the horizon.
    line = tuple(int(c * 0.8) for c in img[h - 1, 0])
    step = 4.0 if layout.style == PLAZA else 0.8
    z_far = near - 0.2
    x_lo, x_hi = cam.lateral(0, z_far), cam.lateral(w, z_far)
    x = math.floor(x_lo / step) * step
    while x < x_hi and layout.style != PARK:
        p0 = (int(cam.column(x, cam.z_near * 0.8)), int(cam.row(cam.z_near * 0.8)))
        p1 = (int(cam.column(x, z_far)), int(cam.row(z_far)))
        cv2.line(img, p0, p1, line if layout.style != PLAZA else (220, 220, 215), 1)
        x += step
    z = cam.z_near
    while z < z_far and layout.style == STREET:
        y = int(cam.row(z))
        cv2.line(img, (0, y), (w, y), line, 1)
        z += 0.8
