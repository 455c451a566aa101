"""Plane geometry of zones and lines (pipeline/core/shapes.py)."""

from __future__ import annotations

import numpy as np

from pipeline.core.shapes import (
    PolygonSet,
    box_anchors,
    points_in_polygon,
    polygon_problem,
    segments_cross,
    segments_intersect,
    shape_meets_box,
    side_of_line,
)


def test_segments_cross_properly_or_touch():
    a, b = (0, 0), (10, 10)
    assert segments_intersect(a, b, (0, 10), (10, 0)) and segments_cross(a, b, (0, 10), (10, 0))
    # an end on the other segment, a shared end, collinear overlap: touching, not crossing
    for c, d in [((5, 5), (10, 0)), ((10, 10), (20, 0)), ((5, 5), (20, 20))]:
        assert segments_intersect(a, b, c, d) and not segments_cross(a, b, c, d), (c, d)
    # collinear but apart, parallel, and crossing only if extended
    for c, d in [((11, 11), (20, 20)), ((0, 1), (10, 11)), ((6, 0), (20, 0))]:
        assert not segments_intersect(a, b, c, d), (c, d)


def test_segment_tests_run_over_many_segments_and_never_meet_nan():
    starts = np.array([[0, 0], [0, 20], [np.nan, np.nan], [5, -5]], float)
    ends = np.array([[0, 10], [0, 30], [0, 10], [5, 0]], float)
    meets = segments_intersect(starts, ends, np.array([-5.0, 5.0]), np.array([5.0, 5.0]))
    assert meets.tolist() == [True, False, False, False]


def test_side_of_line_is_positive_on_the_right_hand_side_as_seen_on_screen():
    # walking right along y = 100, the right-hand side on screen is below (image y grows down)
    distances = side_of_line(np.array([[50, 120], [50, 70], [500, 100]], float), (0, 100), (200, 100))
    np.testing.assert_allclose(distances, [20, -30, 0])
    # walking down along x = 0, the right-hand side is to the left
    assert side_of_line(np.array([[-3.0, 50.0]]), (0, 0), (0, 100))[0] == 3


def test_points_in_a_concave_polygon_all_at_once():
    u_shape = [(0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30)]
    points = np.array([[5, 20], [15, 20], [25, 20], [15, 5], [40, 5], [-1, 5]], float)
    assert points_in_polygon(points, u_shape).tolist() == [True, False, True, True, False, False]


def test_a_polygon_set_tests_each_point_against_each_polygon():
    polygons = PolygonSet([np.array([(0, 0), (10, 0), (10, 10), (0, 10)]), np.array([(5, 5), (20, 5), (5, 20)])])
    assert polygons.contains(np.array([[2, 2], [7, 7], [15, 6]])).tolist() == [[True, False], [True, True], [False, True]]
    own = np.array([[[2, 2], [15, 6]], [[12, 12], [2, 2]]], float)  # point [n, p] against polygon p
    assert polygons.contains(own).tolist() == [[True, True], [False, False]]
    assert PolygonSet([]).contains(np.zeros((3, 2))).shape == (3, 0)


def test_polygon_problems_name_the_points_from_one():
    assert polygon_problem([(0, 0), (10, 0), (10, 10), (0, 10)]) is None
    assert polygon_problem([(0, 0), (10, 10), (10, 0), (0, 10)]).startswith("edges 1-2 and 3-4 cross")
    assert polygon_problem([(0, 0), (10, 0), (10, 10), (5, 0), (0, 10)]).startswith("edges 1-2 and 3-4 touch")
    assert polygon_problem([(0, 0), (10, 0), (10, 10), (0, 0)]).startswith("points 1 and 4 are the same")
    assert polygon_problem([(0, 0), (5, 5), (10, 10)]).startswith("its points all lie on one line")
    assert polygon_problem([(0, 0), (10, 0), (5, 0), (5, 5)]).startswith("edges 1-2 and 2-3 overlap")
    # the closing edge 4-1 against edge 2-3
    assert polygon_problem([(0, 0), (10, 0), (10, 10), (20, 5)]).startswith("edges 2-3 and 4-1 cross")


def test_shapes_meet_the_frame_or_lie_wholly_outside():
    frame = (0.0, 0.0, 640.0, 360.0)
    assert shape_meets_box(np.array([[-10, -10], [700, -10], [700, 400], [-10, 400]], float), frame, closed=True)
    assert shape_meets_box(np.array([[-10, 100], [700, 100]], float), frame, closed=False)  # spans the frame
    assert not shape_meets_box(np.array([[700, 0], [700, 300]], float), frame, closed=False)
    # an L around the frame's corner: its bounding box overlaps the frame, the polygon does not
    ell = np.array([[650, -50], [700, -50], [700, 400], [-50, 400], [-50, 370], [650, 370]], float)
    assert not shape_meets_box(ell, frame, closed=True)


def test_box_anchors():
    boxes = np.array([[10, 20, 30, 60], [0, 0, 4, 2]], float)
    np.testing.assert_allclose(box_anchors(boxes, "bottom_center"), [[20, 60], [2, 2]])
    np.testing.assert_allclose(box_anchors(boxes, "center"), [[20, 40], [2, 1]])
