"""Fuzz: source URIs (settings, live or file, names, masking, opening a path) and sink URIs
(the kind and its options, checked without connecting)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import FUZZ, outcome
from pipeline.core.config import SourceConfig, parse_settings
from pipeline.core.errors import DetstreamError
from pipeline.core.secrets import mask_url, redact
from pipeline.core.urls import input_format, is_live_uri
from pipeline.run.sources import source_names
from stages.reader import open_source
from stages.sinks.registry import sink_kind

SCHEMES = ["rtsp", "rtsps", "http", "https", "rtmp", "srt", "udp", "file", "redis", "rediss", "mqtt", "mqtts",
           "webhook:https", "webhook:http", "jsonl", "video", "", "RTSP", "x"]
PIECES = ["", "user", "user:pass", ":", "@", "[", "]", "[::1]", "[::1", "host", "host:", "host:0", "host:99999",
          "host:-1", "host:port", "/", "//", "..", "%", "%zz", "%00", "?", "#", "&", "=", "\x00", " ", "é", "\n",
          "a.mp4", "0", "-", "{source}", "{", "}", "nan", "inf", "-inf", "1e309", "1e3", "0.5", "65536"]
OPTIONS = ["maxlen", "timeout", "password_env", "ssl_cert_reqs", "ssl_ca_certs", "qos", "retain", "topic", "secret_env",
           "batch", "spool", "fields", "events", "stream", "x", "spool_mb", "buffer", "keepalive", "state_s", "channel"]


@st.composite
def uris(draw) -> str:
    scheme = draw(st.sampled_from(SCHEMES))
    sep = draw(st.sampled_from(["://", ":", ":/", ""]))
    body = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=8)))
    query = "&".join(f"{draw(st.sampled_from(OPTIONS))}={draw(st.sampled_from(PIECES))}"
                     for _ in range(draw(st.integers(0, 3))))
    return f"{scheme}{sep}{body}" + (f"?{query}" if query or draw(st.booleans()) else "")


any_uri = st.one_of(uris(), st.text(max_size=40))


@FUZZ
@given(any_uri)
def test_source_uris(uri):
    def use() -> None:
        source = parse_settings(SourceConfig, {"uri": uri}, "run.yaml")
        assert isinstance(source.is_live, bool)
        assert isinstance(source.drops_oldest, bool)
        (name,) = source_names([source])
        assert isinstance(name, str) and name
        assert input_format(uri) in (None, "v4l2")
        assert isinstance(is_live_uri(uri), bool)
        assert isinstance(mask_url(uri), str) and isinstance(redact(uri), str)

    outcome(use)


@FUZZ
@given(st.text(max_size=30))
def test_opening_odd_paths_fails_cleanly(tmp_path_factory, name):
    # a path that is not there (or a folder, or not a file name at all): one SourceError
    folder = tmp_path_factory.mktemp("src")
    uri = str(folder / name) if name else str(folder)
    if "://" in uri:
        return  # not a path: a network URL, out of this test's reach
    result = outcome(lambda: open_source(uri, "cam"))
    assert isinstance(result, DetstreamError)


@FUZZ
@given(any_uri)
def test_sink_uris(monkeypatch, uri):
    monkeypatch.setenv("DETSTREAM_WEBHOOK_SECRET", "s" * 32)  # so webhook URIs reach their options
    result = outcome(lambda: sink_kind(uri))
    assert isinstance(result, (type, DetstreamError))
    if isinstance(result, DetstreamError):
        # options or URLs in error messages never carry the password given
        assert "user:pass@" not in str(result)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309"])
@pytest.mark.parametrize("uri", ["redis://h/0?timeout={}", "mqtt://h/t?timeout={}", "redis://h/0?spool_mb={}",
                                 "webhook:https://h/x?timeout={}", "mqtt://h/t?state_s={}"])
def test_numbers_that_are_not_finite_are_refused(monkeypatch, uri, value):
    monkeypatch.setenv("DETSTREAM_WEBHOOK_SECRET", "s" * 32)
    with pytest.raises(DetstreamError, match="is not a number"):
        sink_kind(uri.format(value))


@pytest.mark.parametrize("entry, problem", [
    ({"uri": ""}, "at least 1 character"),
    ({"uri": "cam.mp4\nrun.yaml: forged line"}, "control character"),
    ({"uri": "a\x00.mp4"}, "control character"),
    ({"uri": "rtsp://[cam/1"}, "not a valid URL"),
    ({"uri": "rtsp://cam:99999/1"}, "not a valid URL"),
    ({"uri": "a.mp4", "name": "a\tb"}, "control character"),
])
def test_found_by_fuzzing_refused_at_load(entry, problem):
    with pytest.raises(DetstreamError, match=problem):
        parse_settings(SourceConfig, entry, "run.yaml")


def test_a_url_path_of_dots_names_the_host():
    sources = [parse_settings(SourceConfig, {"uri": uri}, "x") for uri in ("rtsp://cam/..", "rtsp://u:p@gate/.")]
    assert source_names(sources) == ["cam", "gate"]
