"""Fuzz: engine package metadata (package.json). A damaged or hostile manifest is one
ModelError, never a KeyError later, and never makes us read a file outside the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines.base import ModelInfo
from engines.package import METADATA, read_package, write_package
from fuzz_support import FUZZ, outcome
from pipeline.core.errors import ModelError

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.floats(), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=10,
)
PATHS = ["dense.onnx", "../outside.onnx", "/etc/passwd", "", ".", "sub/../../x", "a\\..\\b", "missing.onnx", "link.onnx"]


def _package(root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dense.onnx").write_bytes(b"not really onnx")
    info = ModelInfo("m", "fasterrcnn_compact", ("__background__", "car"), (320, 576))
    return write_package(root, {"info": info.to_dict(), "feature_names": ["0", "1"]}, {"dense": "dense.onnx"}).meta


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pkg") / "package"
    _package(folder)
    (folder.parent / "outside.onnx").write_bytes(b"secret")
    (folder / "link.onnx").symlink_to(folder.parent / "outside.onnx")
    return folder


def _use(root: Path) -> None:
    package = read_package(root)
    assert package.info.class_names and package.feature_names is not None
    for part in ("dense", "box_head"):
        if package.has(part):
            path = package.file(part)
            assert path.resolve().is_relative_to(root.resolve())


CHANGES = st.lists(st.tuples(st.sampled_from(["format", "info", "feature_names", "files", "info.class_names",
                                              "info.input_size", "info.name", "info.mean", "info.extra", "info.bogus",
                                              "files.dense", "files.dense.path", "files.dense.sha256", "files.x"]),
                             st.one_of(json_values, st.sampled_from(PATHS))), min_size=1, max_size=3)


@FUZZ
@given(CHANGES)
def test_mutated_manifests(root, changes):
    meta = json.loads((root / METADATA).read_text()) if (root / METADATA).exists() else _package(root)
    meta = json.loads(json.dumps(meta))
    for dotted, value in changes:
        *parents, leaf = dotted.split(".")
        target = meta
        for part in parents:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target[leaf] = value
    (root / METADATA).write_text(json.dumps(meta))
    try:
        result = outcome(lambda: _use(root))
        assert result is None or isinstance(result, ModelError)
    finally:
        _package(root)  # the valid manifest back for the next example


@FUZZ
@given(st.one_of(st.binary(max_size=40), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_bytes(root, data):
    (root / METADATA).write_bytes(data)
    try:
        assert isinstance(outcome(lambda: read_package(root)), ModelError)
    finally:
        _package(root)


@pytest.mark.parametrize("path", ["../outside.onnx", "/etc/passwd", "link.onnx"])
def test_parts_outside_the_package_are_refused(root, path):
    meta = _package(root)
    meta["files"]["dense"]["path"] = path
    (root / METADATA).write_text(json.dumps(meta))
    try:
        with pytest.raises(ModelError, match="inside the package|outside the package"):
            read_package(root).file("dense")
    finally:
        _package(root)


def test_deeply_nested_manifest(root):
    (root / METADATA).write_text("[" * 100_000 + "]" * 100_000)
    try:
        assert isinstance(outcome(lambda: read_package(root)), ModelError)
    finally:
        _package(root)
