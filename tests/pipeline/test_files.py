"""The atomic writes (a file, a folder): whole content, usual permissions, nothing left
behind on failure; and where the cache folder is."""

from __future__ import annotations

import os
import stat

import pytest

from pipeline.core.files import cache_folder, remove_leftovers, write_folder_atomic, write_atomic


def test_writes_and_replaces_whole_content(tmp_path):
    target = tmp_path / "new" / "folder" / "out.json"  # missing folders are made
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"
    write_atomic(target, lambda file: file.write(b"second, from a writer"))
    assert target.read_bytes() == b"second, from a writer"
    assert os.listdir(target.parent) == ["out.json"]  # no temporary file left


def test_permissions_are_those_of_a_plain_open(tmp_path):
    # mkstemp alone would make 0600 files; outputs must be readable like any other file
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    target = tmp_path / "atomic"
    write_atomic(target, b"x")
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode)
    assert mode & stat.S_IRGRP  # with the usual umask 022: rw-r--r--


def test_a_file_with_secrets_gets_the_mode_asked_for(tmp_path):
    target = tmp_path / "state.yaml"
    write_atomic(target, b"password", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_atomic(target, b"password 2", mode=0o600)  # a replacement too
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"old and whole")

    def torn(file):
        file.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, torn)
    assert target.read_bytes() == b"old and whole"
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_a_failed_rename_leaves_no_temporary(tmp_path):
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)  # a non-empty folder cannot be replaced by a file
    with pytest.raises(OSError):
        write_atomic(target, b"data")
    assert sorted(os.listdir(tmp_path)) == ["taken"]
    assert os.listdir(target) == ["inside"]


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "cache" / "package"

    def fill(folder):
        assert folder.parent == target.parent and folder.name.startswith(".package.")  # next to the target
        assert not target.exists()  # nothing under the target's name while it is being written
        (folder / "a.onnx").write_bytes(b"a")
        (folder / "sub").mkdir()
        (folder / "sub" / "b").write_bytes(b"b")

    write_folder_atomic(target, fill)
    assert (target / "a.onnx").read_bytes() == b"a" and (target / "sub" / "b").read_bytes() == b"b"
    assert os.listdir(target.parent) == ["package"]
    plain = tmp_path / "plain"
    plain.mkdir()
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)  # not mkdtemp's 0700

    def fails(folder):
        (folder / "half").write_bytes(b"x")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        write_folder_atomic(tmp_path / "cache" / "other", fails)
    assert os.listdir(target.parent) == ["package"]
    with pytest.raises(OSError):  # an existing (non-empty) target is never replaced
        write_folder_atomic(target, lambda folder: (folder / "new").write_bytes(b"new"))
    assert sorted(os.listdir(target)) == ["a.onnx", "sub"]
    assert os.listdir(target.parent) == ["package"]


def test_leftovers_of_a_killed_writer_are_removed_and_only_those(tmp_path):
    (tmp_path / ".package.x1y2.tmp" / "half").mkdir(parents=True)  # what a killed writer leaves
    (tmp_path / ".other.x1y2.tmp").mkdir()
    (tmp_path / "package").mkdir()
    remove_leftovers(tmp_path / "package")
    assert sorted(os.listdir(tmp_path)) == [".other.x1y2.tmp", "package"]


def test_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("DETSTREAM_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "mine"
    monkeypatch.delenv("DETSTREAM_CACHE")
    assert cache_folder() == tmp_path / "xdg" / "detstream"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder() == tmp_path / "home" / ".cache" / "detstream"
