"""The one supervisor of a command's threads: signals, the grace period, exit codes.

Used by `detstream run` (pipeline/run/runner.py), `detstream batch` (pipeline/batch/) and
`detstream consume` (pipeline/redis/cli.py). Rules:

- Signals (pipeline/core/signals.py): the first SIGINT/SIGTERM sets `stop` (sources stop reading, what is in flight
  drains); the second sets `abort` (every stage stops at once). Python lets only the main
  thread install handlers: from any other thread (a Ray worker, a test's background run)
  `Signals.installed()` does nothing and the run is stopped through its events.
- Joining stages: once `stop_reading` is set, every stage's `on_stop()` is called once, and
  stages that are `detached_on_stop` (a live reader blocked in a network read) are no
  longer waited for. If the rest has not finished `grace_s` later, `abort` is set; stages
  still running `JOIN_AFTER_ABORT_S` after the abort are reported as stuck and left
  behind (they are daemon threads: they cannot keep the process alive).
- Exit codes, in `exit_code` only: 1 if anything failed; else 128 + the signal's number
  if a signal stopped the command (SIGINT 130, SIGTERM 143, the shell's convention); else
  1 if work was left undone (aborted, files interrupted); else 0.

Nothing heavy is imported here (no torch): `detstream consume` uses this module.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Callable, Sequence

from pipeline.core.context import RunContext
from stages.base import Stage

log = logging.getLogger("detstream")
JOIN_AFTER_ABORT_S = 0.5  # sinks need a moment to close files once aborted
POLL_S = 0.05  # short sleeps keep the main thread responsive to signals


def join(
    stages: Sequence[Stage], ctx: RunContext, grace_s: float, tick: Callable[[], None] | None = None
) -> list[str]:
    """Wait for started `stages` to end, enforcing the grace period once a stop is asked for.

    `tick` is called every poll (~20 times a second) and once at the end, from this thread
    (a progress display). Returns the names of the stages left running: stuck after the
    abort, or detached live readers still blocked in a network call.
    """
    stop_deadline: float | None = None
    abort_deadline: float | None = None
    try:
        while any(stage.is_alive() for stage in stages if not (stop_deadline and stage.detached_on_stop)):
            now = time.monotonic()
            if ctx.stop_reading.is_set() and stop_deadline is None:
                stop_deadline = now + grace_s
                for stage in stages:
                    stage.on_stop()
            if stop_deadline is not None and now > stop_deadline and not ctx.abort.is_set():
                log.warning("frames in flight did not drain within %.1f s: aborting", grace_s)
                ctx.abort.set()
            if ctx.abort.is_set():
                abort_deadline = abort_deadline or now + JOIN_AFTER_ABORT_S
                if now > abort_deadline:
                    stuck = [s.name for s in stages if s.is_alive()]
                    log.error("stages still running after abort, leaving them: %s", ", ".join(stuck))
                    return stuck
            if tick:
                tick()
            time.sleep(POLL_S)
    finally:
        if tick:
            tick()
    left = [s.name for s in stages if s.is_alive()]
    if left:  # live readers still blocked in an open or a read (they time out on their own)
        log.info("leaving live readers blocked in a network call: %s", ", ".join(left))
    return left


def exit_code(failed: bool, signal_name: str | None, incomplete: bool = False) -> int:
    """The process exit code of a command: failure, else the stopping signal, else done or not."""
    if failed:
        return 1
    if signal_name:  # stopped on request, drained or (past the grace period) aborted
        return 128 + signal.Signals[signal_name].value
    return 1 if incomplete else 0
