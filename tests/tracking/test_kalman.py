"""The box Kalman filter: the textbook filter's numbers, time-aware motion, sane sizes."""

from __future__ import annotations

import numpy as np
import pytest

from stages.tracking.kalman import MIN_SIZE, POS_NOISE, REF_DT, VEL_NOISE, KalmanBoxes, xyxy_to_cxcywh


def as_xyxy(cxcywh: np.ndarray) -> np.ndarray:
    return np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)


class FullFilter:
    """The usual 8-state filter with 8 x 8 matrices (SORT/ByteTrack's layout), per box."""

    def __init__(self, box: np.ndarray) -> None:
        self.mean = np.concatenate([xyxy_to_cxcywh(box[None])[0], np.zeros(4)])
        size = self.sizes()
        self.cov = np.diag(np.concatenate([(2 * POS_NOISE * size) ** 2, (10 * VEL_NOISE / REF_DT * size) ** 2]))

    def sizes(self) -> np.ndarray:
        w, h = self.mean[2], self.mean[3]
        return np.array([w, h, w, h])

    def predict(self, dt: float) -> None:
        move = np.eye(8)
        move[range(4), range(4, 8)] = dt
        size = self.sizes()
        noise = np.diag(np.concatenate([(POS_NOISE * size) ** 2, (VEL_NOISE / REF_DT * size) ** 2]) * dt / REF_DT)
        self.mean = move @ self.mean
        self.cov = move @ self.cov @ move.T + noise

    def correct(self, box: np.ndarray) -> None:
        look = np.eye(4, 8)
        spread = look @ self.cov @ look.T + np.diag((POS_NOISE * self.sizes()) ** 2)
        gain = self.cov @ look.T @ np.linalg.inv(spread)
        self.mean = self.mean + gain @ (xyxy_to_cxcywh(box[None])[0] - look @ self.mean)
        self.cov = self.cov - gain @ look @ self.cov


def test_block_filter_equals_the_full_filter():
    rng = np.random.default_rng(3)
    start = np.array([[10, 20, 50, 100], [200, 200, 260, 230], [400, 50, 430, 60]], np.float64)
    truth = xyxy_to_cxcywh(start)
    filters = KalmanBoxes()
    filters.add(start)
    full = [FullFilter(b) for b in start]
    for _ in range(40):
        dt = rng.uniform(0.0, 0.3)
        filters.predict(dt)
        for one in full:
            one.predict(dt)
        truth[:, :2] += dt * np.array([[100, 0], [-50, 20], [0, 0]])
        seen = rng.random(3) < 0.7  # not every box is matched every frame
        measured = as_xyxy(truth[seen] + rng.normal(0, 1.5, (seen.sum(), 4)))
        filters.correct(np.flatnonzero(seen), measured)
        for one, box in zip(np.array(full)[seen], measured):
            one.correct(box)
    expected = np.array([one.mean for one in full])
    np.testing.assert_allclose(filters.pos, expected[:, :4], atol=1e-6)
    np.testing.assert_allclose(filters.vel, expected[:, 4:], atol=1e-6)
    for row, one in enumerate(full):
        np.testing.assert_allclose(filters.var_pos[row], np.diag(one.cov)[:4], rtol=1e-9)
        np.testing.assert_allclose(filters.cov[row], one.cov[range(4), range(4, 8)], rtol=1e-9)
        np.testing.assert_allclose(filters.var_vel[row], np.diag(one.cov)[4:], rtol=1e-9)
        off_blocks = one.cov.copy()
        off_blocks[range(8), range(8)] = off_blocks[range(4), range(4, 8)] = off_blocks[range(4, 8), range(4)] = 0
        assert np.abs(off_blocks).max() < 1e-9  # what makes the 2 x 2 blocks exact


def follow(step: float, seconds: float, speed: float = 90.0) -> KalmanBoxes:
    """A filter fed a box moving right at `speed` px/s, one measurement every `step` s."""
    filters = KalmanBoxes()
    filters.add(np.array([[0, 0, 40, 80]]))
    for k in range(1, round(seconds / step) + 1):
        filters.predict(step)
        x = speed * k * step
        filters.correct(np.array([0]), np.array([[x, 0, x + 40, 80]]))
    return filters


@pytest.mark.parametrize("step", [1 / 30, 0.1, 0.3])
def test_velocity_is_pixels_per_second_whatever_the_frame_rate(step):
    filters = follow(step, seconds=3.0)
    assert filters.vel[0, 0] == pytest.approx(90.0, rel=0.05)
    before = filters.boxes()[0, 0]
    filters.predict(0.5)
    assert filters.boxes()[0, 0] - before == pytest.approx(45.0, rel=0.05)


def test_zero_or_negative_dt_changes_nothing():
    filters = follow(1 / 30, seconds=1.0)
    before = [array.copy() for array in (filters.pos, filters.vel, filters.var_pos, filters.cov, filters.var_vel)]
    filters.predict(0.0)
    filters.predict(-1.0)
    for old, new in zip(before, (filters.pos, filters.vel, filters.var_pos, filters.cov, filters.var_vel)):
        np.testing.assert_array_equal(new, old)


def test_uncertainty_grows_with_elapsed_time():
    one, other = follow(1 / 30, 1.0), follow(1 / 30, 1.0)
    one.predict(1 / 30)
    other.predict(0.5)
    for name in ("var_pos", "cov", "var_vel"):
        assert np.all(getattr(other, name) > getattr(one, name))


def test_a_shrinking_box_keeps_a_positive_size():
    filters = KalmanBoxes()
    filters.add(np.array([[0, 0, 100, 100]]))
    for k in range(1, 20):  # shrinks 5 px per frame
        filters.predict(1 / 30)
        filters.correct(np.array([0]), np.array([[0, 0, 100 - 5 * k, 100 - 5 * k]], np.float64))
    filters.predict(5.0)  # far past zero on the trend
    assert np.all(filters.pos[0, 2:] >= MIN_SIZE)
    box = filters.boxes()[0]
    assert box[2] > box[0] and box[3] > box[1]
    filters.hold_size(np.array([True]))
    assert np.all(filters.vel[0, 2:] == 0)


def test_rows_are_added_and_dropped_in_order():
    filters = KalmanBoxes()
    filters.add(np.array([[0, 0, 10, 10], [100, 100, 120, 130]]))
    filters.add(np.zeros((0, 4)))
    filters.add(np.array([[50, 50, 60, 60]]))
    filters.keep(np.array([True, False, True]))
    np.testing.assert_allclose(filters.boxes(), [[0, 0, 10, 10], [50, 50, 60, 60]])
