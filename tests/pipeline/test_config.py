from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError
from stages.sinks.registry import sink_kind

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def error_of(path: Path | None, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value)


def test_shipped_configs_are_valid():
    from engines.training.config import TrainConfig
    from pipeline.batch.config import load_batch_settings
    from pipeline.core.config import load_settings

    paths = sorted((REPO / "configs").glob("*.yaml"))
    assert REPO / "configs" / "demo.yaml" in paths
    for path in paths:
        if path.name.startswith("train-"):
            assert load_settings(TrainConfig, path).data.train, path
        elif path.name.startswith("batch"):  # detstream batch settings: no sources, inputs are arguments
            assert load_batch_settings(path).decoders >= 1, path
        else:
            assert load_config(path).sources, path


def test_no_file_gives_documented_defaults():
    config = load_config(None, {"sources": ["x.mp4"]})
    assert config.sources[0].uri == "x.mp4" and config.sources[0].stride == 1
    assert config.batch.max_batch == 1 and config.queue_size == 8 and config.sinks == []


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path):
    message = error_of(write(tmp_path, "model:\n  pth: a.pt\n"))
    assert "unknown key 'model.pth'" in message
    assert "path" in message and "device" in message and "run.yaml" in message


def test_bad_value_names_key_value_and_what_is_allowed(tmp_path):
    message = error_of(write(tmp_path, "batch:\n  max_batch: 0\n"))
    assert "batch.max_batch = 0" in message and "greater than or equal to 1" in message
    message = error_of(write(tmp_path, "sources:\n  - uri: a.mp4\n    stride: two\n"))
    assert "sources.0.stride = 'two'" in message and "integer" in message
    message = error_of(write(tmp_path, "model:\n  device: gpu\n"))
    assert "model.device = 'gpu'" in message and "allowed: cpu, cuda, cuda:N" in message
    assert "pattern" not in message  # no regex
    # a missing key says so (not pydantic's "Field required" with the whole mapping)
    assert error_of(write(tmp_path, "sources:\n  - name: x\n")).endswith("run.yaml: sources.0.uri is required")


def test_the_error_carries_the_key_at_fault(tmp_path):
    from pipeline.core.config import SourceConfig, parse_settings

    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, "sources:\n  - uri: a.mp4\n    stride: 0\n"))
    assert raised.value.field == "sources.0.stride"
    with pytest.raises(ConfigError, match="^POST /sources: unknown key 'strde'") as raised:
        parse_settings(SourceConfig, {"uri": "a.mp4", "strde": 2}, "POST /sources")
    assert raised.value.field == "strde"


def test_a_value_a_flag_gave_names_the_flag(tmp_path):
    from pipeline.cli import RUN_FLAGS

    path = write(tmp_path, "sources: [a.mp4]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {"batch.max_batch": 0, "model.device": "gpu"}, RUN_FLAGS)
    message = str(info.value)
    assert "--max-batch 0:" in message and "--device gpu:" in message and "allowed: cpu, cuda, cuda:N" in message
    assert "batch.max_batch" not in message and "run.yaml" not in message
    # the file's own bad values still name the file and the key
    message = error_of(write(tmp_path, "batch:\n  max_batch: 0\n"), {"model.device": "cpu"})
    assert "run.yaml: batch.max_batch = 0" in message


def test_files_that_are_not_settings(tmp_path):
    assert "not found" in error_of(tmp_path / "missing.yaml")
    message = error_of(write(tmp_path, "sources: [a\n  b: c\n"))
    assert "run.yaml:2:4: not valid YAML" in message and "unicode" not in message
    assert "a folder" in error_of(tmp_path)
    assert "expected a mapping" in error_of(write(tmp_path, "- a\n- b\n"))


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, "sources: [a.mp4]\nmax_frames: 5\nmodel:\n  nms_iou: 0.3\n")
    config = load_config(path, {"sources": ["b.mp4", "c.mp4"], "max_frames": 9})
    assert [s.uri for s in config.sources] == ["b.mp4", "c.mp4"]
    assert config.max_frames == 9 and config.model.nms_iou == 0.3
    # --sink replaces the file's sinks too (docs/configuration.md says so)
    path = write(tmp_path, "sources: [a.mp4]\nsinks: [jsonl:a.jsonl, video:a.mp4]\n")
    assert load_config(path, {"sinks": ["jsonl:b.jsonl"]}).sinks == ["jsonl:b.jsonl"]


@pytest.mark.parametrize("uri", ["kafka:topic", "jsonl", "jsonl:", "video"])
def test_an_unknown_sink_names_the_sink_kinds(uri):
    # the one list of sink kinds is the registry's; the runner checks before the model loads
    with pytest.raises(ConfigError) as error:
        sink_kind(uri)
    message = str(error.value)
    assert f"sinks: {uri!r}" in message and "jsonl:PATH" in message and "video:PATH.mp4" in message and "redis://" in message
