"""Real receivers for the push sinks, and a run with an outage in the middle.

- `HttpsReceiver`: an HTTPS server (http.server + ssl, HTTP/1.1 keep-alive) that checks
  each POST's signature by the documented recipe (its own HMAC, not the sink's helper)
  and keeps what it accepted; `stop()` also cuts the kept-alive connections, as a
  crashed receiver would.
- `MosquittoBroker`: the Debian `mosquitto` on a free port (TLS with a folder from
  `make_tls_files`) with a generated config and persistence (subscribers with a persistent session get what was published while they
  were away); `kill()` is SIGKILL, `start()` again reuses the port and the database.
- `run_with_outage`: a pipeline run paused at engine call 30 (the test waits until the
  receiver has everything so far, then takes it down), the receiver away while engine
  calls 30-80 produce events, then back.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from pipeline.core.config import load_config
from pipeline.run.runner import RunSummary, run
from support import GatedEngine, counting_source, end_process, free_port, wait_for, write_video

START_TIMEOUT_S = 15.0


class HttpsReceiver:
    def __init__(self, tls: Path, secret: bytes, reject_types: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.tls = tls
        self.secret = secret
        self.reject_types = reject_types  # answered 400
        self.accepted: list[tuple[str, bytes]] = []  # (X-Detstream-Event-Id, body)
        self.bad_signatures = 0
        self.unavailable = 0  # answer this many POSTs with 503 first
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks/detstream"

    def ids(self) -> list[str]:
        with self.lock:
            return [event_id for event_id, _ in self.accepted]

    def signed(self, headers: Any, body: bytes) -> bool:
        """The documented check: HMAC-SHA256(secret, timestamp + "." + body), timestamp within 5 min."""
        timestamp = headers.get("X-Detstream-Timestamp", "")
        expected = "sha256=" + hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
        return fresh and hmac.compare_digest(headers.get("X-Detstream-Signature", ""), expected)

    def start(self) -> HttpsReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
            timeout = 10

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver._connections.add(self.connection)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answer(self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls / "server.pem", self.tls / "server.key")
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._server = server
        return self

    def answer(self, headers: Any, body: bytes) -> int:
        with self.lock:
            if not self.signed(headers, body):
                self.bad_signatures += 1
                return 401
            if self.unavailable > 0:
                self.unavailable -= 1
                return 503
            if json.loads(body).get("type") in self.reject_types:
                return 400
            self.accepted.append((headers["X-Detstream-Event-Id"], body))
            return 204

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()
        self._server = None


class MosquittoBroker:
    def __init__(self, directory: Path, passwords: dict[str, str] | None = None, tls: Path | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        lines = [
            # started as root, mosquitto becomes user `mosquitto`, who may not write here
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            *([f"certfile {tls / 'server.pem'}", f"keyfile {tls / 'server.key'}"] if tls else []),
            f"persistence true\npersistence_location {self.directory}/",
            "autosave_interval 1\nautosave_on_changes true",  # the database follows every change
            "max_queued_messages 100000",
            f"log_dest file {self.directory / 'mosquitto.log'}",
        ]
        if passwords:
            file = self.directory / "passwords"
            file.touch()
            for user, password in passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(file), user, password], check=True, capture_output=True)
            lines.append(f"allow_anonymous false\npassword_file {file}")
        else:
            lines.append("allow_anonymous true")
        self.config = self.directory / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> MosquittoBroker:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(binary):
            raise RuntimeError("mosquitto is not installed: the MQTT tests need it (apt-get install mosquitto)")
        self.process = subprocess.Popen([binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "mosquitto.log").read_text()[-2000:] if (self.directory / "mosquitto.log").exists() else ""
                    self.stop()
                    raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{log}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        end_process(self.process, kill=True)
        self.process = None

    def stop(self) -> None:
        end_process(self.process)
        self.process = None


class Subscriber:
    """A paho subscriber to `topic`; `persistent`: a session the broker keeps while it is away."""

    def __init__(self, port: int, topic: str, persistent: bool = False, name: str = "checker") -> None:
        self.messages: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name, clean_session=not persistent)
        client.reconnect_delay_set(1, 1)
        client.on_connect = lambda c, _u, _f, reason, _p: c.subscribe(topic, qos=1) if not reason.is_failure else None
        client.on_subscribe = lambda *_args: self.subscribed.set()
        client.on_message = self._received
        client.connect("127.0.0.1", port, keepalive=5)
        client.loop_start()
        self.client = client
        assert self.subscribed.wait(10), "no SUBACK"

    def _received(self, _client: paho.Client, _data: object, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(message)

    def received(self, suffix: str | None = None, exclude: str | None = None) -> list[paho.MQTTMessage]:
        with self.lock:
            return [m for m in self.messages if (suffix is None or m.topic.endswith(suffix))
                    and (exclude is None or not m.topic.endswith(exclude))]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def written_events(jsonl: Path) -> list[str]:
    """The event lines the JSONL sink of the same run wrote (the truth to compare with)."""
    path = jsonl.with_name(jsonl.name.removesuffix(".jsonl") + ".events.jsonl")
    return path.read_text().splitlines() if path.exists() else []


def run_with_outage(tmp_path: Path, sink: str, received: Callable[[], set[str]],
                    down: Callable[[], None], up: Callable[[], None]) -> tuple[RunSummary, list[str]]:
    """Run a 120-frame clip with events to `sink` and a JSONL sink; the receiver is taken
    `down` at engine call 30 (once `received()` holds every event so far) and brought
    `up` a second after call 80. Returns the summary and the JSONL event lines."""
    video = write_video(tmp_path / "long.mp4", 120, 160, 96)
    jsonl = tmp_path / "out.jsonl"
    config = load_config(None, {"sources": [counting_source(video)], "sinks": [sink, f"jsonl:{jsonl}"]})
    engine = GatedEngine((30, 80))
    result: list[RunSummary] = []
    runner = threading.Thread(target=lambda: result.append(run(config, engine)))
    runner.start()
    try:
        assert engine.reached[30].wait(60)

        def caught_up() -> bool:
            ids = {json.loads(line)["event_id"] for line in written_events(jsonl)}
            return bool(ids) and ids == received()

        wait_for(caught_up, "the receiver to hold every event so far", 30)
        time.sleep(0.3)  # still so a moment later: nothing is on its way
        wait_for(caught_up, "the receiver to hold every event so far", 30)
        down()
        engine.gates[30].set()
        assert engine.reached[80].wait(60)
        time.sleep(1.0)  # an outage while events keep coming
        up()
    finally:
        engine.open_all()
        runner.join(120)
    (summary,) = result
    return summary, written_events(jsonl)
