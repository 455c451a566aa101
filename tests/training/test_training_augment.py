"""Augment: boxes and masks move with the image, and a fixed seed repeats exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cocofiles import blob_dataset
from engines.training.data import Augment, CocoDataset, collate, to_tensors
from engines.training.transforms import drop_degenerate, jitter_color, zoom
from support import blob_scene


def mask_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def assert_boxes_match_masks(image: torch.Tensor, target: dict) -> None:
    masks = target["masks"].numpy()
    assert masks.shape[1:] == image.shape[1:]
    assert len(masks) == len(target["boxes"]) == len(target["labels"]) == len(target["area"])
    for box, mask in zip(target["boxes"].numpy(), masks):
        np.testing.assert_allclose(box, mask_box(mask), atol=1.0)


@pytest.fixture(scope="module")
def annotations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blob_dataset(tmp_path_factory.mktemp("augment"), count=4, kinds=("polygon", "rle"))


def test_hflip_mirrors_boxes_and_masks(annotations: Path) -> None:
    plain = CocoDataset(annotations, with_masks=True)
    flipped = CocoDataset(annotations, with_masks=True, augment=Augment(hflip=1.0, scale=(1.0, 1.0), color=0.0))
    image, target = flipped[2]
    original, _ = plain[2]
    torch.testing.assert_close(image, original.flip(-1))
    width = image.shape[-1]
    expected = [[width - x2, y1, width - x1, y2] for x1, y1, x2, y2 in (b.box for b in blob_scene(2, 240, 160))]
    assert target["boxes"].tolist() == expected
    assert_boxes_match_masks(image, target)


@pytest.mark.parametrize("factor", [0.5, 0.73, 1.6])
def test_zoom_moves_boxes_and_masks_together_on_a_fixed_canvas(annotations: Path, factor: float) -> None:
    dataset = CocoDataset(annotations, with_masks=True)
    image, target = dataset.read_image(1), dataset.target(1)
    zoomed, moved = zoom(image, target, factor, (0.0, 0.0))  # content anchored top-left
    assert zoomed.shape == image.shape  # scale changes inside the canvas, not the canvas
    expected = (target["boxes"] * factor).clip(0, [240, 160, 240, 160])
    assert np.abs(moved["boxes"] - expected).max() <= 1.0
    moved = drop_degenerate(moved)  # objects cropped away entirely
    assert_boxes_match_masks(torch.from_numpy(zoomed).permute(2, 0, 1), to_tensors(moved))
    if factor < 1:  # nothing cropped: the area scales with the square of the factor
        assert float(moved["area"][0]) == pytest.approx(float(target["area"][0]) * factor**2, rel=0.05)


def test_zoom_placement_is_random_but_consistent(annotations: Path) -> None:
    dataset = CocoDataset(annotations, with_masks=True, augment=Augment(hflip=0.0, scale=(0.5, 0.5), color=0.0))
    torch.manual_seed(0)
    placements = set()
    for _ in range(4):
        image, target = dataset[1]
        assert image.shape[1:] == (160, 240)
        assert_boxes_match_masks(image, target)
        placements.add(tuple(target["boxes"][0].tolist()))
    assert len(placements) > 1


def test_letterbox_to_the_model_input(annotations: Path) -> None:
    dataset = CocoDataset(annotations, with_masks=True, input_size=(64, 128))
    image, target = dataset[1]
    assert image.shape[1:] == (64, 96)  # 160x240 fitted into 64x128, aspect kept
    assert_boxes_match_masks(image, target)


def test_random_augmentations_stay_consistent(annotations: Path) -> None:
    dataset = CocoDataset(annotations, with_masks=True, augment=Augment(hflip=0.5, scale=(0.6, 1.4), color=0.3))
    torch.manual_seed(3)
    for _ in range(3):
        for i in range(len(dataset)):
            assert_boxes_match_masks(*dataset[i])


def test_degenerate_boxes_are_dropped_with_their_masks_and_labels() -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    masks = np.zeros((2, 40, 40), np.uint8)
    masks[0, 10:12, 10:12] = 1
    masks[1, 0:20, 0:20] = 1
    target = {
        "boxes": np.array([[10, 10, 11.5, 11.5], [0, 0, 20, 20]], np.float32),
        "labels": np.array([1, 2]),
        "masks": masks,
        "iscrowd": np.zeros(2, np.int64),
        "area": np.array([2.25, 400], np.float32),
        "image_id": 7,
    }
    image, target = zoom(image, target, 0.5, (0.0, 0.0))
    target = drop_degenerate(target)
    assert image.shape == (40, 40, 3)
    assert target["labels"].tolist() == [2] and target["masks"].shape == (1, 40, 40)
    assert target["boxes"].tolist() == [[0, 0, 10, 10]] and target["image_id"] == 7


def test_same_seed_same_samples(annotations: Path) -> None:
    dataset = CocoDataset(annotations, train=True, with_masks=True, augment=Augment(color=0.3))

    def epoch(seed: int) -> list[tuple[torch.Tensor, dict]]:
        torch.manual_seed(seed)
        return [dataset[i] for i in range(len(dataset))]

    first, again, other = epoch(0), epoch(0), epoch(1)
    for (a, ta), (b, tb) in zip(first, again):
        assert torch.equal(a, b)
        assert torch.equal(ta["boxes"], tb["boxes"]) and torch.equal(ta["masks"], tb["masks"])
    assert any(a.shape != b.shape or not torch.equal(a, b) for (a, _), (b, _) in zip(first, other))


def test_same_seed_same_batches_with_workers(annotations: Path) -> None:
    dataset = CocoDataset(annotations, train=True, augment=Augment(scale=(0.5, 1.5)))

    def shapes(seed: int) -> list[tuple[int, ...]]:
        loader = DataLoader(
            dataset,
            batch_size=2,
            shuffle=True,
            num_workers=2,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(seed),
        )
        return [
            (t["image_id"], *image.shape, *t["boxes"].flatten().tolist())
            for images, targets in loader
            for image, t in zip(images, targets)
        ]

    assert shapes(5) == shapes(5)
    assert shapes(5) != shapes(6)


def test_colour_jitter_changes_pixels_not_geometry() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(jitter_color(image, 1.0, 1.0, 1.0), image)
    brighter = jitter_color(image, 1.3, 1.0, 1.0)
    assert brighter.shape == image.shape and brighter.mean() > image.mean()
    gray = jitter_color(image, 1.0, 1.0, 0.0)
    assert np.abs(gray.astype(int) - gray[..., :1]).max() <= 1


@pytest.mark.parametrize(
    "kwargs", [{"hflip": 1.5}, {"scale": (1.2, 0.8)}, {"scale": (0.0, 1.0)}, {"color": 1.0}]
)
def test_bad_settings_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="Augment"):
        Augment(**kwargs)


def test_zoom_of_an_image_without_objects() -> None:
    empty = {
        "boxes": np.zeros((0, 4), np.float32),
        "labels": np.zeros(0, np.int64),
        "masks": np.zeros((0, 30, 40), np.uint8),
        "iscrowd": np.zeros(0, np.int64),
        "area": np.zeros(0, np.float32),
    }
    image, target = zoom(np.zeros((30, 40, 3), np.uint8), empty, 1.3, (0.5, 0.5))
    assert image.shape == (30, 40, 3) and target["masks"].shape == (0, 30, 40) and len(target["area"]) == 0
