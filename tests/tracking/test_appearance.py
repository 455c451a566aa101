"""Looks (stages/tracking/appearance.py) and how ByteTrack uses them: a close choice between
two candidates goes to the one that looks like the track; an isolated pair never breaks
for its look; a tentative track only continues with a detection that looks like it."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.config import TrackingConfig
from pipeline.core.types import Candidates
from stages.tracking.appearance import BANDS, distance, looks
from stages.tracking.bytetrack import ByteTracker

RED, BLUE, GREY = (255, 0, 0), (0, 0, 255), (128, 128, 128)
NONE = Candidates.empty()


def image(*stripes: tuple[int, int, tuple[int, int, int]]) -> np.ndarray:
    """A 300 x 300 black image with vertical stripes (x from, x to, colour)."""
    picture = np.zeros((300, 300, 3), np.uint8)
    for start, stop, colour in stripes:
        picture[:, start:stop] = colour
    return picture


def people(*boxes: list[float]) -> Candidates:
    n = len(boxes)
    return Candidates(np.array(boxes, np.float32), np.full(n, 0.9, np.float32), np.zeros(n, np.int64))


def test_looks_are_the_colour_bands_of_the_middle_of_the_box():
    picture = np.zeros((300, 300, 3), np.uint8)
    picture[100:150, 110:130] = RED  # upper half of the box's middle
    picture[150:200, 110:130] = BLUE  # lower half
    picture[100:200, 100:110] = picture[100:200, 130:140] = (0, 255, 0)  # its sides: background, not sampled
    seen = looks(picture, np.array([[100, 100, 140, 200]], np.float32))
    assert seen.shape == (1, BANDS, 3)
    assert np.allclose(seen[0, : BANDS // 2], np.array(RED) / 255)
    assert np.allclose(seen[0, BANDS // 2 :], np.array(BLUE) / 255)


def test_looks_of_boxes_partly_outside_the_frame_read_its_edge():
    picture = image((0, 300, GREY))
    seen = looks(picture, np.array([[-50, -50, 20, 400], [280, 290, 330, 330]], np.float32))
    assert np.allclose(seen, 128 / 255)


def test_distance_is_the_mean_absolute_difference_in_zero_to_one():
    red = np.tile(np.array(RED, np.float32) / 255, (1, BANDS, 1))
    blue = np.tile(np.array(BLUE, np.float32) / 255, (1, BANDS, 1))
    unknown = np.full_like(red, np.nan)
    assert distance(np.concatenate([red, red, blue]), np.concatenate([red, blue, red])) == pytest.approx([0, 2 / 3, 2 / 3])
    assert np.isnan(distance(unknown, red)).all()


def swap_scene(tracker: ByteTracker, with_images: bool) -> list[int]:
    """A (red) and B (blue) stand side by side, overlapping; then the detector puts a box
    that looks like B nearer A's place and one that looks like A nearer B's (IoU 0.82 each
    with the wrong track, 0.25 and 0.43 with the right ones). The ids of the two boxes."""
    a, b = [100, 100, 140, 200], [120, 100, 160, 200]
    # A's sampled columns are x 111-129, B's 131-149: red left of 130, blue from there
    before = image((0, 130, RED), (130, 300, BLUE)) if with_images else None
    for step in range(4):
        tracker.update(step * 0.04, people(a, b), NONE, before)
    bluish, reddish = [104, 100, 144, 200], [124, 100, 164, 200]
    # bluish samples x 115-133, reddish 135-153
    after = image((0, 134, BLUE), (134, 300, RED)) if with_images else None
    return tracker.update(0.16, people(bluish, reddish), NONE, after).ids.tolist()


def test_a_close_choice_goes_to_the_box_that_looks_like_the_track():
    assert swap_scene(ByteTracker(TrackingConfig()), with_images=True) == [2, 1]  # A is 1, B is 2


def test_without_looks_the_same_choice_follows_iou_alone():
    assert swap_scene(ByteTracker(TrackingConfig()), with_images=False) == [1, 2]
    assert swap_scene(ByteTracker(TrackingConfig(look_gate=1.0)), with_images=True) == [1, 2]


def test_an_isolated_track_keeps_its_id_whatever_its_detection_looks_like():
    tracker = ByteTracker(TrackingConfig())
    person = [100, 100, 140, 200]
    for step in range(4):
        tracker.update(step * 0.04, people(person), NONE, image((0, 300, RED)))
    lights_changed = tracker.update(0.16, people(person), NONE, image((0, 300, BLUE)))
    assert lights_changed.ids.tolist() == [1]


@pytest.mark.parametrize("gate, confirmed_by_frame", [(0.15, [0, 0, 0, 1]), (1.0, [0, 0, 1, 1])])
def test_a_tentative_track_continues_only_with_a_box_that_looks_like_it(gate, confirmed_by_frame):
    """A red box, then from the next frame a blue one close by (the buffered IoU pairs
    them): with looks the blue one starts a track of its own, confirmed 3 frames later."""
    tracker = ByteTracker(TrackingConfig(look_gate=gate))
    ids = [tracker.update(0.0, people([100, 100, 140, 200]), NONE, image((0, 300, RED))).ids.tolist()]
    for step in range(1, 4):
        ids.append(tracker.update(step * 0.04, people([130, 100, 170, 200]), NONE, image((0, 300, BLUE))).ids.tolist())
    assert [frame[0] for frame in ids] == confirmed_by_frame


def test_the_track_stage_hands_the_frame_image_to_the_tracker():
    """The same scene through SourceTracks: the looks come from each Frame's image."""
    from pipeline.core.types import Detections, Frame
    from stages.tracking.source_tracks import SourceSettings, SourceTracks

    tracks = SourceTracks("cam", SourceSettings(TrackingConfig()), ("person",), "model")
    a, b = [100, 100, 140, 200], [120, 100, 160, 200]
    scenes = [(people(a, b), image((0, 130, RED), (130, 300, BLUE)))] * 4
    scenes.append((people([104, 100, 144, 200], [124, 100, 164, 200]), image((0, 134, BLUE), (134, 300, RED))))
    for seq, (candidates, picture) in enumerate(scenes):
        detections = Detections(Frame("cam", seq, seq * 0.04, seq * 0.04, picture), candidates.boxes,
                                candidates.scores, candidates.class_ids, ["person"] * len(candidates))
        ids, _, _ = tracks.frame(detections)
    assert ids.tolist() == [2, 1]
