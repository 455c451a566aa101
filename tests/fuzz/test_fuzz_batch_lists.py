"""Fuzz: `detstream batch` list files. Every entry becomes a task whose output name stays
under --out (no '..', no absolute path), or the list is refused with one ConfigError."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import FUZZ, outcome
from pipeline.batch.collection import expand
from pipeline.core.errors import ConfigError
from stages.sinks.file_outputs import output_names

PIECES = ["a.mp4", "../b.mp4", "../../c.mp4", "/tmp/d.mp4", "/", "sub/e.mp4", "sub/../../f.mp4", ".", "..", "~",
          "http://../g.mp4", "http://host/../../h.mp4", "rtsp://u:p@cam/..", "https://[::1]/x.mp4", "http://[x",
          "#comment", "", "   ", "\t", "é.mp4", "a b.mp4", "./i.mp4", "//j.mp4", "x\\..\\k.mp4", "file:///etc/passwd"]
lines = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=6)


def safe(rel: str) -> bool:
    path = PurePosixPath(rel)
    return bool(rel) and not path.is_absolute() and ".." not in path.parts and "\x00" not in rel


@FUZZ
@given(lines)
def test_list_files(tmp_path_factory, entries):
    folder = tmp_path_factory.mktemp("lists") / "in"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"x")
    listing = folder / "videos.txt"
    listing.write_text("\n".join(entries), errors="surrogateescape")
    result = outcome(lambda: expand([str(listing)]))
    if isinstance(result, ConfigError):
        return
    for task in result:
        assert safe(task.rel), (task.uri, task.rel)
        for name in output_names(task.rel, ["jsonl", "coco", "video", "events"]).values():
            assert (Path("/out") / name).resolve().is_relative_to("/out"), name


@FUZZ
@given(st.lists(st.sampled_from([p for p in PIECES if p != "/"]), min_size=1, max_size=3))  # '/' scans the disk
def test_inputs_given_on_the_command_line(tmp_path_factory, inputs):
    folder = tmp_path_factory.mktemp("args")
    (folder / "a.mp4").write_bytes(b"x")
    result = outcome(lambda: expand([i if "://" in i or i.startswith("/") else str(folder / i) for i in inputs]))
    if not isinstance(result, ConfigError):
        assert all(safe(task.rel) for task in result), result
