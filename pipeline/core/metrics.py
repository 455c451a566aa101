"""Per-stage and per-source metrics of one run: recording, and a plain-dict snapshot.

What each stage records (cheap and bounded, so always on):
- frames in (taken from its input queue; for a decoder, frames out of the decoder) and
  out (handed on), units of work ("batches": an engine batch, or one frame), errors, and
  drops by cause where the stage drops frames;
- the service time of each unit of work and its per-frame share, in fixed-size
  histograms (pipeline/histogram.py), and the busy time they add up to. Busy fraction =
  busy time / run time; the busiest stage is the bottleneck. Time blocked on a full
  output queue or waiting for input is not busy time;
- queue wait: from the moment the previous stage handed a frame on (the frame's latest
  stamp) to the moment this stage took it. It includes time the previous stage spent
  blocked on a full queue with the frame in hand: the frame was waiting either way;
- sinks: end-to-end latency per source, from capture (the frame's "start" stamp: the
  packet read for a file, its arrival for a live source) to written by the sink.

Queue depths are read when a snapshot is taken. Per-source health (state, reconnects,
drops by cause, decode errors) stays in pipeline/health.py; the snapshot includes it.

Threading: a StageMetrics is written only by its own stage's thread, so recording takes
no lock; `Metrics.snapshot()` may be called from any thread at any time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pipeline.core.histogram import LogHistogram

if TYPE_CHECKING:
    from pipeline.core.health import SourceHealth
    from pipeline.core.trace import Trace
    from pipeline.core.types import Frame


class StageMetrics:
    """The figures of one stage, recorded by the stage's thread.

    Frames out and units of work are always counted: they are the run summary's frame
    counts (the one count of frames per stage). With `enabled` False everything else
    returns at once (to measure what metrics cost).
    """

    def __init__(self, name: str, enabled: bool = True, trace: Trace | None = None) -> None:
        self.name = name
        self.enabled = enabled
        self.trace = trace
        self.order = 0  # position in the pipeline, set when registered
        self.thread_id = 0
        self.frames_in = 0
        self.frames_out = 0
        self.batches = 0
        self.busy_s = 0.0
        self.errors = 0
        self.drops: Counter[str] = Counter()
        self.service = LogHistogram()  # per frame: a unit's time divided among its frames
        self.batch_service = LogHistogram()  # per unit of work
        self.queue_wait = LogHistogram()
        self.latency: dict[str, LogHistogram] = {}  # sinks: capture -> written, per source
        # the track stage: events by (source, type, zone or line, direction, class name)
        self.events: Counter[tuple[str, str, str, str, str]] = Counter()

    def thread_started(self) -> None:
        """Called first thing in the stage's thread: names its track in the trace."""
        self.thread_id = threading.get_native_id()
        if self.trace is not None:
            self.trace.name_thread(self.thread_id, self.name, self.order)

    def count_in(self, n: int = 1) -> None:
        """Frames that entered without a queue (a decoder's decoded frames)."""
        if self.enabled:
            self.frames_in += n

    def arrived(self, frames: Sequence[Frame]) -> float:
        """`frames` were taken from the input queue; records their wait. Returns now."""
        now = time.monotonic()
        if self.enabled:
            self.frames_in += len(frames)
            for frame in frames:
                if frame.stamps:
                    self.queue_wait.observe(now - max(frame.stamps.values()))
        return now

    def served(self, frames: Sequence[Frame], started: float) -> None:
        """One unit of work on `frames`, begun at `started` (monotonic), is done."""
        if not frames:
            return
        n = len(frames)
        self.frames_out += n
        self.batches += 1
        if not self.enabled:
            return
        took = time.monotonic() - started
        self.busy_s += took
        self.batch_service.observe(took)
        self.service.observe(took / n, n)
        if self.trace is not None:
            self.trace.add(self.thread_id, self.name, frames, started, took)

    def delivered(self, frame: Frame) -> None:
        """A sink wrote `frame`: records its end-to-end latency."""
        if self.enabled and "start" in frame.stamps:
            histogram = self.latency.get(frame.source)
            if histogram is None:
                histogram = self.latency[frame.source] = LogHistogram()
            histogram.observe(time.monotonic() - frame.stamps["start"])

    def event(self, source: str, kind: str, place: str, direction: str, label: str) -> None:
        """One event (always counted, like frames: they are the run's event counts)."""
        self.events[(source, kind, place, direction, label)] += 1

    def drop(self, cause: str, n: int = 1) -> None:
        if self.enabled:
            self.drops[cause] += n

    def error(self, n: int = 1) -> None:
        if self.enabled:
            self.errors += n


@dataclass(frozen=True)
class QueueGauge:
    name: str
    consumer: str  # the stage that reads it
    depth: Callable[[], int]
    capacity: int


