"""Ctrl-C while a camera is stalled: `detstream run` exits within 5 s with code 130, and
its output never shows the camera's credentials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

from support import DETSTREAM


def test_ctrl_c_while_stalled_exits_within_5_s(tmp_path, rtsp_server):
    server = rtsp_server()
    out = tmp_path / "out.jsonl"
    config = tmp_path / "cam.yaml"
    # a long read timeout: FFmpeg would keep the read blocked far past the 5 s
    config.write_text(
        "sources:\n"
        f"  - uri: {server.url(credentials='admin:hunter2@')}?token=s3cret\n"
        "    name: cam\n    read_timeout_s: 2\n"
        f"sinks: ['jsonl:{out}']\n"
    )
    process = subprocess.Popen(
        [*DETSTREAM, "run", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180  # model loading on a busy CI box
        while not (out.exists() and len(out.read_text().splitlines()) >= 5):
            assert process.poll() is None, "".join(stderr_lines)
            assert time.monotonic() < deadline, "no output: " + "".join(stderr_lines)
            time.sleep(0.1)
        server.pause()
        while not any("-> stalled" in line for line in stderr_lines):
            assert time.monotonic() < deadline, "no stall reported: " + "".join(stderr_lines)
            time.sleep(0.05)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        process.kill()
        server.resume()
    reader.join(5)
    stderr = "".join(stderr_lines)
    assert took < 5.0, f"exit took {took:.1f} s: {stderr}"
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "stalled" in stderr
    assert "hunter2" not in stderr and "s3cret" not in stderr
    for line in out.read_text().splitlines():
        json.loads(line)  # every line written whole
