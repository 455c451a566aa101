"""CocoDataset: loading every annotation form, and clear errors for broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cocofiles import blob_dataset, edit, rect_mask, uncompressed_counts
from engines.training.data import CocoDataset, collate, fingerprint
from pipeline.core.errors import DatasetError
from support import blob_scene, render_blobs

W, H = 240, 160


def test_boxes_labels_and_class_names(tmp_path: Path) -> None:
    dataset = CocoDataset(blob_dataset(tmp_path, count=3, kinds=()))
    assert len(dataset) == 3
    assert dataset.class_names == ("__background__", "red", "green", "blue")
    assert dataset.category_ids == (0, 5, 10, 20)  # sorted by category id, not file order
    image, target = dataset[1]
    assert image.dtype == torch.float32 and image.shape == (3, H, W)
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    blobs = blob_scene(1, W, H)
    assert target["boxes"].dtype == torch.float32
    assert target["boxes"].tolist() == [list(map(float, b.box)) for b in blobs]
    assert target["labels"].tolist() == [b.class_id for b in blobs]  # red=1, green=2, blue=3
    assert target["image_id"] == 101
    assert target["iscrowd"].tolist() == [0, 0, 0]
    assert "masks" not in target
    np.testing.assert_array_equal(dataset.read_image(1), render_blobs(1, W, H))  # RGB, lossless PNG


@pytest.mark.parametrize("kind", ["polygon", "rle", "rle-list"])
def test_masks_from_every_segmentation_form(tmp_path: Path, kind: str) -> None:
    dataset = CocoDataset(blob_dataset(tmp_path, count=2, kinds=(kind,)), with_masks=True)
    _, target = dataset[0]
    assert target["masks"].dtype == torch.uint8 and target["masks"].shape == (3, H, W)
    for mask, blob in zip(target["masks"].numpy(), blob_scene(0, W, H)):
        np.testing.assert_array_equal(mask, rect_mask(blob.box, H, W))


def test_crowd_kept_for_eval_dropped_for_training(tmp_path: Path) -> None:
    def add_crowd(data: dict) -> None:
        mask = rect_mask((0, 0, 30, 20), H, W)
        data["annotations"].append(
            {
                "id": 999,
                "image_id": 100,
                "category_id": 5,
                "bbox": [0, 0, 30, 20],
                "iscrowd": 1,  # no "area": filled in from the segmentation
                "segmentation": {"size": [H, W], "counts": uncompressed_counts(mask)},
            }
        )

    path = edit(blob_dataset(tmp_path, count=1), add_crowd)
    _, target = CocoDataset(path, with_masks=True)[0]
    assert target["iscrowd"].tolist() == [0, 0, 0, 1]
    assert target["area"][-1] == 600
    _, target = CocoDataset(path, train=True, with_masks=True)[0]
    assert target["iscrowd"].tolist() == [0, 0, 0]
    assert len(target["boxes"]) == len(target["labels"]) == len(target["masks"]) == 3


def test_image_without_annotations(tmp_path: Path) -> None:
    path = edit(blob_dataset(tmp_path, count=2), lambda d: d.update(annotations=d["annotations"][3:]))
    dataset = CocoDataset(path, with_masks=True)
    _, target = dataset[0]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    assert target["masks"].shape == (0, H, W)
    assert len(dataset[1][1]["boxes"]) == 3


def test_image_folder_defaults_and_override(tmp_path: Path) -> None:
    beside = blob_dataset(tmp_path / "a", count=1, images_beside=True)
    assert CocoDataset(beside).images_dir == beside.parent
    nested = blob_dataset(tmp_path / "b", count=1, ext="jpg")
    assert CocoDataset(nested).images_dir == nested.parent / "images"
    moved = tmp_path / "elsewhere"
    (nested.parent / "images").rename(moved)
    with pytest.raises(DatasetError, match="file not found"):
        CocoDataset(nested)
    assert CocoDataset(nested, images=moved)[0][0].shape == (3, H, W)


def test_collate_through_a_dataloader(tmp_path: Path) -> None:
    dataset = CocoDataset(blob_dataset(tmp_path, count=3), with_masks=True)
    images, targets = next(iter(DataLoader(dataset, batch_size=2, collate_fn=collate)))
    assert len(images) == len(targets) == 2
    assert [t["image_id"] for t in targets] == [100, 101]


def test_fingerprint_tracks_labels_and_image_files(tmp_path: Path) -> None:
    path = blob_dataset(tmp_path, count=2)
    first = fingerprint(path)
    assert first == fingerprint(path) == CocoDataset(path).fingerprint()
    assert len(first) == 16
    with open(tmp_path / "images" / "frame_001.png", "ab") as f:
        f.write(b"\0")
    second = fingerprint(path)
    assert second != first
    edit(path, lambda d: d["annotations"][0].update(bbox=[1, 1, 5, 5]))
    assert fingerprint(path) != second


def _remove_image(path: Path) -> None:
    (path.parent / "images" / "frame_002.png").unlink()


BROKEN = {
    "missing image": (_remove_image, ["image id 102: file not found", "frame_002.png"]),
    "box outside": (
        lambda p: edit(p, lambda d: d["annotations"][4].update(bbox=[200, 10, 50, 10])),
        ["annotation id 5 (image id 101): bbox [200, 10, 50, 10] is outside the 240x160 image"],
    ),
    "empty box": (
        lambda p: edit(p, lambda d: d["annotations"][0].update(bbox=[10, 10, 0, 5])),
        ["annotation id 1 (image id 100): bbox [10, 10, 0, 5] has non-positive size"],
    ),
    "unknown category": (
        lambda p: edit(p, lambda d: d["annotations"][1].update(category_id=9)),
        ["annotation id 2 (image id 100): category_id 9 is not in categories [5, 10, 20]"],
    ),
    "dangling image id": (
        lambda p: edit(p, lambda d: d["annotations"][2].update(image_id=77)),
        ["annotation id 3 (image id 77): image id 77 is not in images"],
    ),
    "duplicate annotation id": (
        lambda p: edit(p, lambda d: d["annotations"][3].update(id=1)),
        ["annotation id 1 (image id 101): duplicate id"],
    ),
    "duplicate image id": (
        lambda p: edit(p, lambda d: d["images"][1].update(id=100)),
        ["image id 100: duplicate id"],
    ),
    "bad polygon": (
        lambda p: edit(p, lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]])),
        ["annotation id 1 (image id 100): segmentation polygon"],
    ),
    "bad rle size": (
        lambda p: edit(p, lambda d: d["annotations"][0].update(segmentation={"size": [1, 2], "counts": "x"})),
        ["annotation id 1 (image id 100): segmentation RLE size [1, 2]"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_dataset_names_file_and_record(tmp_path: Path, case: str) -> None:
    path = blob_dataset(tmp_path, count=3)
    breaks, expected = BROKEN[case]
    breaks(path)
    with pytest.raises(DatasetError) as caught:
        CocoDataset(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message


def test_problems_are_collected_not_just_the_first(tmp_path: Path) -> None:
    def break_many(data: dict) -> None:
        for ann in data["annotations"][:7]:
            ann["category_id"] = 42

    path = edit(blob_dataset(tmp_path, count=3), break_many)
    with pytest.raises(DatasetError) as caught:
        CocoDataset(path)
    assert len(caught.value.problems) == 7
    message = str(caught.value)
    assert "7 problems" in message and "and 2 more" in message
    assert "annotation id 5 " in message and "annotation id 6 " not in message


def test_not_json_and_missing_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="not a readable JSON"):
        CocoDataset(bad)
    bad.write_text('{"images": []}')
    with pytest.raises(DatasetError, match="'categories'"):
        CocoDataset(bad)
    with pytest.raises(DatasetError, match="file not found"):
        CocoDataset(tmp_path / "nope.json")


def test_masks_requested_without_segmentation(tmp_path: Path) -> None:
    path = blob_dataset(tmp_path, count=1, kinds=())
    with pytest.raises(DatasetError, match=r"annotation id 1 \(image id 100\): no segmentation"):
        CocoDataset(path, with_masks=True)


def test_image_size_differs_from_json(tmp_path: Path) -> None:
    path = edit(blob_dataset(tmp_path, count=1), lambda d: d["images"][0].update(width=250))
    dataset = CocoDataset(path)  # not decoded up front
    with pytest.raises(DatasetError, match="image id 100: .* is 240x160, the JSON says 250x160"):
        dataset[0]
