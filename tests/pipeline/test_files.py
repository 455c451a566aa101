"""The one atomic write: whole content, usual permissions, nothing left behind on failure."""

from __future__ import annotations

import os
import stat

import pytest

from pipeline.core.files import write_atomic


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
