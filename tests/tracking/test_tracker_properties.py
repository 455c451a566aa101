"""Rules every tracker keeps on any input: random crowded frames, stuttering clocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.config import TrackingConfig
from pipeline.core.types import Candidates
from stages.tracking.trackers import make_tracker
from stages.tracking.tracks import NO_TRACK


@st.composite
def candidates(draw: st.DrawFn, most: int) -> Candidates:
    """Up to `most` boxes of two classes crowded into 200 x 200 pixels, so they overlap."""
    n = draw(st.integers(0, most))
    corners = draw(st.lists(st.tuples(st.integers(0, 160), st.integers(0, 160)), min_size=n, max_size=n))
    sizes = draw(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=n, max_size=n))
    boxes = np.array([[x, y, x + w, y + h] for (x, y), (w, h) in zip(corners, sizes)], np.float32).reshape(n, 4)
    classes = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return Candidates(boxes, np.full(n, 0.8, np.float32), np.array(classes, np.int64))


# Steps of the clock: mostly forward at video rates, sometimes repeating or going back.
steps = st.sampled_from([1 / 30, 1 / 30, 0.1, 0.4, 0.0, -0.2])
frames = st.lists(st.tuples(steps, candidates(6), candidates(3)), max_size=25)


@pytest.mark.parametrize("method", ["bytetrack", "iou"])
@settings(max_examples=60, deadline=None)
@given(frames=frames, min_hits=st.integers(1, 3))
def test_reports_stay_consistent(method, frames, min_hits):
    tracker = make_tracker(TrackingConfig(method=method, min_hits=min_hits, buffer_s=0.3))
    started: set[int] = set()
    ended: set[int] = set()
    t = 0.0
    for step, detections, low in frames:
        t += step
        update = tracker.update(t, detections, low)
        ids = update.ids.tolist()
        assert update.ids.dtype == np.int64 and len(ids) == len(detections)
        given_ids = [i for i in ids if i != NO_TRACK]
        assert len(set(given_ids)) == len(given_ids)  # one detection per track
        # active = exactly the tracks of this frame's detections, each with that detection
        assert sorted(v.track_id for v in update.active) == sorted(given_ids)
        for view in update.active:
            det = ids.index(view.track_id)
            assert view.class_id == detections.class_ids[det]
            np.testing.assert_array_equal(view.box, detections.boxes[det])
            assert view.hits >= min_hits and view.last_t == t
        new = {v.track_id for v in update.started}
        assert new <= set(given_ids) and not new & started  # started once, when first active
        assert all(i > max(started, default=0) for i in new)  # from a counter: never reused
        started |= new
        assert set(given_ids) <= started
        gone = [v.track_id for v in update.ended]
        assert len(set(gone)) == len(gone) and set(gone) <= started and not set(gone) & ended
        assert not set(gone) & set(given_ids)
        ended |= set(gone)
        assert not set(given_ids) & ended  # an ended id never comes back
    rest = [v.track_id for v in tracker.end_all()]
    assert sorted(rest) == sorted(started - ended)  # every started track ends exactly once
