"""`detstream sources ...` as a user runs it, against the API server on a free port."""

from __future__ import annotations

import os
import socket

from api_server_support import CAMERA, PASSWORD, TOKEN, Api
from support import run_cli


def sources(api: Api, *args: str) -> tuple[int, str, str]:
    done = run_cli("sources", *args, "--api", f"http://127.0.0.1:{api.port}", timeout=60)
    return done.returncode, done.stdout, done.stderr


def test_list_add_pause_resume_remove(api: Api) -> None:
    code, out, err = sources(api, "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"sources at http://127.0.0.1:{api.port}"
    assert [line.split()[:5] for line in lines if "cam1" in line or "lobby" in line] == [
        ["│", "cam1", "│", "streaming", "│"], ["│", "lobby", "│", "streaming", "│"]]
    assert "12.5" in out and "38" in out and " s " in out  # fps, frames processed, last frame age

    door = CAMERA.replace("stream1", "door")
    code, out, err = sources(api, "add", "--uri", door, "--name", "door", "--set", "max_fps=5", "--set", "reconnect.max_s=10")
    assert (code, out.strip()) == (0, "added door (streaming)"), err
    assert api.control.settings["door"] == {"uri": door, "name": "door", "max_fps": 5, "reconnect": {"max_s": 10}}
    code, out, err = sources(api, "add", "--json", '{"uri": "/v/hall.mp4", "stride": 2}', "--name", "hall")
    assert code == 0 and api.control.settings["hall"] == {"uri": "/v/hall.mp4", "stride": 2, "name": "hall"}

    assert sources(api, "pause", "door")[:2] == (0, "paused door\n")
    assert api.control.settings["door"]["enabled"] is False
    assert sources(api, "resume", "door")[:2] == (0, "resumed door\n")
    assert api.control.settings["door"]["enabled"] is True
    assert sources(api, "remove", "door")[:2] == (0, "removed door\n")
    assert "door" not in api.control.settings
    assert PASSWORD not in out + err


def test_errors_print_the_api_message_and_exit_2(api: Api) -> None:
    code, out, err = sources(api, "add", "--uri", "/v/x.mp4", "--set", "stride=0")
    assert code == 2 and out == ""
    assert "POST /sources: 422 source: stride = 0: Input should be greater than or equal to 1 (field: stride)" in err
    code, _, err = sources(api, "remove", "nope")
    assert code == 2 and "DELETE /sources/nope: 404 no source 'nope'" in err
    code, _, err = sources(api, "add", "--uri", "/v/x.mp4", "--set", "stride")
    assert code == 2 and "--set stride: expected KEY=VALUE" in err


def test_the_token_from_the_flag_or_the_environment(secured: Api) -> None:
    code, _, err = sources(secured, "list")
    assert code == 2 and "GET /sources: 401 missing or wrong token" in err
    code, out, err = sources(secured, "list", "--token", TOKEN)
    assert code == 0 and "cam1" in out, err
    os.environ["DETSTREAM_API_TOKEN"] = TOKEN
    try:
        code, out, err = sources(secured, "pause", "cam1")
    finally:
        del os.environ["DETSTREAM_API_TOKEN"]
    assert code == 0 and secured.control.settings["cam1"]["enabled"] is False
    assert TOKEN not in out + err


def test_no_server_is_one_line_naming_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens once closed
    done = run_cli("sources", "list", "--api", f"http://127.0.0.1:{port}", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"detstream ERROR: cannot connect to the API at http://127.0.0.1:{port}: [Errno 111] Connection refused"]
    done = run_cli("sources", "list", "--api", f"http://admin:{PASSWORD}@127.0.0.1:{port}", timeout=60)
    assert done.returncode == 2 and PASSWORD not in done.stderr
    assert f"--api http://admin:***@127.0.0.1:{port}: no credentials in the URL" in done.stderr
