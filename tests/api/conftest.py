"""Fixtures of the API server tests: the server over a fake control (tests/api_server_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_server_support import TOKEN, Api, running_api

from pipeline.core.config import ApiConfig


@pytest.fixture
def api() -> Iterator[Api]:
    """The API on loopback, no token."""
    with running_api(ApiConfig(port=0)) as running:
        yield running


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Api]:
    """The API on every address with a token, saving its state under tmp_path."""
    with running_api(ApiConfig(port=0, address="0.0.0.0", token=TOKEN, state_file=tmp_path / "state.yaml")) as running:
        yield running
