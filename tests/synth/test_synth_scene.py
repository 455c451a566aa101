"""The rendering core: determinism, exact visible masks, motion, occlusion, perspective."""

from __future__ import annotations

import numpy as np
import pytest

from synth.categories import PERSON
from synth.coco import encode_instance, encode_mask
from synth.scene import MIN_VISIBLE_FRACTION, MIN_VISIBLE_PIXELS, Instance, Scene
from synth.video import iter_frames

W, H = 320, 240


def scene(seed: int, objects: int = 6, duration: float = 10.0) -> Scene:
    return Scene(np.random.default_rng(seed), W, H, objects=objects, duration=duration)


def same(a: list[Instance], b: list[Instance]) -> bool:
    return len(a) == len(b) and all(
        (x.track_id, x.category_id, x.bbox, x.area, x.occluded)
        == (y.track_id, y.category_id, y.bbox, y.area, y.occluded)
        and np.array_equal(x.mask, y.mask)
        for x, y in zip(a, b, strict=False)
    )


def test_same_seed_same_frames_in_any_order() -> None:
    first, second = scene(3), scene(3)
    times = [0.0, 0.52, 1.0, 4.36]
    renders = [first.render(t) for t in times]
    for t, (image, instances) in zip(reversed(times), reversed(renders), strict=True):
        image2, instances2 = second.render(t)
        assert image.dtype == np.uint8 and image.shape == (H, W, 3)
        assert np.array_equal(image, image2)
        assert same(instances, instances2)


def test_different_seeds_differ() -> None:
    a, _ = scene(1).render(0.0)
    b, _ = scene(2).render(0.0)
    assert np.mean(np.abs(a.astype(int) - b)) > 10


def test_noise_changes_between_frames_but_not_between_runs() -> None:
    s = scene(4, objects=0)
    a, b = s.render(0.0)[0], s.render(0.04)[0]
    # Static scene, no objects: frames differ only by sensor noise and a tiny lighting step.
    diff = a.astype(int) - b
    assert 0.5 < np.abs(diff).mean() < 12


def test_visible_masks_are_exact_and_disjoint() -> None:
    seen = 0
    for seed in range(6):
        for t in (0.0, 2.0):
            _, instances = scene(seed, objects=8).render(t)
            union = np.zeros((H, W), np.int32)
            for inst in instances:
                full = inst.full_mask(H, W)
                ys, xs = np.nonzero(full)
                x, y, w, h = inst.bbox
                assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
                assert inst.area == full.sum() >= MIN_VISIBLE_PIXELS
                assert 0.0 <= inst.occluded <= 1.0 - MIN_VISIBLE_FRACTION + 1e-4
                union += full
                seen += 1
            assert union.max() <= 1, "visible masks of two instances overlap"
    assert seen > 20


def test_masks_cover_the_drawn_object() -> None:
    """Pixels inside a fully visible instance's mask differ from the empty background there."""
    diffs = []
    for seed in range(8):
        s = scene(seed, objects=6)
        image, instances = s.render(1.0)
        plate = s.background_at(1.0).astype(int)
        for inst in instances:
            if inst.occluded == 0 and inst.area >= 150:
                m = inst.full_mask(H, W)
                diffs.append(np.abs(image.astype(int) - plate)[m].max(axis=1).mean())
    assert len(diffs) >= 10
    # A few objects may be coloured like the ground behind them; most clearly are not.
    assert np.median(diffs) > 30
    assert np.mean(np.array(diffs) > 12) > 0.8


def test_objects_move() -> None:
    s = scene(5)
    before = {i.track_id: i.bbox for i in s.render(0.0)[1]}
    after = {i.track_id: i.bbox for i in s.render(0.4)[1]}
    moved = [tid for tid in before.keys() & after.keys() if before[tid] != after[tid]]
    assert moved


def test_instances_enter_and_leave_over_a_longer_clip() -> None:
    ids = [{i.track_id for i in instances}
           for _, _, instances in iter_frames(seed=2, width=W, height=H, fps=5, seconds=20.0, objects=5)]
    appeared = set().union(*ids[1:]) - ids[0]
    left = ids[0] - ids[-1]
    assert appeared and left


def test_occlusion_happens_and_is_measured() -> None:
    occluded = [i.occluded for _, _, inst in iter_frames(seed=9, width=W, height=H, fps=2, seconds=20.0,
                                                        objects=10) for i in inst]
    assert max(occluded) > 0.3
    assert sum(0.0 < o < 0.85 for o in occluded) > 5


def test_perspective_lower_is_bigger() -> None:
    """Across random scenes, a fully visible walking person lower in the frame is taller."""
    rows, heights = [], []
    for seed in range(30):
        s = scene(seed, objects=6)
        for inst in s.render(3.0)[1]:
            if inst.category_id == PERSON and inst.occluded == 0:
                x, y, w, h = inst.bbox
                rows.append((y + h) / H)
                heights.append(h / H)
    # Compare within scenes is noisy across camera set-ups, but the trend must be strong.
    assert len(rows) > 20
    assert np.corrcoef(rows, heights)[0, 1] > 0.5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Scene(np.random.default_rng(0), 8, 8)
    with pytest.raises(ValueError):
        scene(0).render(-1.0)


def test_fast_rle_equals_pycocotools_encode() -> None:
    checked = 0
    for seed in range(10):
        for inst in scene(seed, objects=8).render(1.5)[1]:
            assert encode_instance(inst, H, W) == encode_mask(inst.full_mask(H, W))
            checked += 1
    # Border cases: masks touching the first/last pixel of the frame and a full frame.
    for mask in (np.ones((H, W), bool), np.eye(H, W, dtype=bool), np.eye(H, W, k=W - H, dtype=bool)[::-1]):
        ys, xs = np.nonzero(mask)
        x0, y0 = xs.min(), ys.min()
        crop = mask[y0:ys.max() + 1, x0:xs.max() + 1]
        inst = Instance(1, 1, (x0, y0, crop.shape[1], crop.shape[0]), int(crop.sum()), 0.0, crop)
        assert encode_instance(inst, H, W) == encode_mask(mask)
    assert checked > 20
