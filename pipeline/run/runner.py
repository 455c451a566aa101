"""Build the stage graph for a run, start it, stop it cleanly, and summarise.

    decode[s] --SourceMux--> preprocess --Channel--> detect --Channel--> postprocess
        --Channel--> track --Channel--> sink (each)

A source's end (`SourceEnd`) follows its last frame through the queues and stages, so
its tracks end then, not at the end of the run.

Shutdown: end of input flows down as END sentinels. Ctrl-C / SIGTERM set `stop_reading`:
sources stop and the frames in flight drain through to the sinks. If draining takes
longer than the grace period (or a stage fails, or a second signal comes) `abort` stops
every stage at once; sinks still close their files. Signals, the grace period and the
exit code are the supervisor's (pipeline/run/supervisor.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from engines.base import Engine, ModelInfo, describe_engine
from engines.loading import load_engine, score_floor
from pipeline.core.config import RunConfig
from pipeline.core.metrics import Metrics
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from pipeline.core.secrets import mask_url
from pipeline.run.metrics_server import live_metrics
from pipeline.core.signals import Signals
from pipeline.run.supervisor import exit_code, join
from pipeline.core.queues import Channel, SourceMux
from stages.base import Stage
from stages.clips.recorder import ClipRecorder
from stages.detect import Detect
from engines.outputs import Selection
from stages.postprocess import Postprocess
from stages.preprocess import Preprocess
from stages.proposals import proposal_stage
from stages.sinks.base import Sink
from stages.sinks.registry import make_sink, sink_kind
from stages.track import Track
from pipeline.run.sources import Sources, source_names

log = logging.getLogger("detstream")


def describe_run(engine: Engine, sources: list[str], sinks: list[str]) -> str:
    """The line a run starts with: model, backend, device, threads, input size, sources, sinks (masked)."""
    height, width = engine.info.input_size
    return (
        f"running {engine.info.name} on {describe_engine(engine)}, input {height}x{width} (HxW); "
        f"sources: {', '.join(mask_url(s) for s in sources) or 'none'}; "
        f"sinks: {', '.join(mask_url(s) for s in sinks) or 'none'}"
    )


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
        return exit_code(bool(self.stage_errors or self.source_errors), self.signal, incomplete=self.aborted)


def build_stages(config: RunConfig, engine: Engine, ctx: RunContext, sources: Sources | None = None) -> tuple[list[Stage], Detect]:
    """The stage graph of a run; `sources` (made here if not given) owns the per-source part."""
    sources = sources or Sources(config, ctx)
    info = engine.info
    # class names are checked against the loaded model here, before any file is written or read
    selection = Selection.for_model(config.model, info)
    serving = config.api.port is not None
    # with a control API the mux waits for sources added later, until the run is stopped
    mux = SourceMux([], {}, ctx.abort, keep_open=serving)
    any_live = serving or any(s.is_live for s in config.sources)
    # with live sources every batch waiting for the detector is latency: preprocess takes
    # the newest frames only when the detector asks for its next batch
    batch_capacity = 1 if any_live else config.queue_size
    batches = Channel(batch_capacity, ctx.abort, on_demand=any_live)
    results = Channel(config.queue_size, ctx.abort)
    finished = Channel(config.queue_size, ctx.abort)
    proposing, detect_input = proposal_stage(info, batches, batch_capacity, ctx)
    ctx.metrics.add_queue("batches", proposing[0].name if proposing else "detect", batches.qsize, batch_capacity)
    ctx.metrics.add_queue("results", "postprocess", results.qsize, config.queue_size)
    ctx.metrics.add_queue("detections", "track", finished.qsize, config.queue_size)
    stages: list[Stage] = []  # decoders first; the supervisor's list: decoders of added sources join it
    # every source's class names are checked here, before a sink opens its file
    recorder = ClipRecorder(config.clips) if clips_wanted(config) else None
    sources.attach(info, mux, stages, *engine_floors(config, info), recorder=recorder)
    sinks = [make_sink(uri, ctx, config.queue_size, source_names(config.sources)) for uri in config.sinks]
    for sink in sinks:
        ctx.metrics.add_queue(f"input of {sink.name}", sink.name, sink.input.qsize, config.queue_size)
    detect = Detect(engine, detect_input, results, ctx, sources.max_age_s)
    track = Track(finished, [s.input for s in sinks], info, ctx, sources.tracking.__getitem__, sources.tap, sources.ended,
                  recorder)
    sources.bind(track)
    stages += [
        Preprocess(mux, batches, info, config.batch, ctx),
        *proposing,
        detect,
        Postprocess(results, finished, selection, info, ctx, sources.selections, sources.low_scores.get, sources.rois),
        track,
        *sinks,
    ]
    return stages, detect


def clips_wanted(config: RunConfig) -> bool:
    """The run has clips on (sources added through the API take its settings), or some
    tracked source has (clips follow events)."""
    return config.clips.enabled or any(
        config.source_clips(s).enabled and config.source_tracking(s).enabled for s in config.sources
    )


def engine_floors(config: RunConfig, info: ModelInfo) -> tuple[float, float]:
    """The lowest score the engine was asked to produce candidates for, and the lowest it
    computes masks for: the lowest emitted threshold (engines/loading.py)."""
    emitted = score_floor(info.score_threshold, config.model.score_threshold, config.thresholds())
    return score_floor(info.score_threshold, config.model.score_threshold, config.thresholds(), config.low_floor()), emitted


def run(
    config: RunConfig,
    engine: Engine | None = None,
    ctx: RunContext | None = None,
    serve: Callable[[Sources, Metrics], AbstractContextManager[object]] | None = None,
) -> RunSummary:
    """Run the pipeline to the end of every source (or a signal) and summarise.

    `ctx` lets a caller watch the run (health, counts, `ctx.metrics.snapshot()`) and stop
    it from another thread; without one, metrics follow `config.metrics.enabled`.
    `serve(sources, metrics)`: a context manager entered before the model loads and left
    when the run is over (the control API, pipeline/api/): `sources` is the run's
    SourceControl.
    """
    if not config.sources and config.api.port is None:
        raise ConfigError("no sources: give --source URI or a config file with sources")
    for uri in config.sinks:
        sink_kind(uri)  # a mistyped sink fails now, not after the model has loaded
    ctx = ctx or RunContext(metrics_enabled=config.metrics.enabled)
    sources = Sources(config, ctx)
    with serve(sources, ctx.metrics) if serve is not None else nullcontext():
        return _run(config, engine, ctx, sources)


def _run(config: RunConfig, engine: Engine | None, ctx: RunContext, sources: Sources) -> RunSummary:
    if engine is None:
        model = config.model
        engine = load_engine(
            model.path, model.device, model.score_threshold, model.threads, model.engine,
            other_thresholds=config.thresholds(), weights=model.weights, input_size=model.input_size,
            low_floor=config.low_floor(),
        )
    log.info("%s", describe_run(engine, [s.uri for s in config.sources], config.sinks))
    # built first: a caller watching ctx.health from another thread finds every source in it
    stages, detect = build_stages(config, engine, ctx, sources)
    signals = Signals.of(ctx)
    started = time.monotonic()
    with live_metrics(config.metrics, ctx.metrics), signals.installed():
        for stage in list(stages):
            stage.start()
        sources.started()
        stuck = join(stages, ctx, config.shutdown_timeout_s)
    ctx.metrics.stop()
    for health in ctx.health.values():  # the frames in flight have drained: the counts are the summary's
        health.log_finish()
    return RunSummary(
        counts=ctx.metrics.frames_out(),
        source_errors=dict(ctx.source_errors),
        stage_errors=dict(ctx.stage_errors),
        batch_sizes=dict(sorted(detect.batch_sizes.items())),
        elapsed_s=time.monotonic() - started,
        signal=signals.received,
        aborted=ctx.abort.is_set(),
        sources=list(sources.entries),
        stuck=stuck,
        health={name: h.snapshot() for name, h in ctx.health.items()},
        sink_stats={s.name: s.stats() for s in stages if isinstance(s, Sink) and s.stats()},
        metrics=ctx.metrics.snapshot(),
    )
