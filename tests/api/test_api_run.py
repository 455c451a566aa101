"""The control API on a real run: the runner's Sources behind the server, in process (the
colour-blob engine) and through `detstream run --api-port` (a real model, a real signal)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import yaml
from api_server_support import request

from pipeline.api.server import serving
from pipeline.core.config import ApiConfig, RunConfig, SourceConfig
from pipeline.core.context import RunContext
from pipeline.run.runner import RunSummary, run
from support import DETSTREAM, BlobEngine, run_cli

MODEL = "arch:fasterrcnn_mobilenet_v3_large_320_fpn"  # a real torchvision model, untrained


def wait_for(check, timeout_s: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def api_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("detstream-api")]


def test_sources_come_and_go_through_the_api(tmp_path: Path, videos: dict[str, Path]) -> None:
    out = tmp_path / "out.jsonl"
    config = RunConfig(
        sources=[SourceConfig(uri=str(videos["a"]), name="a")], sinks=[f"jsonl:{out}"],
        api=ApiConfig(port=0, state_file=tmp_path / "state.yaml"),
    )
    hook = serving(config.api, config.sources)
    ctx = RunContext()
    summaries: list[RunSummary] = []
    runner = threading.Thread(target=lambda: summaries.append(run(config, BlobEngine(), ctx, serve=hook)))
    runner.start()
    try:
        port = wait_for(lambda: hook.port, what="the API")
        wait_for(lambda: request(port, "GET", "/health/ready")[0] == 200, what="ready")
        status, _, body = request(port, "GET", "/sources")
        assert status == 200 and [s["name"] for s in json.loads(body)] == ["a"]
        status, _, body = request(port, "POST", "/sources", {"uri": str(videos["b"]), "name": "b", "stride": 0})
        assert status == 422 and json.loads(body)["field"] == "stride"
        status, _, body = request(port, "POST", "/sources", {"uri": str(videos["b"]), "name": "b"})
        assert status == 201 and json.loads(body)["name"] == "b"
        assert request(port, "POST", "/sources", {"uri": str(videos["b"]), "name": "b"})[0] == 409
        for name in ("a", "b"):
            wait_for(lambda: json.loads(request(port, "GET", f"/sources/{name}")[2])["state"] == "finished", what=name)
        assert request(port, "PATCH", "/sources/a", {"max_fps": 5})[0] == 200
        assert request(port, "DELETE", "/sources/b")[0] == 204
        assert request(port, "GET", "/sources/b")[0] == 404
        assert 'detstream_source_frames_received_total{source="a"} 40.0' in request(port, "GET", "/metrics")[2].decode()
        assert json.loads(request(port, "GET", "/config")[2])["sources"][0]["name"] == "a"
    finally:
        ctx.stop_reading.set()
        runner.join(30)
    assert not runner.is_alive() and summaries[0].exit_code == 0
    frames = [json.loads(line)["source"] for line in out.read_text().splitlines()]
    assert (frames.count("a"), frames.count("b")) == (40, 25)  # files are lossless, the added one too
    assert api_threads() == []
    saved = yaml.safe_load((tmp_path / "state.yaml").read_text())
    assert saved == {"sources": [{"uri": str(videos["a"]), "name": "a", "max_fps": 5}]}


def test_run_with_api_port_serves_and_restores_its_state(tmp_path: Path, videos: dict[str, Path]) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(yaml.safe_dump({"sources": [{"uri": str(videos["b"]), "name": "restored"}]}))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "sources": [str(videos["a"])], "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"], "model": {"path": MODEL},
        "api": {"state_file": str(state)},
    }))
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        process = subprocess.Popen([*DETSTREAM, "run", str(config), "--api-port", "0"], stdout=subprocess.DEVNULL,
                                   stderr=stderr, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        found = wait_for(lambda: re.search(r"control API and live page at http://127.0.0.1:(\d+)/", log.read_text())
                         or process.poll() is not None, timeout_s=120, what="the API's log line")
        assert process.poll() is None, log.read_text()
        port = int(found[1])
        assert "restored 1 sources from" in log.read_text()
        wait_for(lambda: request(port, "GET", "/health/ready")[0] == 200, timeout_s=120, what="ready")
        listed = run_cli("sources", "list", "--api", f"http://127.0.0.1:{port}", timeout=60)
        assert listed.returncode == 0 and "restored" in listed.stdout and "a.mp4" not in listed.stdout, listed.stderr
        added = run_cli("sources", "add", "--api", f"http://127.0.0.1:{port}", "--uri", str(videos["a"]), "--name", "again")
        assert added.returncode == 0, added.stderr
        assert [s["name"] for s in yaml.safe_load(state.read_text())["sources"]] == ["restored", "again"]
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    finally:
        process.kill()
    assert process.returncode == 143, log.read_text()
    assert "Traceback" not in log.read_text()
