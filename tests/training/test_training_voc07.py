"""VOC 2007 11-point AP, read from pycocotools' interpolated precision, on a worked example."""

from __future__ import annotations

import contextlib
import io

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engines.training.evaluate import voc07_ap


def _box(x: float, y: float) -> list[float]:
    return [x, y, 20.0, 20.0]  # COCO xywh, every box 20 x 20


# one class with four ground-truth boxes, A and B in image 1, C and D in image 2;
# "dog" has no ground truth at all
GROUND_TRUTH = {
    "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    "annotations": [
        {"id": n, "image_id": image, "category_id": 1, "bbox": _box(x, y), "area": 400.0, "iscrowd": 0}
        for n, (image, x, y) in enumerate([(1, 0, 0), (1, 40, 0), (2, 0, 40), (2, 40, 40)], start=1)
    ],
}

# five "cat" detections, ranked by score:
#   rank  score  where                 TP/FP  TP  recall (of 4)  precision
#   1     0.9    A exactly             TP     1   0.25           1/1 = 1.000
#   2     0.8    empty corner, image 1 FP     1   0.25           1/2 = 0.500
#   3     0.7    C exactly             TP     2   0.50           2/3 = 0.667
#   4     0.6    A again (duplicate)   FP     2   0.50           2/4 = 0.500
#   5     0.5    D exactly             TP     3   0.75           3/5 = 0.600
# (B is never found.) Highest precision at recall >= r, for the 11 points:
#   r = 0, 0.1, 0.2       -> ranks 1..5 reach it: max(1, .5, .667, .5, .6) = 1
#   r = 0.3, 0.4, 0.5     -> ranks 3..5:          max(.667, .5, .6)        = 2/3
#   r = 0.6, 0.7          -> rank 5:                                       = 0.6
#   r = 0.8, 0.9, 1.0     -> never reached:                                = 0
# AP = (3 * 1 + 3 * 2/3 + 2 * 0.6 + 3 * 0) / 11 = 6.2 / 11 = 0.5636
# (r = 0.5 sits exactly on a reached recall: VOC's ">=" counts rank 3 there.)
HAND_AP = 6.2 / 11
DETECTIONS = [
    {"image_id": 1, "category_id": 1, "bbox": _box(0, 0), "score": 0.9},
    {"image_id": 1, "category_id": 1, "bbox": _box(70, 70), "score": 0.8},
    {"image_id": 2, "category_id": 1, "bbox": _box(0, 40), "score": 0.7},
    {"image_id": 1, "category_id": 1, "bbox": _box(0, 0), "score": 0.6},
    {"image_id": 2, "category_id": 1, "bbox": _box(40, 40), "score": 0.5},
    # a "dog" detection: with no dog ground truth, dog has no AP (-1 in pycocotools)
    {"image_id": 2, "category_id": 2, "bbox": _box(70, 70), "score": 0.4},
]


def _evaluated() -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = GROUND_TRUTH
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes([dict(d) for d in DETECTIONS]), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
    return evaluation


def test_eleven_point_ap_equals_the_hand_worked_value() -> None:
    mean, per_class = voc07_ap(_evaluated())
    assert per_class["cat"] == pytest.approx(HAND_AP, abs=1e-4)
    assert per_class["dog"] is None  # no ground truth: no AP
    assert mean == pytest.approx(HAND_AP, abs=1e-4)  # dog is left out of the mean


def test_pycocotools_conventions_we_rely_on() -> None:
    evaluation = _evaluated()
    params = evaluation.params
    precision = evaluation.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, area all, 100 dets
    assert params.iouThrs[0] == 0.5 and params.areaRngLbl[0] == "all" and params.maxDets[-1] == 100
    # unreached recall (above 0.75) is 0, already-interpolated at 0.3 (2/3, not rank 4's 1/2)
    assert precision[80:, 0].max() == 0.0
    assert precision[30, 0] == pytest.approx(2 / 3)
    assert (precision[:, 1] == -1).all()  # a class without ground truth is -1 everywhere


def test_report_shows_voc07_and_a_dash_for_a_class_without_ground_truth() -> None:
    from rich.console import Console

    from engines.training.evaluate import METRICS, VOC07, print_report

    mean, per_class = voc07_ap(_evaluated())
    metrics = {**dict.fromkeys(METRICS, 0.5), "AP_per_class": {"cat": 0.5, "dog": None}}
    metrics |= {VOC07: mean, "VOC07_per_class": per_class}
    console = Console(record=True, width=100)
    print_report({"model": "m", "images": 2, "seconds": 0.1, "bbox": metrics}, console)
    lines = console.export_text().splitlines()
    assert any("VOC07 mAP" in line and "0.564" in line for line in lines)
    dog = next(line for line in lines if "dog" in line)
    assert dog.count("-") >= 2 and "0." not in dog
