"""Zones and lines of one source, as the config gives them (`sources[i].zones` / `.lines`).

Coordinates are source pixels, or fractions of the frame's width and height with
`coordinates: normalized`. A zone is a simple polygon (at least 3 distinct points, edges
that neither cross nor touch, some area); a line is a segment of non-zero length whose
two crossing directions have names: `in` is a crossing from the left-hand to the
right-hand side of the line, as seen on screen walking from its first point to its
second. Objects are placed by an anchor point of their box (bottom centre by default:
where a person or car touches the ground).

Rules checked here: finite numbers; normalized values in [0, 1]; the shape rules above;
two distinct, non-empty direction names. Pixel coordinates cannot be checked against the
frame until its size is known: a shape wholly outside the frame is a warning of the
scene at run time (stages/tracking/scene.py), not a config error.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from pipeline.core.config_base import Settings
from pipeline.core.shapes import Anchor, polygon_problem

Point = tuple[Annotated[float, Field(allow_inf_nan=False)], Annotated[float, Field(allow_inf_nan=False)]]
Coordinates = Literal["pixels", "normalized"]


def _check_normalized(points: list[Point], coordinates: Coordinates) -> None:
    if coordinates != "normalized":
        return
    outside = [value for point in points for value in point if not 0.0 <= value <= 1.0]
    if outside:
        raise ValueError(f"coordinates: normalized needs every value in [0, 1], got {outside[0]:g}")


class ZoneConfig(Settings):
    name: str = Field(min_length=1, description="zone name in events and metrics")
    points: list[Point] = Field(min_length=3, description="polygon corners [[x, y], ...]; edges must not cross")
    coordinates: Coordinates = Field("pixels", description="pixels of the source frame, or normalized (0..1)")
    anchor: Anchor = Field("bottom_center", description="point of a box that must be inside the zone")

    @model_validator(mode="after")
    def _simple_polygon(self) -> ZoneConfig:
        _check_normalized(self.points, self.coordinates)
        problem = polygon_problem(np.array(self.points, float))
        if problem is not None:
            raise ValueError(f"zone {self.name!r}: {problem}")
        return self


class LineConfig(Settings):
    name: str = Field(min_length=1, description="line name in events and metrics")
    points: list[Point] = Field(min_length=2, max_length=2, description="[[x1, y1], [x2, y2]], distinct points")
    coordinates: Coordinates = Field("pixels", description="pixels of the source frame, or normalized (0..1)")
    anchor: Anchor = Field("bottom_center", description="point of a box whose path must cross the line")
    directions: tuple[str, str] = Field(
        ("in", "out"), description="names of the two crossings: [left-to-right, right-to-left] seen from point 1 to point 2"
    )
    margin_px: float = Field(
        5.0,
        ge=0,
        allow_inf_nan=False,
        description="hysteresis against jitter, in frame pixels whatever the coordinates (and never less than a "
        "fifth of the object's box height): an anchor takes a side "
        "only once at least this far from the line; a crossing counts when that side changes",
    )
    hold_s: float = Field(
        0.2,
        ge=0,
        allow_inf_nan=False,
        description="anti-flicker in stream seconds: a crossing counts once the anchor has stayed on the other side "
        "this long; a track back on its own side before that counted nothing",
    )

    @model_validator(mode="after")
    def _usable_line(self) -> LineConfig:
        _check_normalized(self.points, self.coordinates)
        if self.points[0] == self.points[1]:
            raise ValueError(f"line {self.name!r}: its two points are the same (a line needs length)")
        first, second = self.directions
        if not first.strip() or not second.strip():
            raise ValueError(f"line {self.name!r}: direction names must not be empty, got {list(self.directions)}")
        if first == second:
            raise ValueError(f"line {self.name!r}: the two direction names must differ, got {list(self.directions)}")
        return self
