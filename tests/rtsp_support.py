"""Helpers for live-source tests and benchmarks: a real RTSP server in a subprocess,
a TCP listener that never answers, and a pipeline run in a background thread.

The server is GStreamer's gst-rtsp-server (tests/rtsp/server.py) run by the system
python3, which has PyGObject from Debian packages (`make test` installs them).
"""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av

from pipeline.core.config import RunConfig
from pipeline.core.context import RunContext
from pipeline.run.runner import RunSummary, run
from support import render_blobs

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).parent / "rtsp" / "server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_live_clip(path: Path, seconds: float, fps: int = 25, width: int = 320, height: int = 180) -> Path:
    """Blob video with a keyframe every second, so a (re)connecting client starts fast."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "ultrafast", "g": str(fps), "bf": "0"}
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(render_blobs(i, width, height), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


class RtspServer:
    """gst-rtsp-server serving `video` at rtsp://127.0.0.1:PORT/cam; restartable on the same port.
    With `user` (and `password`) it requires RTSP basic authentication."""

    def __init__(
        self, video: Path, port: int | None = None, path: str = "/cam", user: str | None = None, password: str = ""
    ) -> None:
        self.video = video
        self.port = port or free_port()
        self.path = path
        self.user = user
        self.password = password
        self.process: subprocess.Popen[str] | None = None

    def url(self, path: str | None = None, credentials: str = "") -> str:
        return f"rtsp://{credentials}127.0.0.1:{self.port}{path or self.path}"

    def start(self, timeout: float = 20.0) -> "RtspServer":
        if not Path(SYSTEM_PYTHON).exists():
            raise RuntimeError(f"{SYSTEM_PYTHON} not found: the RTSP test server needs the system Python")
        auth = ["--user", self.user, "--password", self.password] if self.user else []
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--path", self.path, "--video", str(self.video), *auth],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the port may still be held by a killed predecessor
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("ready"):
                    return self
            if self.process.poll() is not None:
                break
        stderr = self.process.stderr.read() if self.process.poll() is not None else ""
        self.stop()
        raise RuntimeError(
            f"RTSP test server did not start on port {self.port}: {stderr.strip()[-2000:]}\n"
            "it needs: apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base "
            "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav (make test does this)"
        )

    def kill(self) -> None:
        """SIGKILL: the connection drops at once, as when a camera loses power."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: TCP stays up (the kernel still ACKs), but no packet is sent."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot act on a kill's aftermath
            self.process.kill()
            self.process.wait(10)
        for pipe in (self.process.stdout, self.process.stderr) if self.process else ():
            pipe.close()


class SilentListener:
    """Accepts TCP connections and never sends a byte: an open must time out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class BackgroundRun:
    """`run(config, engine)` in a thread, watchable through its RunContext, stoppable."""

    def __init__(self, config: RunConfig, engine: object, serve: object = None) -> None:
        self.ctx = RunContext()
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(config, engine, serve), daemon=True)
        self._thread.start()

    def _run(self, config: RunConfig, engine: object, serve: object) -> None:
        try:
            self.summary = run(config, engine, self.ctx, serve)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            self.error = exc

    def health(self, source: str) -> dict:
        # the run fills ctx.health when it builds its stages, a moment after the thread starts
        deadline = time.monotonic() + 10
        while source not in self.ctx.health:
            if self.error:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError(f"the run never registered source {source!r}")
            time.sleep(0.01)
        return self.ctx.health[source].snapshot()

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `condition` until true; returns the seconds it took. Fails the test on timeout."""
        started = time.monotonic()
        while not condition():
            if self.error:
                raise self.error
            if time.monotonic() - started > timeout:
                states = {name: h.snapshot() for name, h in self.ctx.health.items()}
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; health: {states}")
            time.sleep(0.02)
        return time.monotonic() - started

    def stop(self, timeout: float = 15.0) -> RunSummary:
        """Ask the run to stop (as Ctrl-C does) and return its summary."""
        self.ctx.stop_reading.set()
        return self.join(timeout)

    def join(self, timeout: float = 15.0) -> RunSummary:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the run did not end within {timeout} s")
        if self.error:
            raise self.error
        assert self.summary is not None
        return self.summary

