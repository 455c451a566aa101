"""evaluate(): pycocotools scores an engine run through the pipeline's own stages."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

import engines.loading
from cocofiles import blob_dataset, edit
from engines.training import eval_cli
from engines.training.data import CocoDataset
from pipeline.core.errors import DatasetError
from engines.training.evaluate import METRICS, VOC07, evaluate, print_report, write_report
from pipeline.core.types import RawOutput
from support import BlobEngine


class ShiftedEngine(BlobEngine):
    """Finds the blobs, then reports them 60% of a box width to the right."""

    def _one(self, image: torch.Tensor, size: tuple[int, int]) -> RawOutput:
        raw = super()._one(image, size)
        shift = 0.6 * (raw.boxes[:, 2] - raw.boxes[:, 0])
        raw.boxes[:, 0] += shift
        raw.boxes[:, 2] += shift
        return raw


class ShiftedBlueEngine(BlobEngine):
    """Exact for red and green; blue boxes 60% of a width to the right."""

    def _one(self, image: torch.Tensor, size: tuple[int, int]) -> RawOutput:
        raw = super()._one(image, size)
        blue = raw.labels == 3
        shift = 0.6 * (raw.boxes[blue, 2] - raw.boxes[blue, 0])
        raw.boxes[blue, 0] += shift
        raw.boxes[blue, 2] += shift
        return raw


class BlindEngine(BlobEngine):
    def _one(self, image: torch.Tensor, size: tuple[int, int]) -> RawOutput:
        return RawOutput(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> CocoDataset:
    return CocoDataset(blob_dataset(tmp_path_factory.mktemp("eval"), count=8, kinds=("polygon", "rle")))


def test_exact_engine_scores_high(dataset: CocoDataset) -> None:
    result = evaluate(BlobEngine(), dataset, progress=False)
    assert set(result["bbox"]) == set(METRICS) | {"AP_per_class", VOC07, "VOC07_per_class"}
    assert result["bbox"]["AP"] >= 0.9 and result["bbox"]["AP50"] == pytest.approx(1.0)
    assert result["bbox"][VOC07] == pytest.approx(1.0)
    assert result["bbox"]["VOC07_per_class"] == {"red": 1.0, "green": 1.0, "blue": 1.0}
    assert result["images"] == 8 and result["detections"] == 24
    assert "segm" not in result  # a box-only engine


def test_shifted_boxes_score_much_lower(dataset: CocoDataset) -> None:
    good = evaluate(BlobEngine(), dataset, progress=False)["bbox"]["AP"]
    bad = evaluate(ShiftedEngine(), dataset, progress=False)["bbox"]["AP"]
    assert bad < 0.3 < 0.9 <= good


def test_per_class_ap_singles_out_the_bad_class(dataset: CocoDataset, capsys: pytest.CaptureFixture) -> None:
    result = evaluate(ShiftedBlueEngine(), dataset, progress=False)
    per_class = result["bbox"]["AP_per_class"]
    assert set(per_class) == {"red", "green", "blue"}
    assert per_class["blue"] < 0.3 < 0.9 <= min(per_class["red"], per_class["green"])
    # the summary AP is the mean over classes
    assert result["bbox"]["AP"] == pytest.approx(sum(per_class.values()) / 3, abs=1e-3)
    print_report(result, Console(file=sys.stdout, width=100))
    out = capsys.readouterr().out
    assert "AP per class" in out and "bbox VOC07" in out
    voc = result["bbox"]["VOC07_per_class"]
    assert voc["blue"] < 0.3 < 0.9 <= min(voc["red"], voc["green"])


def test_masks_give_segm_metrics(dataset: CocoDataset) -> None:
    result = evaluate(BlobEngine(masks=True), dataset, batch_size=3, progress=False)
    assert result["segm"]["AP"] >= 0.9
    assert result["bbox"]["AP"] >= 0.9


def test_no_detections_gives_zeros_with_a_note(dataset: CocoDataset) -> None:
    result = evaluate(BlindEngine(masks=True), dataset, progress=False)
    assert result["bbox"] == dict.fromkeys((*METRICS, VOC07), 0.0) == result["segm"]
    assert any("no detections" in note for note in result["notes"])


def test_class_names_must_match_by_name(tmp_path: Path) -> None:
    def rename(data: dict) -> None:
        data["categories"][0]["name"] = "yellow"  # was "blue"

    path = edit(blob_dataset(tmp_path, count=1), rename)
    with pytest.raises(DatasetError, match=r"not in model: \['yellow'\], not in dataset: \['blue'\]"):
        evaluate(BlobEngine(), path, progress=False)


def test_path_input_and_reports(dataset: CocoDataset, tmp_path: Path) -> None:
    result = evaluate(BlobEngine(), dataset.path, progress=False)
    out = tmp_path / "reports" / "eval.json"
    write_report(result, out)
    assert json.loads(out.read_text())["bbox"]["AP"] == result["bbox"]["AP"]
    console = Console(record=True, width=100)
    print_report(result, console)
    text = console.export_text()
    assert "AP50" in text and "bbox" in text and "blob-test" in text
    assert "VOC07 mAP" in text and json.loads(out.read_text())["bbox"][VOC07] == result["bbox"][VOC07]


def test_pycocotools_output_is_silenced_unless_asked(dataset: CocoDataset, capsys: pytest.CaptureFixture) -> None:
    evaluate(BlobEngine(), dataset, progress=False)
    assert "Average Precision" not in capsys.readouterr().out
    evaluate(BlobEngine(), dataset, progress=False, quiet=False)
    assert "Average Precision" in capsys.readouterr().out


def test_cli_wiring(dataset: CocoDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = []

    def fake_load(spec: str, device: str, score_threshold: float, backend: str = "auto", weights=None, input_size=None) -> BlobEngine:
        loaded.append((spec, device, score_threshold, weights, input_size))
        return BlobEngine()

    # eval_cli imports load_engine when the command runs (the parser stays torch-free)
    monkeypatch.setattr(engines.loading, "load_engine", fake_load)
    parser = argparse.ArgumentParser(prog="detstream")
    eval_cli.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "report.json"
    args = parser.parse_args(
        ["eval", "--model", "m.pt", "--data", str(dataset.path), "--out", str(out), "--batch", "4"]
    )
    assert args.func(args) == 0
    assert loaded == [("m.pt", "cpu", 0.05, None, None)]
    assert json.loads(out.read_text())["bbox"]["AP"] >= 0.9
    assert json.loads(out.read_text())["bbox"][VOC07] == pytest.approx(1.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--model", "m.pt", "--data", "x.json", "--batch", "0"])
