"""Zone and line settings (pipeline/core/scene_config.py): what a config may say, and
errors that name the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError


def write(tmp_path: Path, scene: str, source: str = "a.mp4") -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(f"sources:\n  - uri: {source}\n{scene}")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def zone(points: str, extra: str = "") -> str:
    return f"    zones:\n      - name: door\n        points: {points}\n{extra}"


def line(points: str, extra: str = "") -> str:
    return f"    lines:\n      - name: gate\n        points: {points}\n{extra}"


def test_zones_and_lines_load_with_documented_defaults(tmp_path):
    path = write(tmp_path, zone("[[0, 0], [0.5, 0], [0.5, 1]]", "        coordinates: normalized\n")
                 + line("[[0, 100], [200, 100]]"))  # fmt: skip
    source = load_config(path).sources[0]
    door, gate = source.zones[0], source.lines[0]
    assert door.coordinates == "normalized" and door.anchor == "bottom_center" and len(door.points) == 3
    assert gate.directions == ("in", "out") and gate.margin_px == 5.0 and gate.coordinates == "pixels"


def test_a_self_intersecting_polygon_is_refused(tmp_path):
    message = error_of(write(tmp_path, zone("[[0, 0], [10, 10], [10, 0], [0, 10]]")))
    assert "run.yaml: sources.0.zones.0 = " in message
    assert "zone 'door': edges 1-2 and 3-4 cross (a polygon's edges must not cross)" in message
    message = error_of(write(tmp_path, zone("[[0, 0], [10, 0], [10, 10], [5, 0], [0, 10]]")))
    assert "zone 'door': edges 1-2 and 3-4 touch" in message


def test_repeated_points_and_flat_polygons_are_refused(tmp_path):
    message = error_of(write(tmp_path, zone("[[0, 0], [10, 0], [10, 10], [0, 0]]")))
    assert "sources.0.zones.0" in message and "zone 'door': points 1 and 4 are the same" in message
    assert "do not repeat the first point" in message
    message = error_of(write(tmp_path, zone("[[0, 0], [5, 5], [10, 10]]")))
    assert "zone 'door': its points all lie on one line (a polygon needs area)" in message
    message = error_of(write(tmp_path, zone("[[0, 0], [10, 10]]")))
    assert "sources.0.zones.0.points" in message and "at least 3" in message


def test_a_zero_length_line_is_refused(tmp_path):
    message = error_of(write(tmp_path, line("[[3, 4], [3, 4]]")))
    assert "run.yaml: sources.0.lines.0 = " in message
    assert "line 'gate': its two points are the same (a line needs length)" in message


def test_normalized_values_must_lie_in_zero_to_one(tmp_path):
    message = error_of(write(tmp_path, zone("[[0, 0], [1.7, 0], [1, 1]]", "        coordinates: normalized\n")))
    assert "sources.0.zones.0" in message and "coordinates: normalized needs every value in [0, 1], got 1.7" in message
    message = error_of(write(tmp_path, line("[[0, -0.2], [1, 0.5]]", "        coordinates: normalized\n")))
    assert "sources.0.lines.0" in message and "got -0.2" in message
    # pixels may lie anywhere: the frame size is not known until the video is open
    assert load_config(write(tmp_path, line("[[-50, 2000], [4000, 2000]]"))).sources[0].lines[0].points[1] == (4000, 2000)


def test_numbers_must_be_finite(tmp_path):
    message = error_of(write(tmp_path, zone("[[0, 0], [.inf, 0], [1, 1]]")))
    assert "sources.0.zones.0.points.1.0 = inf" in message and "finite number" in message
    message = error_of(write(tmp_path, line("[[0, .nan], [1, 1]]")))
    assert "sources.0.lines.0.points.0.1" in message and "finite number" in message


def test_direction_names_are_two_different_non_empty_names(tmp_path):
    message = error_of(write(tmp_path, line("[[0, 0], [9, 0]]", "        directions: [in, in]\n")))
    assert "sources.0.lines.0" in message and "line 'gate': the two direction names must differ" in message
    message = error_of(write(tmp_path, line("[[0, 0], [9, 0]]", "        directions: [in, ' ']\n")))
    assert "line 'gate': direction names must not be empty" in message
    message = error_of(write(tmp_path, line("[[0, 0], [9, 0]]", "        directions: [in]\n")))
    assert "sources.0.lines.0.directions" in message
    named = load_config(write(tmp_path, line("[[0, 0], [9, 0]]", "        directions: [down, up]\n")))
    assert named.sources[0].lines[0].directions == ("down", "up")


def test_the_margin_is_a_non_negative_number_of_pixels(tmp_path):
    message = error_of(write(tmp_path, line("[[0, 0], [9, 0]]", "        margin_px: -1\n")))
    assert "sources.0.lines.0.margin_px = -1" in message and "greater than or equal to 0" in message
    assert load_config(write(tmp_path, line("[[0, 0], [9, 0]]", "        margin_px: 0\n"))).sources[0].lines[0].margin_px == 0


def test_errors_name_the_source_and_entry_they_are_in(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "sources:\n  - uri: a.mp4\n  - uri: b.mp4\n    lines:\n      - name: ok\n        points: [[0, 0], [1, 1]]\n"
        "      - name: gate\n        points: [[5, 5], [5, 5]]\n"
    )
    message = error_of(path)
    assert "sources.1.lines.1" in message and "line 'gate'" in message and "sources.0" not in message
