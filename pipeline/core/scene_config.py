"""Zones and lines of one source, as the config gives them (`sources[i].zones` / `.lines`).

Coordinates are source pixels, or fractions of the frame's width and height with
`coordinates: normalized`. A zone is a simple polygon (at least 3 points, edges that do
not cross); a line is a segment of non-zero length whose two crossing directions have
names: `in` is a crossing from the left-hand to the right-hand side of the line, as seen
on screen walking from its first point to its second. Objects are placed by an anchor
point of their box (bottom centre by default: where a person or car touches the ground).
Pixel coordinates are checked against the frame once its size is known (stages/tracking/scene.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.core.config_base import Settings

Point = tuple[float, float]
Anchor = Literal["bottom_center", "center"]
Coordinates = Literal["pixels", "normalized"]


class ZoneConfig(Settings):
    name: str = Field(min_length=1, description="zone name in events and metrics")
    points: list[Point] = Field(min_length=3, description="polygon corners [[x, y], ...]; edges must not cross")
    coordinates: Coordinates = Field("pixels", description="pixels of the source frame, or normalized (0..1)")
    anchor: Anchor = Field("bottom_center", description="point of a box that must be inside the zone")


class LineConfig(Settings):
    name: str = Field(min_length=1, description="line name in events and metrics")
    points: list[Point] = Field(min_length=2, max_length=2, description="[[x1, y1], [x2, y2]], distinct points")
    coordinates: Coordinates = Field("pixels", description="pixels of the source frame, or normalized (0..1)")
    anchor: Anchor = Field("bottom_center", description="point of a box whose path must cross the line")
    directions: tuple[str, str] = Field(
        ("in", "out"), description="names of the two crossings: [left-to-right, right-to-left] seen from point 1 to point 2"
    )
