"""Live views of a running pipeline's metrics: Prometheus over HTTP and a periodic log line.

The Prometheus collector reads `Metrics` at scrape time and lives in its own
CollectorRegistry (never the global one), so several runs in one process - tests, a
notebook - each serve their own figures without clashing. Names and units follow
Prometheus conventions (seconds, `_total` counters); label values are source names and
stage names, passed through `redact` (pipeline.core.secrets) so a URL with credentials can never leak into them.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.core.config import MetricsConfig
from pipeline.core.errors import ConfigError
from pipeline.core.health import State
from pipeline.core.histogram import HistogramSnapshot
from pipeline.core.metrics import Metrics
from pipeline.core.secrets import redact

log = logging.getLogger("detstream")
# half-decade bucket bounds, 100 us to 100 s: exact edges of the LogHistogram buckets
BOUNDS = tuple(10.0 ** (e / 2) for e in range(-8, 5))


def _buckets(snapshot: HistogramSnapshot) -> list[tuple[str, float]]:
    cumulative = snapshot.cumulative(BOUNDS)
    return [*((f"{b:.6g}", float(n)) for b, n in zip(BOUNDS, cumulative)), ("+Inf", float(snapshot.count))]


class MetricsCollector(Collector):
    """Prometheus families for every stage, queue and source of one run."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        yield from self._stage_families()
        yield from self._queue_families()
        yield from self._source_families()
        yield self._event_family()

    def _event_family(self) -> Metric:
        events = CounterMetricFamily(
            "detstream_events", "Track, zone and line events, by source, type, zone or line, direction and class",
            labels=["source", "type", "place", "direction", "label"],
        )
        for item in self.metrics.event_counts():
            events.add_metric([redact(item["source"]), item["type"], item["place"], item["direction"], item["label"]], item["count"])
        return events

    def _stage_families(self) -> Iterator[Metric]:
        label = ["stage"]
        frames_in = CounterMetricFamily("detstream_stage_frames_in", "Frames a stage took in", labels=label)
        frames_out = CounterMetricFamily("detstream_stage_frames", "Frames a stage handed on (or a sink wrote)", labels=label)
        batches = CounterMetricFamily("detstream_stage_batches", "Units of work (engine batches; one frame elsewhere)", labels=label)
        busy = CounterMetricFamily("detstream_stage_busy_seconds", "Time a stage spent working; rate() is its busy fraction", labels=label)
        errors = CounterMetricFamily("detstream_stage_errors", "Errors in a stage (corrupt packets, failed sources, exceptions)", labels=label)
        drops = CounterMetricFamily("detstream_drops", "Frames a stage dropped, by cause", labels=["stage", "cause"])
        service = HistogramMetricFamily("detstream_stage_service_seconds", "Service time per frame (a batch's time shared by its frames)", labels=label)
        batch_service = HistogramMetricFamily("detstream_stage_batch_service_seconds", "Service time per unit of work", labels=label)
        wait = HistogramMetricFamily("detstream_stage_queue_wait_seconds", "Time a frame waited in the stage's input queue", labels=label)
        for stage in self.metrics.stages():
            name = [redact(stage.name)]
            frames_in.add_metric(name, stage.frames_in)
            frames_out.add_metric(name, stage.frames_out)
            batches.add_metric(name, stage.batches)
            busy.add_metric(name, stage.busy_s)
            errors.add_metric(name, stage.errors)
            for cause, n in dict(stage.drops).items():
                drops.add_metric([name[0], cause], n)
            for family, histogram in ((service, stage.service), (batch_service, stage.batch_service), (wait, stage.queue_wait)):
                snapshot = histogram.snapshot()
                family.add_metric(name, _buckets(snapshot), snapshot.sum)
        yield from (frames_in, frames_out, batches, busy, errors, drops, service, batch_service, wait)

    def _queue_families(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("detstream_queue_depth", "Items in a queue between stages", labels=["queue", "stage"])
        capacity = GaugeMetricFamily("detstream_queue_capacity", "Capacity of a queue between stages", labels=["queue", "stage"])
        for queue in self.metrics.queues():
            labels = [redact(queue.name), redact(queue.consumer)]
            depth.add_metric(labels, queue.depth())
            capacity.add_metric(labels, queue.capacity)
        yield from (depth, capacity)

    def _source_families(self) -> Iterator[Metric]:
        latency = HistogramMetricFamily(
            "detstream_source_latency_seconds", "End-to-end latency, capture to written by a sink", labels=["source", "sink"]
        )
        for stage in self.metrics.stages():
            for source, histogram in dict(stage.latency).items():
                snapshot = histogram.snapshot()
                latency.add_metric([redact(source), redact(stage.name)], _buckets(snapshot), snapshot.sum)
        yield latency
        state = GaugeMetricFamily("detstream_source_state", "1 for the source's current health state", labels=["source", "state"])
        counters = {
            key: CounterMetricFamily(f"detstream_source_{key}", help_text, labels=["source"])
            for key, help_text in (
                ("frames_received", "Frames of a source that entered the pipeline"),
                ("frames_processed", "Frames of a source the detector ran on"),
                ("reconnects", "Successful reconnections of a live source"),
                ("stalls", "Times a live source stalled"),
                ("decode_errors", "Corrupt packets and frames skipped"),
            )
        }
        dropped = CounterMetricFamily("detstream_source_dropped_frames", "Frames of a source dropped, by cause", labels=["source", "cause"])
        for name, health in list(self.metrics.health.items()):
            h = health.snapshot()
            source = redact(name)
            for value in State:
                state.add_metric([source, value.value], 1.0 if h["state"] == value.value else 0.0)
            counters["frames_received"].add_metric([source], h["received"])
            counters["frames_processed"].add_metric([source], h["processed"])
            for key in ("reconnects", "stalls", "decode_errors"):
                counters[key].add_metric([source], h[key])
            for cause, n in h["dropped"].items():
                dropped.add_metric([source, cause], n)
        yield from (state, *counters.values(), dropped)


class PrometheusServer:
    """Serves one run's metrics at http://ADDRESS:PORT/metrics until closed."""

    def __init__(self, metrics: Metrics, port: int, address: str) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(MetricsCollector(metrics))
        try:
            self._server, self._thread = start_http_server(port, address, registry=registry)
        except OSError as exc:
            raise ConfigError(f"metrics.port {port} on {address}: cannot serve metrics: {exc.strerror or exc}") from exc
        self.port = int(self._server.server_port)
        log.info("Prometheus metrics at http://%s:%d/metrics", address, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=1.0)


class FpsLog(threading.Thread):
    """Every `every_s` seconds, one INFO line with each stage's frames/s over that span."""

    def __init__(self, metrics: Metrics, every_s: float) -> None:
        super().__init__(name="fps-log", daemon=True)
        self.metrics = metrics
        self.every_s = every_s
        self._halt = threading.Event()

    def run(self) -> None:
        previous: dict[str, int] = {}
        while not self._halt.wait(self.every_s):
            now = {s.name: s.frames_out for s in self.metrics.stages()}
            if not now:
                continue
            line = " | ".join(f"{name} {(n - previous.get(name, 0)) / self.every_s:.1f}" for name, n in now.items())
            log.info("fps: %s", line)
            previous = now

    def close(self) -> None:
        self._halt.set()
        self.join(timeout=1.0)


@contextmanager
def live_metrics(config: MetricsConfig, metrics: Metrics) -> Iterator[PrometheusServer | None]:
    """The Prometheus server (when `config.port` is set) and the fps log (when
    `config.log_every_s` is set) for the duration of a run."""
    if not metrics.enabled:
        yield None
        return
    server = PrometheusServer(metrics, config.port, config.address) if config.port is not None else None
    fps_log = FpsLog(metrics, config.log_every_s) if config.log_every_s else None
    if fps_log:
        fps_log.start()
    try:
        yield server
    finally:
        if fps_log:
            fps_log.close()
        if server:
            server.close()
