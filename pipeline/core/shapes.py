"""Plane geometry of zones and lines: segments, polygons, sides, box anchors.

One copy, used by config validation (pipeline/core/scene_config.py) and by the scene at
run time (stages/tracking/scene.py). Rules:
- Points are (x, y) in image coordinates: x grows to the right, y grows *downward*.
- Functions take numpy arrays and broadcast: a segment or point argument may be one
  (shape (2,)) or many (shape (N, 2)); results have the broadcast shape without the last
  axis. A NaN coordinate never intersects, crosses or lies inside anything.
- Comparisons are exact on the given floats (no tolerance), except whether a polygon's corners
  all lie on one line, which is relative to its size.
- Polygon corners are numbered from 1 in the descriptions this module returns, as a
  person counts the points of a config entry.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Anchor = Literal["bottom_center", "center"]


def _det(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def cross(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """z of (b - a) x (c - a): > 0 when c is to the right of a -> b as seen on screen."""
    a, b, c = np.asarray(a, float), np.asarray(b, float), np.asarray(c, float)
    return _det(b - a, c - a)


def _orientations(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> tuple[np.ndarray, ...]:
    """Signs of q1, q2 against p1 -> p2, and of p1, p2 against q1 -> q2."""
    p, q = p2 - p1, q2 - q1
    return (
        np.sign(_det(p, q1 - p1)), np.sign(_det(p, q2 - p1)), np.sign(_det(q, p1 - q1)), np.sign(_det(q, p2 - q1))
    )


def _within_box(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """c lies in the bounding box of a and b (so on segment a-b when the three are collinear)."""
    return np.all((np.minimum(a, b) <= c) & (c <= np.maximum(a, b)), axis=-1)


def segments_intersect(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Segments p1-p2 and q1-q2 share at least one point: a proper crossing, or a touch
    (an end on the other segment, or collinear overlap)."""
    p1, p2, q1, q2 = np.asarray(p1, float), np.asarray(p2, float), np.asarray(q1, float), np.asarray(q2, float)
    o1, o2, o3, o4 = _orientations(p1, p2, q1, q2)
    meet = (o1 * o2 < 0) & (o3 * o4 < 0)
    if np.any((o1 == 0) | (o2 == 0) | (o3 == 0) | (o4 == 0)):  # rare with real coordinates: skip the work
        meet = (
            meet
            | ((o1 == 0) & _within_box(p1, p2, q1))
            | ((o2 == 0) & _within_box(p1, p2, q2))
            | ((o3 == 0) & _within_box(q1, q2, p1))
            | ((o4 == 0) & _within_box(q1, q2, p2))
        )
    return meet


