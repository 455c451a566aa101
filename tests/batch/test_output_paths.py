"""Batch outputs never land outside --out: '..', absolute names and symlinked folders are
refused, and a symlink in a result's place is replaced, not followed."""

from __future__ import annotations


import pytest

from pipeline.batch.collection import expand
from pipeline.core.errors import SinkError
from stages.sinks.file_outputs import output_path, publish


@pytest.mark.parametrize("name", ["../x.jsonl", "a/../../x.jsonl", "/tmp/x.jsonl", "", "a\0b"])
def test_names_that_leave_the_folder_are_refused(tmp_path, name):
    with pytest.raises(SinkError, match="not a path inside"):
        output_path(tmp_path / "out", name)


def test_a_symlinked_folder_leading_out_is_refused(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "day1").symlink_to(elsewhere)
    with pytest.raises(SinkError, match="outside"):
        publish(out, {"day1/cam.mp4.jsonl": b"{}\n"})
    assert not list(elsewhere.iterdir())


def test_a_symlink_in_the_results_place_is_replaced_not_followed(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("keep me")
    (out / "cam.mp4.jsonl").symlink_to(victim)
    publish(out, {"cam.mp4.jsonl": b"{}\n"})
    assert victim.read_text() == "keep me"
    assert not (out / "cam.mp4.jsonl").is_symlink() and (out / "cam.mp4.jsonl").read_bytes() == b"{}\n"


def test_list_entries_climbing_out_still_get_names_inside(tmp_path):
    inputs = tmp_path / "in" / "lists"
    inputs.mkdir(parents=True)
    listing = inputs / "v.txt"
    listing.write_text("../../a.mp4\n/etc/b.mp4\nhttp://../c.mp4\nhttp://h/../../d.mp4\n")
    rels = [task.rel for task in expand([str(listing)])]
    assert all(not rel.startswith("/") and ".." not in rel.split("/") for rel in rels), rels
    for rel in rels:
        assert output_path(tmp_path / "out", rel + ".jsonl").resolve().is_relative_to((tmp_path / "out").resolve())
