"""Constant-velocity Kalman filters for boxes, one row per track, advanced together.

Rules:
- State per box: position [cx, cy, w, h] and velocity [vx, vy, vw, vh] in source pixels;
  velocities are pixels per *second* of stream time, so `predict(dt)` moves a box by
  the time that really passed. Frames thinned by stride / max_fps, or dropped by a live
  source, only make dt larger; they do not change what a velocity means.
- Noise follows SORT/ByteTrack's convention, relative to box size, split as BoT-SORT does
  for a (w, h) state: x and w scale with the width, y and h with the height. ByteTrack's
  per-frame values hold at a 30 fps reference and process noise grows linearly with dt
  (a random walk), so a 1/30 s step gets ByteTrack's per-frame noise, a 0.1 s step three
  times as much, and dt = 0 leaves the state unchanged.
- Width and height stay at least `MIN_SIZE` pixels: a box predicted to shrink through zero
  stops there, and the filter never reports a negative size.
- Process, measurement and starting noise are all diagonal, and the motion only couples a
  coordinate with its own velocity, so the 8 x 8 covariance of SORT/ByteTrack stays
  block-diagonal: four independent 2 x 2 blocks (coordinate, its velocity). We keep just
  those blocks: the same filter, exactly, in a few elementwise numpy operations per frame
  whatever the number of tracks, with no 8 x 8 products or inversions. Five contiguous
  N x 4 arrays hold, per coordinate cx, cy, w, h: its value `pos`, its velocity `vel`,
  and its block [[var_pos, cov], [cov, var_vel]] (contiguous arrays: numpy is about three
  times slower on strided views of one packed array at these sizes).
"""

from __future__ import annotations

import numpy as np

MIN_SIZE = 1.0  # pixels

REF_DT = 1.0 / 30.0  # the frame time at which ByteTrack's per-frame noise values hold
POS_NOISE = 1.0 / 20.0  # std of a position (and of a measurement) as a fraction of box size
VEL_NOISE = 1.0 / 160.0  # std of a per-frame velocity change as a fraction of box size


# Both box layouts are linear in each other: one small matrix product converts N boxes
# (row = input component, column = output component).
_TO_CXCYWH = np.array([[0.5, 0, -1, 0], [0, 0.5, 0, -1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]])  # from x1 y1 x2 y2
_TO_XYXY = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]])  # from cx cy w h


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    return np.asarray(boxes, np.float64) @ _TO_CXCYWH


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    return boxes @ _TO_XYXY


_SIZE_OF = np.array([2, 3, 2, 3])  # per coordinate, the size its noise scales with: w for x and w, h for y and h


class KalmanBoxes:
    """N box filters; row i belongs to whatever the caller keeps at index i."""

    def __init__(self) -> None:
        self.pos = np.zeros((0, 4))  # cx, cy, w, h
        self.vel = np.zeros((0, 4))  # their rates, pixels per second
        self.var_pos = np.zeros((0, 4))  # each coordinate's 2 x 2 covariance block:
        self.cov = np.zeros((0, 4))  # [[var_pos, cov], [cov, var_vel]]
        self.var_vel = np.zeros((0, 4))

    def __len__(self) -> int:
        return len(self.pos)

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.pos, self.vel, self.var_pos, self.cov, self.var_vel

    def add(self, boxes: np.ndarray) -> None:
        """Append one filter per xyxy box, at rest (velocity 0) with a wide velocity prior."""
        pos = xyxy_to_cxcywh(boxes)
        np.maximum(pos[:, 2:], MIN_SIZE, out=pos[:, 2:])
        size = pos[:, _SIZE_OF]
        still = np.zeros_like(pos)
        # ByteTrack's start: position std 2 x measurement noise; velocity std 10 x the
        # per-frame velocity noise (here per second: about 1.9 box sizes per second).
        new = (pos, still, (2 * POS_NOISE * size) ** 2, still, (10 * VEL_NOISE / REF_DT * size) ** 2)
        self.pos, self.vel, self.var_pos, self.cov, self.var_vel = (
            np.concatenate([old, more]) for old, more in zip(self._arrays(), new)
        )

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where `mask` is False (order of the rest is kept)."""
        self.pos, self.vel, self.var_pos, self.cov, self.var_vel = (array[mask] for array in self._arrays())

    def hold_size(self, mask: np.ndarray) -> None:
        """Stop size changes of the rows in `mask` (ByteTrack does this for lost tracks:
        an unseen box should not keep growing or shrinking on an old trend)."""
        self.vel[mask, 2:] = 0.0

    def predict(self, dt: float) -> None:
        """Advance every row by `dt` seconds of stream time (dt <= 0 changes nothing)."""
        if dt <= 0 or not len(self.pos):
            return
        size = self.pos[:, _SIZE_OF]
        size *= size
        steps = dt / REF_DT
        # P' = F P F^T + Q per 2 x 2 block, F = [[1, dt], [0, 1]]
        self.var_pos += dt * (2 * self.cov + dt * self.var_vel) + size * (POS_NOISE**2 * steps)
        self.cov += dt * self.var_vel
        self.var_vel += size * ((VEL_NOISE / REF_DT) ** 2 * steps)
        self.pos += dt * self.vel
        np.maximum(self.pos[:, 2:], MIN_SIZE, out=self.pos[:, 2:])

    def correct(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Fold in one measured xyxy box per row of `rows` (rows unique)."""
        if not len(rows):
            return
        pos, var_pos, cov = self.pos[rows], self.var_pos[rows], self.cov[rows]
        noise = pos[:, _SIZE_OF]
        noise *= POS_NOISE
        spread = var_pos + noise * noise  # innovation variance H P H^T + R
        gain_pos, gain_vel = var_pos / spread, cov / spread
        innovation = xyxy_to_cxcywh(boxes)
        innovation -= pos
        pos += gain_pos * innovation
        np.maximum(pos[:, 2:], MIN_SIZE, out=pos[:, 2:])
        self.pos[rows] = pos
        self.vel[rows] += gain_vel * innovation
        # P' = P - K H P, block by block
        self.var_vel[rows] -= gain_vel * cov
        remaining = 1 - gain_pos
        self.var_pos[rows] = remaining * var_pos
        self.cov[rows] = remaining * cov

    def boxes(self) -> np.ndarray:
        """The current (predicted or corrected) boxes, N x 4 xyxy."""
        return cxcywh_to_xyxy(self.pos)
