"""Shared run state: the two shutdown flags, failures, per-source health and metrics."""

from __future__ import annotations

import logging
import threading

from pipeline.core.errors import DetstreamError
from pipeline.core.health import SourceHealth
from pipeline.core.metrics import Metrics
from pipeline.core.trace import Trace
from pipeline.core.secrets import redact

log = logging.getLogger("detstream")


class RunContext:
    """What every stage of one run shares.

    `stop_reading` asks sources to stop so downstream stages drain what is in flight
    (Ctrl-C, SIGTERM, max frames). `abort` stops every stage at once (a stage failed,
    or draining took longer than the shutdown grace period).

    `metrics` holds every stage's figures, frame counts included; `metrics.snapshot()`
    reads them at any time (pipeline/core/metrics.py). `trace` records per-frame spans (`detstream profile`).
    """

    def __init__(self, metrics_enabled: bool = True, trace: Trace | None = None) -> None:
        self.stop_reading = threading.Event()
        self.abort = threading.Event()
        self.source_errors: dict[str, str] = {}
        self.stage_errors: dict[str, str] = {}
        self.health: dict[str, SourceHealth] = {}  # per source, filled by the runner
        self.metrics = Metrics(self.health, metrics_enabled, trace)
        self._lock = threading.Lock()

    def source_failed(self, source: str, reason: str) -> None:
        """One source is unusable; the others carry on."""
        reason = redact(reason)  # foreign error text may quote a URL with credentials
        with self._lock:
            self.source_errors[source] = reason
        if source in self.health:
            self.health[source].failed(reason)  # logs the transition, with the counters
        else:
            log.error("source %r: %s", source, reason)

    def stage_failed(self, stage: str, exc: BaseException) -> None:
        """A stage raised: report it once and stop the whole run."""
        reason = str(exc) if isinstance(exc, DetstreamError) else f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.stage_errors[stage] = reason
        if isinstance(exc, DetstreamError):
            log.error("%s failed: %s", stage, reason)
        else:  # a bug: keep the traceback, it is what a bug report needs
            log.error("%s failed: %s", stage, reason, exc_info=exc)
        self.abort.set()

    @property
    def failed(self) -> bool:
        return bool(self.source_errors or self.stage_errors)
