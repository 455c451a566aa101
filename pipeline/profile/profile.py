"""`detstream profile`: a run with tracing and sampling on, then a report folder.

    DIR/report.json   every figure of pipeline/metrics.py, frame counts, the timeline
    DIR/timeline.png  throughput, latency and queue depths over time
    DIR/trace.json    Chrome trace events: one span per frame per stage, a track per thread
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.base import Engine
from pipeline.core.config import RunConfig
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from pipeline.profile.chart import write_chart
from pipeline.profile.report import build_report
from pipeline.run.runner import RunSummary, run
from pipeline.profile.timeline import Timeline
from pipeline.core.trace import DEFAULT_LIMIT, Trace

SAMPLE_EVERY_S = 0.5


@dataclass
class Profile:
    summary: RunSummary
    report: dict[str, Any]
    files: dict[str, Path]


def profile(
    config: RunConfig,
    out: Path,
    trace_limit: int = DEFAULT_LIMIT,
    engine: Engine | None = None,
    sample_every_s: float = SAMPLE_EVERY_S,
) -> Profile:
    """Run `config` with metrics, tracing and sampling on; write the report folder `out`."""
    try:  # a folder we cannot write must fail before the run, not after it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the folder: {exc.strerror or exc}") from exc
    trace = Trace(trace_limit)
    ctx = RunContext(metrics_enabled=True, trace=trace)
    timeline = Timeline(ctx.metrics, sample_every_s)
    timeline.start()
    try:
        summary = run(config, engine, ctx)
    finally:
        timeline.close()
    report = build_report(summary, timeline, trace)
    files = {"report": out / "report.json", "chart": out / "timeline.png", "trace": out / "trace.json"}
    files["report"].write_text(json.dumps(report, indent=1) + "\n")
    with files["trace"].open("w") as file:
        json.dump(trace.to_chrome(), file, separators=(",", ":"))
    title = f"detstream profile: {', '.join(summary.sources)} ({report['elapsed_s']:.1f} s)"
    write_chart(timeline.points, files["chart"], title)
    return Profile(summary, report, files)
