"""Sources added, removed, paused and changed while the run goes on (the control API's
SourceControl, pipeline/run/sources.py), against real RTSP cameras and a file."""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError, SourceExists, UnknownSource
from rtsp_support import BackgroundRun, write_live_clip
from support import BlobEngine, write_video

LIVE = {"open_timeout_s": 2.0, "read_timeout_s": 1.5, "reconnect": {"initial_s": 0.2, "max_s": 1.0}}


class Captured:
    """A `serve` hook that keeps the run's SourceControl for the test."""

    def __init__(self) -> None:
        self.control = None
        self.ready = threading.Event()

    @contextmanager
    def __call__(self, control, metrics):
        self.control = control
        self.ready.set()
        yield


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def start(tmp_path: Path, sources: list[dict]) -> tuple[BackgroundRun, Captured]:
    config = load_config(None, {"sources": sources, "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"], "api": {"port": 0}})
    captured = Captured()
    run = BackgroundRun(config, BlobEngine(), captured)
    assert captured.ready.wait(30)
    run.wait_for(lambda: captured.control.ready()["model_loaded"], 30, "the model")
    return run, captured


@pytest.mark.timeout(600)
def test_a_camera_added_and_removed_30_times_disturbs_nobody_and_leaks_nothing(tmp_path, rtsp_server):
    long_clip = write_live_clip(tmp_path / "long.mp4", seconds=240)  # the steady cameras never reach its end
    steady = [rtsp_server(video=long_clip), rtsp_server(video=long_clip)]
    # FFmpeg's open probes ~28 frames at the camera's real-time pace: 1.1 s at 25 fps, 0.3 s
    # at 100 fps; the guest streams only until its first frame, so its rate matters nowhere else
    guest = rtsp_server(video=write_live_clip(tmp_path / "guest.mp4", seconds=5, fps=100))
    clip = write_video(tmp_path / "file.mp4", 300, 160, 96)
    sources = [{**LIVE, "name": f"cam{i}", "uri": s.url()} for i, s in enumerate(steady)]
    run, captured = start(tmp_path, [*sources, {"uri": str(clip), "name": "file", "max_fps": 10}])
    control = captured.control
    run.wait_for(lambda: all(run.health(f"cam{i}")["state"] == "streaming" for i in range(2)), 30, "the cameras")
    states: dict[str, set[str]] = {"cam0": set(), "cam1": set()}
    watching = threading.Event()

    def watch() -> None:  # the steady cameras' states, sampled all along
        while not watching.is_set():
            for name in states:
                states[name].add(run.ctx.health[name].state.value)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.5)  # let the first frames settle every thread the run keeps
    python_threads = {t.name for t in threading.enumerate()}
    counts = []  # (OS threads, open fds) after each removal
    try:
        # 30 cycles: the first and last 10 below never overlap; the soak (bench/soak.py) adds
        # and removes cameras over an hour
        for _ in range(30):
            control.add({**LIVE, "name": "guest", "uri": guest.url()})
            run.wait_for(lambda: run.ctx.health["guest"].snapshot()["received"] > 0, 20, "the guest's frames")
            assert any(t.name == "decode[guest]" for t in threading.enumerate())
            control.remove("guest")
            # every thread of ours is gone again (the file's reader may have ended meanwhile)
            assert {t.name for t in threading.enumerate()} <= python_threads
            counts.append((os_threads(), open_fds()))
    finally:
        watching.set()
        watcher.join()
    summary = run.stop()
    assert summary.exit_code == 130 or summary.exit_code == 0 or summary.signal is None
    # nothing grows with the cycles: native pools (OpenCV, FFmpeg) may hold a thread more or
    # less at any moment, but the last cycles hold no more than the first ones did
    print("OS threads and fds after each removal:", counts)
    assert max(t for t, _ in counts[-10:]) <= max(t for t, _ in counts[:10])
    assert max(f for _, f in counts[-10:]) <= max(f for _, f in counts[:10])
    assert states == {"cam0": {"streaming"}, "cam1": {"streaming"}}
    messages = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    file_seqs = [m["seq"] for m in messages if m["source"] == "file"]
    assert file_seqs == list(range(len(file_seqs))) and len(file_seqs) > 0  # lossless, in order
    guest_ids = [m["event_id"] for m in messages if m["source"] == "guest"]
    assert len(guest_ids) == len(set(guest_ids)) >= 30  # seq goes on across re-adds: no id repeats


