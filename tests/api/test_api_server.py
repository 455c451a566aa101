"""The control API over real HTTP: every route and status code, the token, body limits, no
secret in any answer or log line, and a server that leaves no thread or socket behind."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from api_server_support import CAMERA, PASSWORD, TOKEN, Api, request, running_api
from api_support import FakeControl as TapControl
from api_support import blob_message

from pipeline.api import app as api_app
from pipeline.api.server import Serving, serving
from pipeline.core.config import ApiConfig
from pipeline.core.errors import ConfigError
from pipeline.core.metrics import Metrics


def as_json(body: bytes) -> dict:
    return json.loads(body)


def wait_until(condition, timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# --- reading -----------------------------------------------------------------------


def test_probes_answer_200_or_503(api: Api) -> None:
    assert api.call("GET", "/health/live")[::2] == (200, b'{"live": true}')
    status, _, body = api.call("GET", "/health/ready")
    assert status == 200 and as_json(body)["sources"] == {"cam1": "streaming", "lobby": "streaming"}
    api.control.is_ready = False
    status, _, body = api.call("GET", "/health/ready")
    assert status == 503 and as_json(body)["ready"] is False
    api.control.is_live = False
    assert api.call("GET", "/health/live")[::2] == (503, b'{"live": false}')


def test_sources_and_one_source_masked(api: Api) -> None:
    status, headers, body = api.call("GET", "/sources")
    assert status == 200 and headers["content-type"] == "application/json"
    listed = as_json(body)
    assert [s["name"] for s in listed] == ["cam1", "lobby"]
    assert listed[0]["settings"]["uri"] == "rtsp://user:***@10.0.0.7:554/stream1"
    status, _, body = api.call("GET", "/sources/lobby")
    assert status == 200 and as_json(body)["settings"]["uri"] == "/videos/lobby.mp4"
    status, _, body = api.call("GET", "/sources/nope")
    assert status == 404 and as_json(body) == {"error": "no source 'nope'"}


def test_names_are_url_decoded(api: Api) -> None:
    assert api.call("POST", "/sources", {"uri": "/v/a.mp4", "name": "a b#2"})[0] == 201
    assert api.call("GET", "/sources/a%20b%232")[0] == 200


def test_config_and_metrics(api: Api) -> None:
    status, _, body = api.call("GET", "/config")
    assert status == 200 and as_json(body)["sources"][0]["uri"] == "rtsp://user:***@10.0.0.7:554/stream1"
    status, headers, body = api.call("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    assert 'detstream_source_state{source="cam1",state="connecting"} 1.0' in body.decode()


def test_unknown_route_is_404_and_wrong_method_405(api: Api) -> None:
    status, _, body = api.call("GET", "/nope")
    assert status == 404 and as_json(body) == {"error": "no such endpoint: GET /nope"}
    status, headers, body = api.call("DELETE", "/sources")
    assert status == 405 and headers["allow"] == "GET, HEAD, POST"
    assert "DELETE is not allowed on /sources" in as_json(body)["error"]
    assert api.call("PUT", "/sources/cam1", {"enabled": False})[0] == 405


# --- changes -------------------------------------------------------------------------


def test_post_adds_a_source_and_a_second_is_409(api: Api) -> None:
    status, headers, body = api.call("POST", "/sources", {"uri": "/v/door.mp4", "name": "door", "stride": 2})
    assert status == 201 and headers["location"] == "/sources/door"
    assert as_json(body)["settings"]["stride"] == 2 and "door" in api.control.settings
    status, _, body = api.call("POST", "/sources", {"uri": "/v/other.mp4", "name": "door"})
    assert status == 409 and "door" in as_json(body)["error"]


@pytest.mark.parametrize(
    "entry, field",
    [
        ({"uri": "/v/x.mp4", "stride": 0}, "stride"),
        ({"uri": "/v/x.mp4", "strde": 2}, "strde"),  # unknown key
        ({"name": "x"}, "uri"),  # missing
        ({"uri": "/v/x.mp4", "reconnect": {"max_s": -1}}, "reconnect.max_s"),
    ],
)
def test_invalid_source_is_422_naming_the_field(api: Api, entry: dict, field: str) -> None:
    status, _, body = api.call("POST", "/sources", entry)
    assert status == 422
    error = as_json(body)
    assert error["field"] == field and field.split(".")[-1] in error["error"]


def test_patch_changes_updatable_keys_only(api: Api) -> None:
    status, _, body = api.call("PATCH", "/sources/cam1", {"enabled": False, "max_fps": 5})
    assert status == 200 and as_json(body)["state"] == "paused"
    assert api.control.settings["cam1"]["max_fps"] == 5
    status, _, body = api.call("PATCH", "/sources/cam1", {"uri": "rtsp://other/1"})
    assert status == 422 and as_json(body)["field"] == "uri" and "cannot be changed" in as_json(body)["error"]
    status, _, body = api.call("PATCH", "/sources/cam1", {"max_fps": -1})
    assert status == 422 and as_json(body)["field"] == "max_fps"
    assert api.call("PATCH", "/sources/cam1", {})[0] == 422
    assert api.call("PATCH", "/sources/nope", {"enabled": True})[0] == 404


def test_delete_is_204_then_404(api: Api) -> None:
    status, _, body = api.call("DELETE", "/sources/lobby")
    assert status == 204 and body == b"" and "lobby" not in api.control.settings
    assert api.call("DELETE", "/sources/lobby")[0] == 404


# --- bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, content_type, status, message",
    [
        (b'{"uri": ', "application/json", 400, "body is not valid JSON"),
        (b'["/v/x.mp4"]', "application/json", 400, "body must be a JSON object, not list"),
        (b"\xff\xfe{}", "application/json", 400, "not UTF-8"),
        (b'{"uri": "/v/x.mp4"}', "text/plain", 415, "Content-Type must be application/json"),
        (b'{"uri": "/v/x.mp4"}', "application/x-www-form-urlencoded", 415, "Content-Type must be application/json"),
    ],
)
def test_bad_bodies(api: Api, raw: bytes, content_type: str, status: int, message: str) -> None:
    got, _, body = api.call("POST", "/sources", raw=raw, headers={"Content-Type": content_type})
    assert got == status and message in as_json(body)["error"]
    assert api.control.settings.keys() == {"cam1", "lobby"}


def test_body_over_the_limit_is_413_by_header_and_by_bytes_read(api: Api) -> None:
    limit = ApiConfig().max_body_bytes
    big = json.dumps({"uri": "/v/x.mp4", "name": "x" * limit}).encode()
    status, _, body = api.call("POST", "/sources", raw=big, headers={"Content-Type": "application/json"})
    assert status == 413 and "api.max_body_bytes" in as_json(body)["error"]
    # chunked: no Content-Length, so only counting the bytes read can catch it
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    chunks = (big[i:i + 4096] for i in range(0, len(big), 4096))
    connection.request("POST", "/sources", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and "api.max_body_bytes" in as_json(response.read())["error"]
    connection.close()
    # within the limit, chunked, is fine
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    small = json.dumps({"uri": "/v/y.mp4", "name": "y"}).encode()
    connection.request("POST", "/sources", body=iter([small[:5], small[5:]]),
                       headers={"Content-Type": "application/json"}, encode_chunked=True)
    assert connection.getresponse().status == 201
    connection.close()
    assert "x" not in api.control.settings and "y" in api.control.settings


# --- the live page -------------------------------------------------------------------


def test_index_frame_and_unknown_source(api: Api) -> None:
    status, headers, body = api.call("GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8" and b"detstream" in body
    status, headers, body = api.call("GET", "/sources/cam1/frame.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body == b"\xff\xd8cam1 frame 1\xff\xd9"
    assert api.call("GET", "/sources/nope/frame.jpg")[0] == 404
    assert api.call("GET", "/sources/nope/stream.mjpg")[0] == 404
    assert wait_until(lambda: api.page.running == 0)


def test_frame_of_a_silent_source_is_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_app, "FRAME_WAIT_S", 0.5)
    api.page.paused = True
    status, _, body = api.call("GET", "/sources/cam1/frame.jpg")
    assert status == 503 and "no frame from source 'cam1'" in as_json(body)["error"]
    assert api.page.running == 0


def read_parts(response: http.client.HTTPResponse, n: int) -> list[bytes]:
    """The first n JPEGs of a multipart/x-mixed-replace response."""
    parts = []
    while len(parts) < n:
        assert response.readline() == b"--frame\r\n"
        assert response.readline() == b"Content-Type: image/jpeg\r\n"
        length = int(response.readline().split(b":")[1])
        assert response.readline() == b"\r\n"
        parts.append(response.read(length))
        assert response.read(2) == b"\r\n"
    return parts


def test_stream_sends_jpegs_until_the_client_leaves(api: Api) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    connection.request("GET", "/sources/cam1/stream.mjpg")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    assert read_parts(response, 2) == [b"\xff\xd8cam1 frame 1\xff\xd9", b"\xff\xd8cam1 frame 2\xff\xd9"]
    assert api.page.running == 1
    api.page.paused = True  # no more frames to write: only the hang-up watcher can notice
    response.close()
    connection.close()
    assert wait_until(lambda: api.page.running == 0), "the preview kept running after its client left"
    assert all(stop.is_set() for stop in api.page.stops)


# --- security ------------------------------------------------------------------------


def test_non_loopback_bind_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="api.address 0.0.0.0 needs a token: set api.token or DETSTREAM_API_TOKEN"):
        serving(ApiConfig(port=0, address="0.0.0.0"), environ={})
    assert serving(ApiConfig(port=0, address="0.0.0.0"), environ={"DETSTREAM_API_TOKEN": TOKEN}).token == TOKEN
    with pytest.raises(ConfigError, match="at least 16 characters"):
        serving(ApiConfig(port=0, address="0.0.0.0", token="short"), environ={})
    assert serving(ApiConfig(port=0, address="localhost"), environ={}).token is None


def test_a_port_in_use_is_a_config_error(api: Api) -> None:
    with pytest.raises(ConfigError, match=f"api.port {api.port} on 127.0.0.1: cannot serve the API"):
        with running_api(ApiConfig(port=api.port)):
            pass


def test_without_the_token_401_on_a_non_loopback_bind(secured: Api) -> None:
    for path in ("/sources", "/sources/cam1", "/config", "/metrics", "/", "/sources/cam1/frame.jpg", "/nope"):
        status, headers, body = secured.call("GET", path)
        assert status == 401, path
        assert headers["www-authenticate"] == "Bearer" and "Bearer TOKEN" in as_json(body)["error"]
    assert secured.call("DELETE", "/sources/cam1")[0] == 401
    assert secured.call("GET", "/sources", token="wrong-token-0123456789")[0] == 401
    assert secured.call("GET", "/sources", headers={"Authorization": TOKEN})[0] == 401  # no scheme
    assert secured.call("GET", "/sources", token=TOKEN)[0] == 200
    assert secured.call("DELETE", "/sources/lobby", token=TOKEN)[0] == 204
    assert "cam1" in secured.control.settings and "lobby" not in secured.control.settings


def test_probes_stay_open_and_tell_nothing_without_the_token(secured: Api) -> None:
    assert secured.call("GET", "/health/live")[::2] == (200, b'{"live": true}')
    assert secured.call("GET", "/health/ready")[::2] == (200, b'{"ready": true}')
    assert "sources" in as_json(secured.call("GET", "/health/ready", token=TOKEN)[2])
    secured.control.is_ready = False
    assert secured.call("GET", "/health/ready")[::2] == (503, b'{"ready": false}')


def test_image_routes_alone_take_the_token_in_the_query(secured: Api) -> None:
    # an <img> cannot send a header: the live page puts the token in the image URLs
    status, headers, _ = secured.call("GET", f"/sources/cam1/frame.jpg?token={TOKEN}")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert secured.call("GET", "/sources/cam1/frame.jpg?token=wrong-token-0123456789")[0] == 401
    for method, path in (("GET", "/sources"), ("GET", "/"), ("GET", "/config"), ("DELETE", "/sources/cam1")):
        assert secured.call(method, f"{path}?token={TOKEN}")[0] == 401, path
    assert "cam1" in secured.control.settings


def test_without_a_token_only_loopback_host_names(api: Api) -> None:
    # a page of another site, its name re-pointed at 127.0.0.1 (DNS rebinding), is refused
    status, _, body = api.call("GET", "/sources", headers={"Host": f"evil.example:{api.port}"})
    assert status == 403 and "not a loopback name" in as_json(body)["error"]
    assert api.call("GET", "/sources", headers={"Host": f"localhost:{api.port}"})[0] == 200
    assert api.call("GET", "/health/live", headers={"Host": "evil.example"})[0] == 200


def test_no_password_or_token_in_any_answer_or_log_line(secured: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="detstream")
    answers = [
        secured.call("GET", "/sources", token=TOKEN),
        secured.call("GET", "/sources/cam1", token=TOKEN),
        secured.call("GET", "/config", token=TOKEN),
        secured.call("GET", "/metrics", token=TOKEN),
        secured.call("GET", "/health/ready", token=TOKEN),
        secured.call("GET", f"/sources/cam1/frame.jpg?token={TOKEN}"),
        secured.call("GET", f"/sources?token={TOKEN}&password={PASSWORD}"),
        secured.call("GET", "/sources", token=TOKEN + "x"),
        secured.call("POST", "/sources", {"uri": CAMERA, "name": "cam1"}, token=TOKEN),  # 409
        secured.call("POST", "/sources", {"uri": CAMERA.replace("stream1", "s2"), "stride": 0}, token=TOKEN),  # 422
        secured.call("POST", "/sources", {"uri": CAMERA.replace("stream1", "s2"), CAMERA: 1}, token=TOKEN),  # 422
        secured.call("POST", "/sources", {"uri": CAMERA.replace("stream1", "s3"), "name": "cam3"}, token=TOKEN),  # 201
        secured.call("PATCH", "/sources/cam3", {CAMERA: 1, TOKEN: 2}, token=TOKEN),  # 422
        secured.call("PATCH", "/sources/cam3", {"max_fps": 2}, token=TOKEN),
        secured.call("GET", f"/sources/{TOKEN}", token=TOKEN),  # 404 naming the token
        secured.call("GET", f"/{CAMERA}", token=TOKEN),  # 404 naming the camera URL
    ]
    assert [status for status, _, _ in answers] == [200, 200, 200, 200, 200, 200, 401, 401, 409, 422, 422, 201, 422, 200, 404, 404]
    for status, headers, body in answers:
        text = body.decode(errors="replace") + json.dumps(headers)
        assert PASSWORD not in text and TOKEN not in text, (status, text)
    logged = caplog.text
    assert "api: 127.0.0.1 POST /sources 201" in logged and "api: 127.0.0.1 GET /sources 401" in logged
    assert PASSWORD not in logged and TOKEN not in logged
    assert "api: 127.0.0.1 GET /sources/cam1/frame.jpg 200" in logged
    assert "?" not in "".join(r.getMessage() for r in caplog.records if r.getMessage().startswith("api: 127.0.0.1 GET /sources"))


# --- the server's own resources ------------------------------------------------------


def api_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("detstream-api")}


def test_closing_leaves_no_thread_or_socket(caplog: pytest.LogCaptureFixture) -> None:
    before = set(threading.enumerate())
    with running_api(ApiConfig(port=0)) as api:
        port = api.port
        # an MJPEG viewer still watching, and a client that sent half a request, when the run ends
        viewer = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        viewer.request("GET", "/sources/cam1/stream.mjpg")
        response = viewer.getresponse()
        read_parts(response, 1)
        idle = socket.create_connection(("127.0.0.1", port))
        idle.sendall(b"GET /sources HTTP/1.1\r\n")
        assert wait_until(lambda: len(api_threads()) >= 4)  # server, previews, two requests
        started = time.monotonic()
    assert time.monotonic() - started < 3, "closing waited for the half-sent request's timeout"
    assert api_threads() == set() and set(threading.enumerate()) <= before
    assert api.page.running == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    response.close()
    viewer.close()
    idle.close()
    assert "still running" not in caplog.text


# --- the real live page behind the server ----------------------------------------------


def test_the_live_page_and_its_frames_through_the_server() -> None:
    """pipeline.api.page over a real FrameTap: the page, a JPEG, and a stream whose tap closes
    when its viewer leaves."""
    control, playing = TapControl(), threading.Event()
    control.put("cam", [blob_message("cam", i) for i in range(30)])
    player = threading.Thread(target=control.play, args=(30, playing), daemon=True)
    player.start()
    hook = Serving(ApiConfig(port=0, preview_fps=10), environ={})
    try:
        with hook(control, Metrics({})) as server:  # type: ignore[arg-type]
            status, headers, body = request(server.port, "GET", "/")
            assert status == 200 and b"<html" in body.lower()
            status, headers, body = request(server.port, "GET", "/sources/cam/frame.jpg")
            assert status == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (180, 320, 3)
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", "/sources/cam/stream.mjpg")
            response = connection.getresponse()
            assert all(part[:2] == b"\xff\xd8" for part in read_parts(response, 3))
            assert control.tap.watching("cam") == 1
            response.close()
            connection.close()
            assert wait_until(lambda: control.tap.watching("cam") == 0), "the tap stayed open after the viewer left"
    finally:
        playing.set()
        player.join()
