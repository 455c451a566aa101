"""The still-image dataset: files, class coverage, empty images, COCO tooling accepts it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from support import DATASET_ARGS
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from synth.dataset import empty_indices, render_image, write_dataset

# pycocotools' mask.decode trips a numpy 2 deprecation warning on every call.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_files_and_layout(synth_dataset: tuple[Path, dict[str, Any]]) -> None:
    out, coco = synth_dataset
    assert json.loads((out / "annotations.json").read_text()) == coco
    assert len(coco["images"]) == DATASET_ARGS["count"]
    for index, image in enumerate(coco["images"]):
        assert image["id"] == index + 1
        assert image["file_name"] == f"{index:06d}.jpg"
        pixels = cv2.imread(str(out / "images" / image["file_name"]))
        assert pixels.shape == (DATASET_ARGS["height"], DATASET_ARGS["width"], 3)
    ids = [a["id"] for a in coco["annotations"]]
    assert len(ids) == len(set(ids))


def test_all_classes_and_some_empty_images(synth_dataset: tuple[Path, dict[str, Any]]) -> None:
    _, coco = synth_dataset
    counts = {c: sum(a["category_id"] == c for a in coco["annotations"]) for c in (1, 2, 3, 4)}
    assert all(n >= 3 for n in counts.values()), counts
    annotated = {a["image_id"] for a in coco["annotations"]}
    empty = {img["id"] for img in coco["images"]} - annotated
    assert empty
    # The images chosen to be empty really have no annotations.
    assert {i + 1 for i in empty_indices(DATASET_ARGS["seed"], DATASET_ARGS["count"], 0.03)} <= empty
    per_image = [sum(a["image_id"] == i for a in coco["annotations"]) for i in annotated]
    assert max(per_image) >= 5  # some busy scenes too


def test_jpeg_matches_rendered_image(synth_dataset: tuple[Path, dict[str, Any]]) -> None:
    out, coco = synth_dataset
    index = 5
    image, instances, _ = render_image(DATASET_ARGS["seed"], index, DATASET_ARGS["width"],
                                       DATASET_ARGS["height"], 8, False)
    stored = cv2.cvtColor(cv2.imread(str(out / "images" / f"{index:06d}.jpg")), cv2.COLOR_BGR2RGB)
    assert np.abs(stored.astype(int) - image).mean() < 3.0
    anns = [a for a in coco["annotations"] if a["image_id"] == index + 1]
    assert [a["bbox"] for a in anns] == [list(i.bbox) for i in instances]


def test_pycocotools_loads_results_and_scores_ground_truth_perfectly(
        synth_dataset: tuple[Path, dict[str, Any]]) -> None:
    out, coco = synth_dataset
    gt = COCO(str(out / "annotations.json"))
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                "segmentation": a["segmentation"], "score": 0.9} for a in coco["annotations"]]
    for iou_type in ("bbox", "segm"):
        evaluator = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.params.areaRng = [[0, 1e10]] * 4  # score every size, small objects included
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        assert evaluator.stats[0] > 0.99
    # Moving every mask by a few pixels must hurt the mask score: masks are what is scored.
    shifted = []
    for r in results:
        m = np.roll(mask_utils.decode(r["segmentation"]), 4, axis=1)
        rle = mask_utils.encode(np.asfortranarray(m))
        shifted.append({**r, "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
    evaluator = COCOeval(gt, gt.loadRes(shifted), "segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] < 0.9


def test_deterministic(tmp_path: Path) -> None:
    small = {**DATASET_ARGS, "count": 4}
    first = write_dataset(tmp_path / "a", **small)
    write_dataset(tmp_path / "b", **small)
    assert (tmp_path / "a" / "annotations.json").read_bytes() == (tmp_path / "b" / "annotations.json").read_bytes()
    for name in ("000000.jpg", "000003.jpg"):
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()
    other = write_dataset(tmp_path / "c", **{**small, "seed": small["seed"] + 1})
    assert other["annotations"] != first["annotations"]