def test_pause_resume_update_and_errors(tmp_path, rtsp_server):
    camera = rtsp_server()
    run, captured = start(tmp_path, [{**LIVE, "name": "cam", "uri": camera.url()}])
    control = captured.control
    run.wait_for(lambda: run.health("cam")["state"] == "streaming", 30, "the camera")
    assert control.ready()["ready"] is True
    control.update("cam", {"enabled": False})
    assert control.source("cam")["state"] == "paused"
    before = run.health("cam")["received"]
    time.sleep(0.5)
    assert run.health("cam")["received"] == before  # paused: nothing read
    control.update("cam", {"enabled": True, "max_fps": 5, "classes": ["red"]})
    run.wait_for(lambda: run.health("cam")["received"] > before + 5, 20, "frames after resuming")
    view = control.source("cam")
    assert view["state"] == "streaming" and view["settings"]["max_fps"] == 5
    with pytest.raises(ConfigError, match="classes"):
        control.update("cam", {"classes": ["unicorn"]})
    with pytest.raises(ConfigError, match="uri"):
        control.update("cam", {"uri": "rtsp://elsewhere/x"})
    with pytest.raises(ConfigError, match="max_fps"):
        control.update("cam", {"max_fps": -1})
    with pytest.raises(SourceExists):
        control.add({"name": "cam", "uri": camera.url()})
    with pytest.raises(UnknownSource):
        control.remove("nope")
    with pytest.raises(ConfigError, match="uri"):
        control.add({"name": "x"})
    summary = run.stop()
    messages = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    late = [m for m in messages if m["session"] >= 1]  # read after resuming: a new session
    assert late and all(d["label"] == "red" for m in late for d in m["detections"])  # the new classes apply
    assert summary.health["cam"]["state"] in ("finished", "streaming")


def test_passwords_never_come_back(tmp_path, rtsp_server):
    camera = rtsp_server()
    secret_uri = camera.url().replace("rtsp://", "rtsp://viewer:s3cret@")
    run, captured = start(tmp_path, [{**LIVE, "name": "cam", "uri": secret_uri}])
    control = captured.control
    text = json.dumps([control.sources(), control.config(), control.source("cam")])
    run.stop()
    assert "s3cret" not in text


def test_health_and_a_killed_camera_through_the_http_api(tmp_path, rtsp_server):
    from api_server_support import request
    from pipeline.api.server import serving

    def get(port: int, path: str) -> tuple[int, dict]:
        status, _, body = request(port, "GET", path)
        return status, json.loads(body)

    camera = rtsp_server()
    config = load_config(None, {"sources": [{**LIVE, "name": "cam", "uri": camera.url()}],
                                "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"], "api": {"port": 0}})
    hook = serving(config.api, config.sources)
    loaded = threading.Event()

    def slow_serve(control, metrics):  # the model "loads" until the test has seen ready false
        @contextmanager
        def served():
            with hook(control, metrics):
                loaded.wait(30)
                yield
        return served()

    run = BackgroundRun(config, BlobEngine(), slow_serve)
    port = None
    deadline = time.monotonic() + 30
    while port is None and time.monotonic() < deadline:
        port = getattr(hook, "port", None) or None
        time.sleep(0.02)
    status, body = get(port, "/health/ready")
    assert status == 503 and body["ready"] is False and body["model_loaded"] is False
    assert get(port, "/health/live")[0] == 200
    loaded.set()
    run.wait_for(lambda: get(port, "/health/ready")[0] == 200, 30, "ready")
    camera.kill()
    started = time.monotonic()
    run.wait_for(lambda: get(port, "/sources/cam")[1]["state"] == "reconnecting", 10, "reconnecting")
    took = time.monotonic() - started
    assert took <= LIVE["read_timeout_s"] + 0.5, took  # within read_timeout_s (plus polling)
    assert get(port, "/health/ready")[0] == 503
    run.stop()
