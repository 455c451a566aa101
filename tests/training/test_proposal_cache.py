"""The proposal cache: computed once, reused, a new folder when the search settings or the
image files change, resumable, the same boxes from parallel workers, and its CLI."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from engines.proposals import cli
from engines.selective_search import SelectiveSearch
from engines.training.data import CocoDataset
from engines.training.proposal_cache import ProposalCache
from pipeline.core.errors import DatasetError
from synth.dataset import write_dataset

SEARCH = SelectiveSearch(top_n=300)


@pytest.fixture()
def data(tmp_path) -> CocoDataset:
    write_dataset(tmp_path / "set", seed=4243, count=4, width=192, height=108)
    return CocoDataset(tmp_path / "set/annotations.json")


def test_computed_once_then_reused(data, tmp_path):
    cache = ProposalCache.of(data, SEARCH, tmp_path / "cache")
    assert cache.compute(data) == 4
    files = sorted(cache.folder.glob("*.npy"))
    assert [f.name for f in files] == [f"{r.id}.npy" for r in sorted(data.records, key=lambda r: r.id)]
    stamps = [f.stat().st_mtime_ns for f in files]
    again = ProposalCache.of(data, SEARCH, tmp_path / "cache")
    assert again.folder == cache.folder and again.compute(data) == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps
    boxes = again.load(data.records[0].id)
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4 and 0 < len(boxes) <= 300
    assert not list(cache.folder.glob(".*"))  # no temporary files left


def test_other_settings_or_changed_images_use_another_folder(data, tmp_path):
    root = tmp_path / "cache"
    first = ProposalCache.of(data, SEARCH, root).folder
    assert ProposalCache.of(data, SelectiveSearch(top_n=300, threads=1), root).folder == first  # speed only
    assert ProposalCache.of(data, SelectiveSearch(top_n=200), root).folder != first
    assert ProposalCache.of(data, SelectiveSearch(top_n=300, max_side=400), root).folder != first
    image = data.images_dir / data.records[0].file_name
    cv2.imwrite(str(image), np.full((108, 192, 3), 90, np.uint8))  # same name and size in the JSON
    assert ProposalCache.of(data, SEARCH, root).folder != first


def test_an_interrupted_run_is_resumed(data, tmp_path):
    cache = ProposalCache.of(data, SEARCH, tmp_path / "cache")
    cache.compute(data)
    cache.path(data.records[2].id).unlink()
    assert cache.missing(data) == [2]
    assert cache.compute(data) == 1 and cache.missing(data) == []


def test_parallel_workers_store_the_same_boxes(data, tmp_path):
    serial = ProposalCache.of(data, SEARCH, tmp_path / "serial")
    parallel = ProposalCache.of(data, SEARCH, tmp_path / "parallel")
    serial.compute(data, workers=1)
    assert parallel.compute(data, workers=2) == 4
    for record in data.records:
        # OpenCV ranks with its own random factor: the same set of boxes, maybe in another order
        a, b = serial.load(record.id), parallel.load(record.id)
        assert len(a) == len(b) or len(a) == len(b) == 300
        if len(a) < 300:
            assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, b.tolist()))


def test_a_missing_image_file_says_how_to_compute_it(data, tmp_path):
    cache = ProposalCache.of(data, SEARCH, tmp_path / "cache")
    with pytest.raises(DatasetError, match="detstream proposals cache"):
        cache.load(data.records[0].id)


def test_the_cache_command(data, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["proposals", "cache", "--data", str(data.path), "--workers", "1", "--top-n", "300",
                              "--cache", str(tmp_path / "cache")])
    assert args.func(args) == 0
    assert ProposalCache.of(data, SEARCH, tmp_path / "cache").missing(data) == []
    assert "computed" in capsys.readouterr().err
