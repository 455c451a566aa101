"""Collections: directories, globs, list files, and the relative paths outputs mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.batch.collection import expand
from pipeline.core.errors import ConfigError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_a_directory_is_scanned_recursively_with_an_extension_filter(tmp_path):
    for name in ("a.mp4", "sub/b.MKV", "sub/deep/c.mov", "sub/notes.txt", "d.jpg"):
        touch(tmp_path / name)
    tasks = expand([str(tmp_path)])
    assert [t.rel for t in tasks] == ["a.mp4", "sub/b.MKV", "sub/deep/c.mov"]
    assert all(Path(t.uri).is_absolute() for t in tasks)
    assert [t.rel for t in expand([str(tmp_path)], ("mp4",))] == ["a.mp4"]


def test_a_glob_is_relative_to_its_fixed_prefix(tmp_path):
    for name in ("v/x/a.mp4", "v/y/b.mp4", "v/y/c.avi"):
        touch(tmp_path / name)
    tasks = expand([f"{tmp_path}/v/**/*.mp4"])
    assert [t.rel for t in tasks] == ["x/a.mp4", "y/b.mp4"]


def test_a_list_file_names_paths_and_urls(tmp_path):
    touch(tmp_path / "v/x/a.mp4")
    touch(tmp_path / "v/y/b.mp4")
    listing = tmp_path / "v/files.txt"
    listing.write_text(
        "# my recordings\n\nx/a.mp4\n"
        f"{tmp_path}/v/y/b.mp4\n"
        "y/missing.mp4\n"
        "https://user:secret@media.example/clips/c.mp4?token=abc\n"
    )
    tasks = expand([str(listing)])
    assert [t.rel for t in tasks] == ["x/a.mp4", "y/b.mp4", "y/missing.mp4", "media.example/clips/c.mp4"]
    assert tasks[3].is_url and "secret" not in tasks[3].rel


def test_the_same_file_twice_is_processed_once_but_a_clash_is_an_error(tmp_path):
    a = touch(tmp_path / "one/a.mp4")
    touch(tmp_path / "two/a.mp4")
    assert len(expand([str(a), str(tmp_path / "one")])) == 1
    with pytest.raises(ConfigError, match="would both write results to a.mp4"):
        expand([str(tmp_path / "one"), str(tmp_path / "two")])


def test_inputs_that_give_nothing_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no video files"):
        expand([str(tmp_path / "empty")])
    with pytest.raises(ConfigError, match="matches no file"):
        expand([f"{tmp_path}/*.mp4"])
    with pytest.raises(ConfigError, match="no such file"):
        expand([str(tmp_path / "nope")])
