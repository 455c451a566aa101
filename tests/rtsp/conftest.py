"""Fixtures for live-source tests: a clip to serve and RTSP servers that tests may kill."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from rtsp_support import RtspServer, write_live_clip


@pytest.fixture(scope="session")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of 25 fps blobs (long enough that no test sees the server's end of file)."""
    return write_live_clip(tmp_path_factory.mktemp("live") / "clip.mp4", seconds=60)


@pytest.fixture
def rtsp_server(live_clip: Path) -> Iterator[Callable[..., RtspServer]]:
    """Factory: start an RTSP server (optionally on a given port); all are stopped at the end."""
    servers: list[RtspServer] = []

    def start(port: int | None = None, video: Path | None = None, user: str | None = None, password: str = "") -> RtspServer:
        server = RtspServer(video or live_clip, port, user=user, password=password).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
