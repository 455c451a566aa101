"""Region proposals: selective search on synthetic frames, recall maths, the RPN as a
proposer, and the `detstream proposals recall` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.proposals import cli
from engines.proposals.recall import RpnProposer, best_ious, measure, recall
from engines.selective_search import SelectiveSearch
from pipeline.core.errors import ConfigError, ModelError
from support import BlobEngine
from synth.dataset import write_dataset
from synth.video import iter_frames


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    _, image, _ = next(iter_frames(seed=61, width=320, height=180, seconds=0.2))
    return image


def _check_boxes(boxes: np.ndarray, width: int, height: int, top_n: int, min_side: float) -> None:
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert 0 < len(boxes) <= top_n
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert (sides >= min_side).all()
    assert len(np.unique(boxes, axis=0)) == len(boxes)  # no duplicates


def test_fast_mode_boxes_inside_the_image_and_limited(frame: np.ndarray) -> None:
    everything = SelectiveSearch(mode="fast", top_n=5000)(frame)
    _check_boxes(everything, 320, 180, 5000, 4.0)
    top = SelectiveSearch(mode="fast", top_n=50, min_side=8.0)(frame)
    _check_boxes(top, 320, 180, 50, 8.0)
    assert len(top) == 50 < len(everything)


def test_resize_before_search_maps_boxes_back_to_source_pixels(frame: np.ndarray) -> None:
    # searched at 160 x 90: boxes still span the 320 x 180 source (the whole-image region)
    boxes = SelectiveSearch(mode="fast", max_side=160, top_n=5000, threads=1)(frame)
    _check_boxes(boxes, 320, 180, 5000, 4.0)
    assert boxes[:, 2].max() == pytest.approx(320) and boxes[:, 3].max() == pytest.approx(180)
    # fewer pixels searched, fewer regions
    assert len(boxes) < len(SelectiveSearch(mode="fast", top_n=5000)(frame))


def test_quality_mode_on_a_tiny_image(frame: np.ndarray) -> None:
    tiny = cv2.resize(frame, (80, 45), interpolation=cv2.INTER_AREA)
    fast = SelectiveSearch(mode="fast", top_n=5000, min_side=2.0)(tiny)
    quality = SelectiveSearch(mode="quality", top_n=5000, min_side=2.0)(tiny)
    _check_boxes(quality, 80, 45, 5000, 2.0)
    assert len(quality) > len(fast)  # more strategies, more regions


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"mode": "slow"}, "mode 'slow': allowed are fast, quality"),
        ({"top_n": 0}, "top_n = 0: expected an integer >= 1"),
        ({"max_side": 10}, "max_side = 10: expected an integer >= 32"),
        ({"min_side": -1.0}, "min_side = -1.0"),
        ({"threads": 0}, "threads = 0"),
    ],
)
def test_bad_settings_are_clear_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SelectiveSearch(**settings)


def test_bad_image_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"H x W x 3 uint8 RGB image, got shape \(20, 30\)"):
        SelectiveSearch()(np.zeros((20, 30), np.uint8))


def test_recall_on_a_hand_made_case() -> None:
    truth = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    proposals = np.array(
        [
            [0, 0, 10, 6],  # covers 60 of the first box's 100 pixels: IoU 0.6
            [100, 100, 110, 110],  # nothing
            [50, 50, 60, 60],  # the second box exactly, but only third in line
        ],
        np.float32,
    )
    best = best_ious(proposals, truth, counts=(1, 3))
    np.testing.assert_allclose(best, [[0.6, 0.0], [0.6, 1.0]], atol=1e-6)
    table = recall([best], thresholds=(0.5, 0.7))
    # rows: 1 and 3 proposals; columns: IoU 0.5 and 0.7
    np.testing.assert_allclose(table, [[0.5, 0.0], [1.0, 0.5]])
    # pooled over images: a second image whose one box no proposal reaches adds a miss (2 of 3)
    image = np.zeros((1, 1, 3), np.uint8)
    report = measure("hand", lambda _: proposals, [(image, truth), (image, truth[:1] + 200)], counts=(3,), ious=(0.5,))
    assert report.recall[0, 0] == pytest.approx(2 / 3) and report.mean_proposals == 3


def test_recall_without_ground_truth_is_a_clear_error() -> None:
    best = best_ious(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32), (100,))
    with pytest.raises(ConfigError, match="no .* ground-truth boxes"):
        recall([best], (0.5,))


def test_rpn_proposer_boxes_in_source_pixels(frame: np.ndarray) -> None:
    from engines.loading import load_engine

    engine = load_engine(cli.DEFAULT_MODEL, "cpu", backend="torch")
    boxes = RpnProposer(engine, top_n=400)(frame)  # 320 x 180: letterboxed up into the model input
    _check_boxes(boxes, 320, 180, 400, 0.0)
    assert len(boxes) == 400
    with pytest.raises(ModelError, match="two-stage"):
        RpnProposer(BlobEngine(), top_n=10)


def test_cli_selective_search_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path / "data", seed=62, count=2, width=160, height=90)
    parser = argparse.ArgumentParser(prog="detstream")
    cli.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "recall.json"
    args = parser.parse_args(["proposals", "recall", "--data", str(tmp_path / "data/annotations.json"),
                              "--model", "none", "--out", str(out)])
    assert args.func(args) == 0
    assert "selective search fast" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["images"] == 2 and set(report["sources"][0]["recall"]) == {
        f"{iou}@{n}" for iou in (0.5, 0.7) for n in (100, 300, 1000, 2000)
    }
    with pytest.raises(SystemExit):
        parser.parse_args(["proposals", "recall", "--data", "x.json", "--mode", "slow"])
