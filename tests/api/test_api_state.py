"""api.state_file: saved after each change through the API (with credentials, mode 0600),
restored at the next start, and a clear error when it is corrupt."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from api_server_support import CAMERA, PASSWORD, TOKEN, Api

from pipeline.api.state import SavedSources, restore
from pipeline.core.config import ApiConfig, RunConfig, SourceConfig
from pipeline.core.errors import ConfigError


def test_changes_are_saved_and_restored(secured: Api) -> None:
    path = secured.serving.config.state_file
    assert path is not None and not path.exists()  # nothing changed yet
    door = CAMERA.replace("stream1", "door")
    assert secured.call("POST", "/sources", {"uri": door, "name": "door", "stride": 2}, token=TOKEN)[0] == 201
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secured.call("PATCH", "/sources/cam1", {"enabled": False, "max_fps": 4}, token=TOKEN)[0] == 200
    assert secured.call("DELETE", "/sources/lobby", token=TOKEN)[0] == 204
    # refused changes are not saved
    assert secured.call("POST", "/sources", {"uri": "/v/x.mp4", "stride": 0}, token=TOKEN)[0] == 422
    saved = yaml.safe_load(path.read_text())
    assert saved == {"sources": [
        {"uri": CAMERA, "name": "cam1", "enabled": False, "max_fps": 4},
        {"uri": door, "name": "door", "stride": 2},
    ]}
    assert PASSWORD in path.read_text()  # the state file is the one place that keeps it
    assert not list(path.parent.glob(".state.yaml.*"))  # no temporary file left

    config = RunConfig(sources=[SourceConfig(uri="/v/other.mp4")], api=ApiConfig(state_file=path))
    restored = restore(config)
    assert [(s.name, s.uri, s.max_fps, s.stride) for s in restored.sources] == [("cam1", CAMERA, 4, 1), ("door", door, None, 2)]
    assert [s.enabled for s in restored.sources] == [False, True]
    assert restored.api == config.api and restored.model == config.model


def test_unnamed_sources_are_saved_under_the_run_names(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    saved = SavedSources(path, [SourceConfig(uri=CAMERA), SourceConfig(uri="/v/a.mp4"), SourceConfig(uri="/w/a.mp4")])
    saved.updated("a.mp4#2", {"stride": 3})
    saved.updated("gone", {"stride": 3})  # not a source: nothing half-written
    assert [e["name"] for e in yaml.safe_load(path.read_text())["sources"]] == ["stream1", "a.mp4", "a.mp4#2"]
    assert yaml.safe_load(path.read_text())["sources"][2] == {"uri": "/w/a.mp4", "name": "a.mp4#2", "stride": 3}


def test_no_state_file_keeps_the_config(tmp_path: Path) -> None:
    config = RunConfig(sources=[SourceConfig(uri="/v/a.mp4")], api=ApiConfig(state_file=tmp_path / "none.yaml"))
    assert restore(config) is config
    assert restore(RunConfig()) == RunConfig()


@pytest.mark.parametrize(
    "content, message",
    [
        ("sources: [uri: x\n", "not valid YAML"),
        ("sources:\n- uri: /v/a.mp4\n  stride: 0\n", "sources.0.stride = 0"),
        ("sources:\n- {name: a}\n", "sources.0.uri is required"),
        ("", "sources is required"),
        ("- /v/a.mp4\n", "expected a mapping of settings"),
    ],
)
def test_a_corrupt_state_file_is_an_error_naming_it(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as raised:
        restore(RunConfig(api=ApiConfig(state_file=path)))
    assert str(path) in str(raised.value)


def test_a_binary_state_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=f"{path}: not a state file"):
        restore(RunConfig(api=ApiConfig(state_file=path)))
