"""A stage is one thread that reads from a queue, works, and writes to the next queue."""

from __future__ import annotations

import logging
import threading
import time

from pipeline.core.context import RunContext
from pipeline.core.queues import Aborted

log = logging.getLogger("detstream")


class Stage(threading.Thread):
    """Runs `work()` in its own thread; any exception stops the run cleanly.

    Threads are daemons so that a stage stuck inside a foreign call can never keep the
    process alive past the shutdown deadline.
    """

    # True for stages the run may leave behind once it stops (a live reader blocked in a
    # network read): after `on_stop` nothing downstream waits for them.
    detached_on_stop = False

    def __init__(self, name: str, ctx: RunContext) -> None:
        super().__init__(name=name, daemon=True)
        self.ctx = ctx
        # recorded by this thread only; see pipeline/metrics.py for what each call means
        self.metrics = ctx.metrics.stage(name)

    def start(self) -> None:
        # registered here, from the thread that starts the stages: snapshots list them in
        # pipeline order, and stage objects that never run as threads stay out of them
        self.ctx.metrics.register(self.metrics)
        super().start()

    def run(self) -> None:
        self.metrics.thread_started()
        started = time.monotonic()
        log.debug("stage %s started", self.name)
        ended = "ended"
        try:
            self.work()
        except Aborted:
            ended = "aborted"
        except Exception as exc:  # noqa: BLE001 - converted to a clean stop of the run
            ended = "failed"
            self.metrics.error()
            self.ctx.stage_failed(self.name, exc)
        finally:
            self.finish()
            log.debug("stage %s %s after %.2f s", self.name, ended, time.monotonic() - started)

    def stopping(self) -> bool:
        """True once this stage should stop reading its source (the run's stop, by default)."""
        return self.ctx.stop_reading.is_set()

    def work(self) -> None:
        raise NotImplementedError

    def on_stop(self) -> None:
        """Called from the main thread once, when the run is asked to stop."""

    def finish(self) -> None:
        """Release resources; runs whether the stage ended, failed or was aborted."""
