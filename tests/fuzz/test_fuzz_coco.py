"""Fuzz: COCO annotation files (`detstream train` / `eval` / `batch --ground-truth`). Either the
file loads, or one DatasetError names it and its problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines.training.annotations import Annotations, decode_mask, fingerprint, load_annotations
from fuzz_support import FUZZ, outcome
from pipeline.core.coco_files import video_image_ids
from pipeline.core.errors import DatasetError

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(), st.text(max_size=8),
              st.sampled_from([0, 1, 2, 5.5, -1, 1e308, "a.png", "clip.mp4#3", "0"])),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=12,
)


def valid() -> dict[str, Any]:
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 6}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 3],
                         "segmentation": [[1, 1, 5, 1, 5, 4]]}],
    }


PATHS = ["images", "categories", "annotations", "images.0", "categories.0", "annotations.0", "images.0.id",
         "images.0.file_name", "images.0.width", "images.0.height", "categories.0.id", "categories.0.name",
         "annotations.0.id", "annotations.0.image_id", "annotations.0.category_id", "annotations.0.bbox",
         "annotations.0.bbox.2", "annotations.0.segmentation", "annotations.0.segmentation.0",
         "annotations.0.segmentation.0.0", "annotations.0.iscrowd", "annotations.0.area"]
RLE = st.fixed_dictionaries({"size": st.sampled_from([[6, 8], [8, 6], [0, 0], None]),
                             "counts": st.one_of(st.text(max_size=12), st.lists(st.integers(-3, 60), max_size=6))})


def _mutate(record: Any, changes: list[tuple[str, Any]]) -> Any:
    for dotted, value in changes:
        *parents, leaf = dotted.split(".")
        target = record
        try:
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target[part]
            if isinstance(target, list):
                target[int(leaf)] = value
            else:
                target[leaf] = value
        except (LookupError, TypeError, ValueError):
            continue  # an earlier change replaced what this path goes through
    return record


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    (root / "a.png").write_bytes(b"x")  # the checks look for the file, they do not decode it
    return root


def _load(path: Path) -> None:
    loaded = load_annotations(path, path.parent)
    assert isinstance(loaded, Annotations)
    for image in loaded.images:
        for instance in loaded.instances[image.id]:
            if instance.segmentation is not None:
                assert decode_mask(instance.segmentation, image).shape == (image.height, image.width)
    fingerprint(path, path.parent)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(json_values, RLE)), min_size=1, max_size=3))
def test_mutated_coco_files(folder, changes):
    path = folder / "annotations.json"
    path.write_text(json.dumps(_mutate(valid(), changes)))
    assert outcome(lambda: _load(path)) is None or True  # outcome() fails on any foreign exception


@FUZZ
@given(st.one_of(st.binary(max_size=40), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_bytes(folder, data):
    path = folder / "bytes.json"
    path.write_bytes(data)
    assert isinstance(outcome(lambda: _load(path)), DatasetError)
    assert isinstance(outcome(lambda: video_image_ids(path)), (dict, DatasetError))


def test_deeply_nested_file(folder):
    path = folder / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert isinstance(outcome(lambda: _load(path)), DatasetError)
    assert isinstance(outcome(lambda: fingerprint(path, path.parent)), DatasetError)


@pytest.mark.parametrize("counts", [[-1], [10, 10], "\x80", "@", [48.0]])
def test_bad_rle_counts_found_by_fuzzing_are_dataset_errors(folder, counts):
    # pycocotools raised OverflowError, UnicodeEncodeError and ValueError on these
    data = valid()
    data["annotations"][0]["segmentation"] = {"size": [6, 8], "counts": counts}
    path = folder / "rle.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="segmentation RLE 'counts'"):
        load_annotations(path, folder)


def test_a_valid_uncompressed_rle_loads(folder):
    data = valid()
    data["annotations"][0]["segmentation"] = {"size": [6, 8], "counts": [10, 5, 33]}
    path = folder / "rle.json"
    path.write_text(json.dumps(data))
    (instance,) = load_annotations(path, folder).instances[1]
    assert instance.area == 5.0
