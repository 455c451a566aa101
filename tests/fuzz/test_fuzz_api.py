"""Fuzz: the control API's request handling (routes, headers, JSON bodies, source settings)
over the real server and a fake control (tests/api_server_support.py). Whatever a client
sends, the answer is a 2xx or a 4xx with a JSON error: never a 500, never a hang."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api_server_support import Api, running_api
from fuzz_support import FUZZ
from pipeline.core.config import ApiConfig

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
              st.sampled_from(["rtsp://u:p@cam/1", "/videos/a.mp4", "rtsp://[", "", "cam1", "lobby"])),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.sampled_from(["uri", "name", "stride", "max_fps", "enabled", "live",
                                                                "classes", "zones", "roi", "tracking", "x", ""]),
                                               children, max_size=4)),
    max_leaves=10,
)
PATHS = ["/sources", "/sources/cam1", "/sources/lobby", "/sources/nope", "/sources/", "/sources/%00", "/sources/..",
         "/config", "/health/ready", "/health/live", "/metrics", "/", "/x", "//sources", "/sources/cam1/"]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with running_api(ApiConfig(port=0)) as running:
        yield running


@FUZZ
@given(st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]), st.sampled_from(PATHS),
       st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40), st.none()),
       st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1", ""]))
def test_any_request(api, method, path, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    status, _, answer = api.call(method, path, raw=body, headers=headers)
    assert status < 500, (status, answer[:300])
    if status >= 400 and answer:
        assert json.loads(answer)["error"]
