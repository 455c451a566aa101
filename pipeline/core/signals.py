"""The one handler of SIGINT/SIGTERM: the first asks to stop, the second to abort.

Used by the run supervisor (pipeline/run/supervisor.py: run, batch, consume) and by
training (engines/training/train.py: stop after the step in hand, write a checkpoint).
Nothing heavy is imported here.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

from pipeline.core.context import RunContext

log = logging.getLogger("detstream")
HANDLED = (signal.SIGINT, signal.SIGTERM)


class Signals:
    """First SIGINT/SIGTERM: set `stop`. Second: set `abort`.

    Without an `abort` event (a command with nothing to abort, e.g. `consume`) a second
    signal only says that the command is already stopping. `received` names the first
    signal, for the exit code.
    """

    def __init__(self, stop: threading.Event, abort: threading.Event | None = None) -> None:
        self.stop = stop
        self.abort = abort
        self.received: str | None = None

    @classmethod
    def of(cls, ctx: RunContext) -> Signals:
        """Signals that stop a run: `stop_reading`, then `abort`."""
        return cls(ctx.stop_reading, ctx.abort)

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            log.warning("%s: stopping, finishing the work in hand%s", name, " (again to abort)" if self.abort is not None else "")
            self.stop.set()
        elif self.abort is not None:
            log.warning("%s again: aborting", name)
            self.abort.set()
        else:
            log.warning("%s again: already stopping", name)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT/SIGTERM while inside; the previous handlers come back after."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = {s: signal.signal(s, self) for s in HANDLED}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