def segments_cross(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Segments p1-p2 and q1-q2 cross properly: one common point inside both, no end on the other."""
    p1, p2, q1, q2 = np.asarray(p1, float), np.asarray(p2, float), np.asarray(q1, float), np.asarray(q2, float)
    o1, o2, o3, o4 = _orientations(p1, p2, q1, q2)
    return (o1 * o2 < 0) & (o3 * o4 < 0)


def side_of_line(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Signed distance (same unit as the points) of points from the line through a -> b.

    Positive on the right-hand side as seen on screen walking from a to b (image y grows
    downward): for a = (0, 100), b = (200, 100), the point (50, 120) is at +20.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    return cross(a, b, points) / np.hypot(b[..., 0] - a[..., 0], b[..., 1] - a[..., 1])


def to_pixels(points: list[tuple[float, float]], normalized: bool, width: int, height: int) -> np.ndarray:
    """Config points as frame pixels: normalized ones are scaled by the frame's size."""
    array = np.array(points, float)
    return array * (width, height) if normalized else array


class PolygonSet:
    """Polygons prepared once for point tests: every point against every polygon in one pass.

    Even-odd rule: a point is inside when a ray from it towards +x crosses an odd number
    of edges. A point exactly on an edge may count either way (the half-open rule of ray
    casting): callers that need a stable answer at the boundary add hysteresis themselves.
    """

    def __init__(self, polygons: list[np.ndarray]) -> None:
        corners = [np.asarray(polygon, float).reshape(-1, 2) for polygon in polygons]
        sizes = [len(c) for c in corners]
        starts = np.concatenate(corners) if corners else np.zeros((0, 2))
        ends = np.concatenate([np.roll(c, -1, axis=0) for c in corners]) if corners else starts
        self.count = len(corners)
        self._owner = np.repeat(np.arange(self.count), sizes)  # edge -> its polygon
        self._first_edge = np.cumsum([0, *sizes[:-1]]) if corners else np.zeros(0, np.intp)
        self._x1, self._y1, self._y2 = starts[:, 0], starts[:, 1], ends[:, 1]
        rise = self._y2 - self._y1
        self._run_per_rise = (ends[:, 0] - self._x1) / np.where(rise == 0, 1.0, rise)  # flat edges never straddle

    def contains(self, points: np.ndarray) -> np.ndarray:
        """N x 2 points (each tested against every polygon) or N x P x 2 (point [n, p] against
        polygon p) -> N x P bools."""
        points = np.asarray(points, float)
        if self.count == 0:
            return np.zeros((len(points), 0), bool)
        if points.ndim == 2:
            x, y = points[:, 0:1], points[:, 1:2]  # N x 1, against every edge
        else:
            x, y = points[:, self._owner, 0], points[:, self._owner, 1]  # N x edges: each edge's own point
        straddles = (self._y1 > y) != (self._y2 > y)  # the edge spans the ray's height
        crossing = straddles & (x < self._x1 + (y - self._y1) * self._run_per_rise)
        return np.logical_xor.reduceat(crossing, self._first_edge, axis=1)  # odd crossings: inside


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which points (N x 2) lie inside the polygon (M x 2 corners) -> N bools (see PolygonSet)."""
    return PolygonSet([polygon]).contains(np.asarray(points, float).reshape(-1, 2))[:, 0]


def polygon_problem(polygon: np.ndarray) -> str | None:
    """What makes the polygon not simple, with the rule it breaks; None if it is simple.

    Checked in order: repeated corners; every corner on one line (no area); edges that
    meet other than at their shared corner (adjacent edges folding back on each other,
    non-adjacent edges touching or crossing). The closing edge (last corner to first) is
    implied, so the first corner must not be repeated at the end.
    """
    polygon = np.asarray(polygon, float)
    count = len(polygon)
    for i in range(count):
        same = np.flatnonzero(np.all(polygon[i + 1 :] == polygon[i], axis=1))
        if same.size:
            return (
                f"points {i + 1} and {i + 2 + int(same[0])} are the same (corners must be distinct; "
                "the outline closes by itself, so do not repeat the first point)"
            )
    if np.linalg.matrix_rank(polygon - polygon[0]) < 2:
        return "its points all lie on one line (a polygon needs area)"
    starts, ends = polygon, np.roll(polygon, -1, axis=0)
    for i in range(count):
        # the next edge folds back onto this one: collinear, turning by 180 degrees
        j = (i + 1) % count
        if cross(starts[i], ends[i], ends[j]) == 0 and np.dot(ends[i] - starts[i], ends[j] - starts[j]) < 0:
            return f"edges {_edge(i, count)} and {_edge(j, count)} overlap (the outline must not fold back on itself)"
    meet = segments_intersect(starts[:, None], ends[:, None], starts[None, :], ends[None, :])
    for i in range(count):
        for j in range(i + 2, count):
            if meet[i, j] and not (i == 0 and j == count - 1):  # first and last edges share corner 1
                verb = "cross" if segments_cross(starts[i], ends[i], starts[j], ends[j]) else "touch"
                return f"edges {_edge(i, count)} and {_edge(j, count)} {verb} (a polygon's edges must not {verb})"
    return None


def _edge(i: int, count: int) -> str:
    return f"{i + 1}-{(i + 1) % count + 1}"


def shape_meets_box(points: np.ndarray, box: tuple[float, float, float, float], closed: bool) -> bool:
    """The polygon (closed) or polyline (open) shares a point with the box (x1, y1, x2, y2)."""
    points = np.asarray(points, float)
    x1, y1, x2, y2 = box
    if np.any((points[:, 0] >= x1) & (points[:, 0] <= x2) & (points[:, 1] >= y1) & (points[:, 1] <= y2)):
        return True
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], float)
    if closed and np.any(points_in_polygon(corners, points)):
        return True  # the box lies inside the polygon
    ends = np.roll(points, -1, axis=0) if closed else points[1:]
    starts = points if closed else points[:-1]
    box_ends = np.roll(corners, -1, axis=0)
    return bool(np.any(segments_intersect(starts[:, None], ends[:, None], corners[None, :], box_ends[None, :])))


def box_anchors(boxes: np.ndarray, anchor: Anchor) -> np.ndarray:
    """The anchor point of each xyxy box (N x 4 -> N x 2): bottom_center is where a person
    or a car touches the ground; center is the middle of the box."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    x = (boxes[:, 0] + boxes[:, 2]) / 2.0
    y = boxes[:, 3] if anchor == "bottom_center" else (boxes[:, 1] + boxes[:, 3]) / 2.0
    return np.stack([x, y], axis=1)
