"""Build the stage graph for a run, start it, stop it cleanly, and summarise.

    decode[s] --SourceMux--> preprocess --Channel--> detect --Channel--> postprocess
                                                                 --Channel--> sink (each)

Shutdown: end of input flows down as END sentinels. Ctrl-C / SIGTERM set `stop_reading`:
sources stop and the frames in flight drain through to the sinks. If draining takes
longer than the grace period (or a stage fails, or a second signal comes) `abort` stops
every stage at once; sinks still close their files.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePosixPath
from contextlib import contextmanager
from types import FrameType
from typing import Iterator
from urllib.parse import urlsplit

from engines.base import Engine
from engines.loading import load_engine
from pipeline.core.config import RunConfig, SourceConfig
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from pipeline.core.health import SourceHealth
from pipeline.core.secrets import mask_url
from pipeline.run.metrics_server import live_metrics
from pipeline.core.queues import Channel, SourceMux
from stages.base import Stage
from stages.decode import Decoder
from stages.detect import Detect
from stages.live import LiveDecoder
from engines.outputs import Selection
from stages.postprocess import Postprocess
from stages.preprocess import Preprocess
from stages.sinks.base import Sink
from stages.sinks.registry import make_sink

log = logging.getLogger("detstream")
JOIN_AFTER_ABORT_S = 0.5  # sinks need a moment to close files once aborted


@dataclass
class RunSummary:
    counts: dict[str, int]
    source_errors: dict[str, str]
    stage_errors: dict[str, str]
    batch_sizes: dict[int, int]
    elapsed_s: float
    signal: str | None = None  # name of the signal that stopped the run
    aborted: bool = False
    sources: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)  # stages still running when we gave up
    health: dict[str, dict] = field(default_factory=dict)  # per source: state and counters
    sink_stats: dict[str, dict[str, int]] = field(default_factory=dict)  # e.g. published, spooled
    metrics: dict = field(default_factory=dict)  # RunContext.metrics.snapshot() at the end

    @property
    def exit_code(self) -> int:
        if self.stage_errors or self.source_errors:
            return 1
        if self.signal:  # stopped on request, drained or (past the grace period) aborted
            return {"SIGINT": 130, "SIGTERM": 143}[self.signal]
        return 1 if self.aborted else 0


def source_names(sources: list[SourceConfig]) -> list[str]:
    """Source ids: the configured name, else the file name (URL host/path, no credentials)."""
    names: list[str] = []
    for source in sources:
        if source.name:
            base = source.name
        else:
            parts = urlsplit(source.uri)
            base = PurePosixPath(parts.path).name or parts.hostname or mask_url(source.uri)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        names.append(name)
    return names


class _Signals:
    """First SIGINT/SIGTERM: stop reading and drain. Second: abort."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.received: str | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            log.warning("%s: stopping, finishing frames in flight (again to abort)", name)
            self.ctx.stop_reading.set()
        else:
            log.warning("%s again: aborting", name)
            self.ctx.abort.set()

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def build_stages(config: RunConfig, engine: Engine, ctx: RunContext) -> tuple[list[Stage], Detect]:
    names = source_names(config.sources)
    sources = dict(zip(names, config.sources))
    for name, source in sources.items():
        ctx.health[name] = SourceHealth(name, source.is_live)
    mux = SourceMux(
        names,
        {name: s.queue_capacity(config.queue_size) for name, s in sources.items()},
        ctx.abort,
        drop_oldest=frozenset(name for name, s in sources.items() if s.drops_oldest),
    )
    any_live = any(s.is_live for s in config.sources)
    # with live sources every batch waiting for the detector is latency: preprocess takes
    # the newest frames only when the detector asks for its next batch
    batch_capacity = 1 if any_live else config.queue_size
    batches = Channel(batch_capacity, ctx.abort, on_demand=any_live)
    results = Channel(config.queue_size, ctx.abort)
    sinks = [make_sink(uri, ctx, config.queue_size, engine.info.name, names) for uri in config.sinks]
    for name, source in sources.items():
        ctx.metrics.add_queue(f"source[{name}]", "preprocess", partial(mux.depth, name), source.queue_capacity(config.queue_size))
    ctx.metrics.add_queue("batches", "detect", batches.qsize, batch_capacity)
    ctx.metrics.add_queue("results", "postprocess", results.qsize, config.queue_size)
    for sink in sinks:
        ctx.metrics.add_queue(f"input of {sink.name}", sink.name, sink.input.qsize, config.queue_size)
    info = engine.info
    selection = Selection(
        score_threshold=config.model.score_threshold if config.model.score_threshold is not None else info.score_threshold,
        nms_iou=config.model.nms_iou,
        top_k=config.model.top_k,
    )
    max_age_s = {name: s.max_age_s for name, s in sources.items() if s.max_age_s is not None}
    detect = Detect(engine, batches, results, ctx, max_age_s)
    stages: list[Stage] = [
        *((LiveDecoder if s.is_live else Decoder)(s, n, mux, ctx, config.max_frames) for n, s in sources.items()),
        Preprocess(mux, batches, info, config.batch, ctx),
        detect,
        Postprocess(results, [s.input for s in sinks], selection, info.class_names, ctx),
        *sinks,
    ]
    return stages, detect


def run(config: RunConfig, engine: Engine | None = None, ctx: RunContext | None = None) -> RunSummary:
    """Run the pipeline to the end of every source (or a signal) and summarise.

    `ctx` lets a caller watch the run (health, counts, `ctx.metrics.snapshot()`) and stop
    it from another thread; without one, metrics follow `config.metrics.enabled`.
    """
    if not config.sources:
        raise ConfigError("no sources: give --source URI or a config file with sources")
    if engine is None:
        model = config.model
        engine = load_engine(model.path, model.device, model.score_threshold, model.threads, model.engine)
    ctx = ctx or RunContext(metrics_enabled=config.metrics.enabled)
    # built first: a caller watching ctx.health from another thread finds every source in it
    stages, detect = build_stages(config, engine, ctx)
    signals = _Signals(ctx)
    started = time.monotonic()
    with live_metrics(config.metrics, ctx.metrics), signals.installed():
        for stage in stages:
            stage.start()
        stuck = _wait(stages, ctx, config.shutdown_timeout_s)
    ctx.metrics.stop()
    return RunSummary(
        counts=dict(ctx.counts),
        source_errors=dict(ctx.source_errors),
        stage_errors=dict(ctx.stage_errors),
        batch_sizes=dict(sorted(detect.batch_sizes.items())),
        elapsed_s=time.monotonic() - started,
        signal=signals.received,
        aborted=ctx.abort.is_set(),
        sources=source_names(config.sources),
        stuck=stuck,
        health={name: h.snapshot() for name, h in ctx.health.items()},
        sink_stats={s.name: s.stats() for s in stages if isinstance(s, Sink) and s.stats()},
        metrics=ctx.metrics.snapshot(),
    )


def _wait(stages: list[Stage], ctx: RunContext, grace_s: float) -> list[str]:
    """Join all stages; enforce the grace period once a stop was asked for.

    Returns the names of stages that did not stop after the abort (stuck in a foreign call).
    """
    stop_deadline: float | None = None
    abort_deadline: float | None = None
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
        # short sleeps keep the main thread responsive to signals
        time.sleep(0.05)
    # live readers still blocked in an open or a read (they time out on their own)
    left = [s.name for s in stages if s.is_alive()]
    if left:
        log.info("leaving live readers blocked in a network call: %s", ", ".join(left))
    return left
