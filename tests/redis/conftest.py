"""Redis fixtures: a fresh real redis-server per test (they start in ~50 ms)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redis_support import RedisServer


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def persistent_redis(tmp_path) -> Iterator[RedisServer]:
    """A server whose acknowledged writes survive SIGKILL (AOF, fsync always)."""
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    yield server
    server.stop()