class Metrics:
    """All metrics of one run: the stages' figures, queue gauges and source health."""

    def __init__(self, health: dict[str, SourceHealth], enabled: bool = True, trace: Trace | None = None) -> None:
        self.enabled = enabled
        self.trace = trace
        self.health = health  # the run's SourceHealth objects, by source name
        self.started: float | None = None  # when the first stage started
        self.stopped: float | None = None
        self._stages: list[StageMetrics] = []
        self._queues: list[QueueGauge] = []
        self._lock = threading.Lock()  # guards the two lists (stages register from the main thread)

    def stage(self, name: str) -> StageMetrics:
        """New figures for a stage; they show up in snapshots once `register`ed."""
        return StageMetrics(name, self.enabled, self.trace)

    def register(self, stage: StageMetrics) -> None:
        """Called when the stage's thread starts, in pipeline order."""
        with self._lock:
            self.started = self.started or time.monotonic()
            stage.order = len(self._stages)
            self._stages.append(stage)

    def add_queue(self, name: str, consumer: str, depth: Callable[[], int], capacity: int) -> None:
        with self._lock:
            self._queues.append(QueueGauge(name, consumer, depth, capacity))

    def remove(self, stage: str, queue: str) -> None:
        """Forget a stage's figures and a queue's gauge (a source removed while the run goes on)."""
        with self._lock:
            self._stages = [s for s in self._stages if s.name != stage]
            self._queues = [q for q in self._queues if q.name != queue]

    def stop(self) -> None:
        """The run is over: rates are computed over its duration from now on."""
        self.stopped = self.stopped or time.monotonic()

    @property
    def elapsed_s(self) -> float:
        if self.started is None:
            return 0.0
        return (self.stopped or time.monotonic()) - self.started

    def stages(self) -> list[StageMetrics]:
        with self._lock:
            return list(self._stages)

    def queues(self) -> list[QueueGauge]:
        with self._lock:
            return list(self._queues)

    def frames_out(self) -> dict[str, int]:
        """Frames each running stage has handed on, in pipeline order (always counted)."""
        return {stage.name: stage.frames_out for stage in self.stages()}

    def snapshot(self) -> dict[str, Any]:
        """Every figure as plain values (times in ms, fractions 0..1). Keys:

        - `elapsed_s`, `enabled`, `bottleneck` (the stage with the highest busy fraction);
        - `stages[name]`: frames_in, frames_out, batches, fps, busy, busy_s, errors,
          drops {cause: n}, queue_depth (input queue, now; None without one), and
          service_ms / batch_service_ms / queue_wait_ms, each {count, mean, p50, p95, p99, max};
        - `queues[name]`: consumer, depth, capacity;
        - `sources[name]`: health (pipeline/health.py's snapshot) and latency_ms {sink: {...}};
        - `events`: [{source, type, place, direction, label, count}] (place: zone or line, or "").
        """
        elapsed = self.elapsed_s
        queues = self.queues()
        depths = {q.name: q.depth() for q in queues}
        stages = {s.name: self._stage_view(s, elapsed, queues, depths) for s in self.stages()}
        busiest = max(stages.items(), key=lambda item: item[1]["busy"], default=None)
        return {
            "elapsed_s": round(elapsed, 3),
            "enabled": self.enabled,
            "bottleneck": busiest[0] if busiest and busiest[1]["busy"] > 0 else None,
            "stages": stages,
            "queues": {q.name: {"consumer": q.consumer, "depth": depths[q.name], "capacity": q.capacity} for q in queues},
            "sources": self._sources(),
            "events": self.event_counts(),
        }

    def event_counts(self) -> list[dict[str, Any]]:
        keys = ("source", "type", "place", "direction", "label")
        return [
            {**dict(zip(keys, key)), "count": n}
            for stage in self.stages() for key, n in sorted(dict(stage.events).items())
        ]

    @staticmethod
    def _stage_view(
        stage: StageMetrics, elapsed: float, queues: list[QueueGauge], depths: dict[str, int]
    ) -> dict[str, Any]:
        inputs = [depths[q.name] for q in queues if q.consumer == stage.name]
        return {
            "frames_in": stage.frames_in,
            "frames_out": stage.frames_out,
            "batches": stage.batches,
            "fps": round(stage.frames_out / elapsed, 3) if elapsed > 0 else 0.0,
            "busy": round(min(1.0, stage.busy_s / elapsed), 4) if elapsed > 0 else 0.0,
            "busy_s": round(stage.busy_s, 4),
            "service_ms": stage.service.snapshot().summary_ms(),
            "batch_service_ms": stage.batch_service.snapshot().summary_ms(),
            "queue_wait_ms": stage.queue_wait.snapshot().summary_ms(),
            "queue_depth": sum(inputs) if inputs else None,
            "drops": dict(stage.drops),
            "errors": stage.errors,
        }

    def _sources(self) -> dict[str, Any]:
        sinks = [(s.name, dict(s.latency)) for s in self.stages() if s.latency]
        return {
            name: {
                "health": health.snapshot(),
                "latency_ms": {
                    sink: latency[name].snapshot().summary_ms() for sink, latency in sinks if name in latency
                },
            }
            for name, health in list(self.health.items())
        }
