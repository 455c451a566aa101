"""Fuzz: the run settings loader with random YAML trees, random YAML text and random flag values."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from fuzz_support import FUZZ, outcome
from pipeline.batch.config import BatchSettings, load_batch_settings
from pipeline.core.config import RunConfig, load_config
from pipeline.core.errors import ConfigError


def _names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every field name under `model`, so random trees reach deep validators, not only 'unknown key'."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for inner in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for arg in (inner, *getattr(inner, "__args__", ())):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    names |= _names(arg, seen)
    return names


KEYS = sorted(_names(RunConfig) | _names(BatchSettings)) + ["", "x", "0"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["auto", "tcp", "1x1", "320x576", "cpu", "cuda:1", "64MB", "-1", "nan"]),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=5)),
    max_leaves=25,
)
roots = st.dictionaries(st.sampled_from(KEYS), trees, max_size=6)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


@FUZZ
@given(roots)
def test_random_setting_trees(tmp_path_factory, tree):
    path = _write(tmp_path_factory.mktemp("cfg"), yaml.safe_dump(tree))
    result = outcome(lambda: load_config(path))
    assert isinstance(result, (RunConfig, ConfigError))
    result = outcome(lambda: load_batch_settings(path))
    assert isinstance(result, (BatchSettings, ConfigError))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list(" \n\t:-[]{}#&*!|>'\"%@`,?0a1b") + ["\x00", "\ufeff", "é"]), max_size=80))
def test_random_yaml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "run.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    assert isinstance(outcome(lambda: load_config(path)), (RunConfig, ConfigError))


@FUZZ
@given(st.binary(max_size=64))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "run.yaml"
    path.write_bytes(data)
    assert isinstance(outcome(lambda: load_config(path)), (RunConfig, ConfigError))


@FUZZ
@given(st.dictionaries(st.sampled_from(["batch.max_batch", "model.input_size", "model.device", "metrics.port",
                                        "sources", "sinks", "model.classes", "max_frames", "model", "x.y.z"]),
                       trees, max_size=3))
def test_random_flag_values(overrides):
    flags = {key: "--" + key.replace(".", "-") for key in overrides}
    assert isinstance(outcome(lambda: load_config(None, overrides, flags)), (RunConfig, ConfigError))


def test_alias_bomb_is_refused_quickly(tmp_path):
    # nine lines that stand for 10**9 values once expanded: validation would never end
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = _write(tmp_path, "\n".join(lines + ["sources: [*a8]"]))
    error = outcome(lambda: load_config(path))
    assert isinstance(error, ConfigError) and "aliases" in str(error)


def test_deep_nesting_is_refused(tmp_path):
    path = _write(tmp_path, "sources: " + "[" * 5000 + "]" * 5000)
    error = outcome(lambda: load_config(path))
    assert isinstance(error, ConfigError) and "nested more than" in str(error)


def test_anchors_of_ordinary_size_still_work(tmp_path):
    path = _write(tmp_path, "sources:\n - &cam {uri: rtsp://a/1, stride: 2}\n - {<<: *cam, uri: rtsp://a/2}\n")
    config = load_config(path)
    assert [(s.uri, s.stride) for s in config.sources] == [("rtsp://a/1", 2), ("rtsp://a/2", 2)]
