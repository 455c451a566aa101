"""A run's metrics sampled over time, for the profile chart and report.

Every `interval_s` the sampler reads the cumulative figures and stores what happened
since the previous sample: frames/s and busy fraction per stage, per-frame service time
(p50) per stage, end-to-end latency (p50) per source and sink, and queue depths. The
series is bounded: past `max_points`, every other point is dropped and the interval
doubles, so an hour-long profile keeps the same memory as a minute-long one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pipeline.core.histogram import HistogramSnapshot
from pipeline.core.metrics import Metrics

MAX_POINTS = 1200


@dataclass
class _Reading:
    at: float
    frames: dict[str, int]
    busy_s: dict[str, float]
    service: dict[str, HistogramSnapshot]
    latency: dict[str, HistogramSnapshot]  # "source -> sink"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


class Timeline(threading.Thread):
    def __init__(self, metrics: Metrics, interval_s: float = 0.5, max_points: int = MAX_POINTS) -> None:
        super().__init__(name="timeline", daemon=True)
        self.metrics = metrics
        self.interval_s = interval_s
        self.max_points = max_points
        self.points: list[dict[str, Any]] = []
        self._halt = threading.Event()
        self._previous = self._read()

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            self.sample()

    def close(self) -> None:
        """Stop sampling, after one last sample of the span since the previous one."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout=2.0)
        self.sample()

    def sample(self) -> None:
        now = self._read()
        before = self._previous
        started = self.metrics.started
        self._previous = now
        if started is None:
            return  # the model is still loading: nothing to show yet
        span = now.at - max(before.at, started)  # nothing happened before the first stage started
        if span <= 0:
            return
        point = {
            "t": round(now.at - started, 3),  # seconds since the first stage started
            "fps": {s: round((n - before.frames.get(s, 0)) / span, 3) for s, n in now.frames.items()},
            "busy": {s: round(min(1.0, (b - before.busy_s.get(s, 0.0)) / span), 4) for s, b in now.busy_s.items()},
            "service_p50_ms": {s: _ms(self._since(h, before.service.get(s)).percentile(0.5)) for s, h in now.service.items()},
            "latency_p50_ms": {k: _ms(self._since(h, before.latency.get(k)).percentile(0.5)) for k, h in now.latency.items()},
            "queue_depth": {q.name: q.depth() for q in self.metrics.queues()},
        }
        self.points.append(point)
        if len(self.points) > self.max_points:
            self.points = self.points[::2]
            self.interval_s *= 2

    @staticmethod
    def _since(now: HistogramSnapshot, before: HistogramSnapshot | None) -> HistogramSnapshot:
        return now if before is None else now.since(before)

    def _read(self) -> _Reading:
        stages = self.metrics.stages()
        return _Reading(
            at=time.monotonic(),
            frames={s.name: s.frames_out for s in stages},
            busy_s={s.name: s.busy_s for s in stages},
            service={s.name: s.service.snapshot() for s in stages},
            latency={
                f"{source} -> {s.name}": h.snapshot() for s in stages for source, h in dict(s.latency).items()
            },
        )
