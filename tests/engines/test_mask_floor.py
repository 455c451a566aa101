"""The mask floor: with tracking on, the engine produces weak candidates (down to the
tracker's low score) for the tracker, but runs the mask head only on candidates that may
be emitted; their masks are exactly those of an engine without the weak ones."""

from __future__ import annotations

import torch

from engines.inputs import Normalizer
from engines.loading import load_engine
from synth.video import iter_frames

MODEL = "embedded:mask-compact-synth"


def test_the_mask_head_runs_only_on_candidates_that_may_be_emitted():
    tracked = load_engine(MODEL, backend="torch", score_threshold=0.5, low_floor=0.1)
    plain = load_engine(MODEL, backend="torch", score_threshold=0.5)
    assert (tracked.score_floor, tracked.mask_floor) == (0.1, 0.5)
    assert (plain.score_floor, plain.mask_floor) == (0.5, 0.5)
    rois: list[int] = []
    head = tracked.parts.mask_head
    tracked.parts.mask_head = lambda features: rois.append(len(features)) or head(features)
    # a seed used neither in training (1) nor validation (2)
    images = [image for _, image, _ in iter_frames(seed=47, width=640, height=360, seconds=0.2, objects=8)][:2]
    batch, geometry = Normalizer(tracked.info)(images)
    sizes = [g.resized_size for g in geometry]
    weak_seen = strong_seen = 0
    for wide, narrow in zip(tracked.infer(batch, sizes), plain.infer(batch, sizes)):
        strong = wide.scores >= 0.5
        weak_seen += int((~strong).sum())
        strong_seen += int(strong.sum())
        assert int(strong.sum()) == len(narrow.scores) > 0
        torch.testing.assert_close(wide.boxes[strong], narrow.boxes)
        torch.testing.assert_close(wide.mask_logits[strong], narrow.mask_logits)
        assert wide.mask_logits.shape == (len(wide.scores), *narrow.mask_logits.shape[1:])
        assert not wide.mask_logits[~strong].any()  # never emitted: no mask computed
    assert weak_seen > 0  # the tracker did get weak candidates
    assert rois == [strong_seen]  # one mask-head call for the batch, on the strong ones only


def test_without_a_tracker_masks_start_at_the_lowest_threshold():
    engine = load_engine(MODEL, backend="torch", score_threshold=0.6, other_thresholds=[0.3])
    assert engine.mask_floor == engine.score_floor == 0.3
