"""Handlers for `detstream consume --handler crash_handlers:NAME` in tests."""

from __future__ import annotations

import os
import signal
from typing import Any


def die(message: dict[str, Any]) -> None:
    """Crash the whole consumer process mid-batch, before anything is acknowledged."""
    os.kill(os.getpid(), signal.SIGKILL)
