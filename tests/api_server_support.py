"""Test helpers of the control API server: a fake SourceControl and a fake live page, and
the server running over them on a free port (fixtures in tests/api/conftest.py).

The fake control validates like the real one (the config models, ConfigError naming the
field), masks credentials in what it returns, and keeps the settings it was given.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pipeline.api.server import Serving, serving
from pipeline.core.config import ApiConfig, SourceConfig, parse_settings
from pipeline.core.errors import SourceExists, UnknownSource
from pipeline.core.health import SourceHealth
from pipeline.core.metrics import Metrics
from pipeline.core.secrets import mask_url
from pipeline.run.control import UPDATABLE

PASSWORD = "s3cret"
TOKEN = "tok-0123456789abcdef-XYZ"
CAMERA = f"rtsp://user:{PASSWORD}@10.0.0.7:554/stream1"


class FakeControl:
    """SourceControl over a dict of settings: validation, masking and errors as specified."""

    def __init__(self, sources: list[dict[str, Any]] | None = None) -> None:
        self.settings: dict[str, dict[str, Any]] = {}
        self.is_ready = True
        self.is_live = True
        for entry in sources or []:
            self.add(entry)

    def live(self) -> bool:
        return self.is_live

    def ready(self) -> dict[str, Any]:
        return {"ready": self.is_ready, "model_loaded": True, "sources": {n: "streaming" for n in self.settings}}

    def _view(self, name: str) -> dict[str, Any]:
        settings = self.settings[name]
        return {
            "name": name,
            "settings": {**settings, "uri": mask_url(settings["uri"])},
            "state": "streaming" if settings.get("enabled", True) else "paused",
            "fps": 12.5,
            "counters": {"received": 40, "processed": 38, "dropped": {"queue_full": 2}, "last_frame_ts": time.time() - 0.25},
        }

    def sources(self) -> list[dict[str, Any]]:
        return [self._view(name) for name in self.settings]

    def source(self, name: str) -> dict[str, Any]:
        if name not in self.settings:
            raise UnknownSource(f"no source {name!r}")
        return self._view(name)

    def add(self, settings: dict[str, Any]) -> dict[str, Any]:
        config = parse_settings(SourceConfig, settings, "source")
        name = config.name or config.uri.rsplit("/", 1)[-1]
        if name in self.settings:
            raise SourceExists(f"a source named {name!r} is running already")
        self.settings[name] = dict(settings)
        return self._view(name)

    def remove(self, name: str) -> None:
        self.source(name)
        del self.settings[name]

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        self.source(name)
        assert set(changes) <= set(UPDATABLE), changes
        merged = {**self.settings[name], **changes}
        parse_settings(SourceConfig, merged, name)
        self.settings[name] = merged
        return self._view(name)

    def config(self) -> dict[str, Any]:
        return {"sources": [self._view(name)["settings"] for name in self.settings], "api": {"token": "***"}}

    def watch(self, name: str) -> Any:
        raise NotImplementedError  # the fake page never watches


@dataclass
class FakePage:
    """index_html and jpeg_frames: numbered fake JPEGs every 1/fps while not paused."""

    paused: bool = False
    running: int = 0  # jpeg_frames iterators not yet finished
    stops: list[threading.Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def index_html(self) -> str:
        return "<!doctype html><title>detstream</title><h1>detstream</h1>"

    def jpeg_frames(self, control: Any, name: str, fps: float, stop: threading.Event) -> Iterator[bytes]:
        control.source(name)
        with self.lock:
            self.running += 1
            self.stops.append(stop)
        try:
            n = 0
            while not stop.wait(1 / fps):
                if not self.paused:
                    n += 1
                    yield b"\xff\xd8" + f"{name} frame {n}".encode() + b"\xff\xd9"
        finally:
            with self.lock:
                self.running -= 1


@dataclass
class Api:
    """A running API server: its serving hook, control, page and address."""

    serving: Serving
    control: FakeControl
    page: FakePage
    port: int
    token: str | None

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, token: str | None = None,
        raw: bytes | None = None, host: str = "127.0.0.1",
    ) -> tuple[int, dict[str, str], bytes]:
        return request(self.port, method, path, body, headers, token, raw, host)


def request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, token: str | None = None,
    raw: bytes | None = None, host: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one request over a new connection."""
    sent = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def sources_entries() -> list[dict[str, Any]]:
    return [{"uri": CAMERA, "name": "cam1"}, {"uri": "/videos/lobby.mp4", "name": "lobby"}]


@contextmanager
def running_api(
    config: ApiConfig, sources: list[dict[str, Any]] | None = None, environ: dict[str, str] | None = None
) -> Iterator[Api]:
    entries = sources_entries() if sources is None else sources
    control = FakeControl(entries)
    page = FakePage()
    hook = serving(config, [SourceConfig.model_validate(e) for e in entries], page, environ or {})
    health = {name: SourceHealth(name, True) for name in control.settings}
    with hook(control, Metrics(health)) as server:
        yield Api(hook, control, page, server.port, hook.token)
