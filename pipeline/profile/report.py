"""`detstream profile` output: the JSON report and the per-stage table.

The report is the metrics snapshot at the end of the run (pipeline/metrics.py) plus what
the profile adds: per-stage frame counts, batch sizes, the sampled timeline and what the
trace holds (and whether it was capped).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.run.runner import RunSummary
from pipeline.profile.timeline import Timeline
from pipeline.core.trace import Trace

SCHEMA = "detstream.profile/v1"


def build_report(summary: RunSummary, timeline: Timeline, trace: Trace) -> dict[str, Any]:
    snapshot = summary.metrics
    return {
        "schema": SCHEMA,
        "elapsed_s": snapshot["elapsed_s"],
        "exit_code": summary.exit_code,
        "bottleneck": snapshot["bottleneck"],
        "frame_counts": {name: stage["frames_out"] for name, stage in snapshot["stages"].items()},
        "batch_sizes": {str(size): n for size, n in summary.batch_sizes.items()},
        "stages": snapshot["stages"],
        "queues": snapshot["queues"],
        "sources": snapshot["sources"],
        "source_errors": summary.source_errors,
        "stage_errors": summary.stage_errors,
        "trace": {
            "file": "trace.json",
            "spans": trace.events,
            "limit": trace.limit,
            "capped": trace.dropped > 0,
            "dropped_spans": trace.dropped,
        },
        "timeline": {"interval_s": timeline.interval_s, "points": timeline.points},
    }


def _ms(summary: dict[str, Any], *keys: str) -> str:
    values = [summary[k] for k in keys]
    if any(v is None for v in values):
        return "-"
    return " / ".join(f"{v:.1f}" for v in values)


def print_profile(report: dict[str, Any], console: Console) -> None:
    """The per-stage table, the per-source latency table and the bottleneck line."""
    bottleneck = report["bottleneck"]
    table = Table(title=f"detstream profile: {report['elapsed_s']:.1f} s", title_justify="left")
    for column, justify in (
        ("stage", "left"), ("in", "right"), ("out", "right"), ("fps", "right"), ("busy", "right"),
        ("service ms/frame\np50 / p95 / p99", "right"), ("ms/batch\np50", "right"),
        ("queue wait ms\np50 / p95", "right"), ("queue\nnow", "right"), ("drops", "right"), ("errors", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, stage in report["stages"].items():
        drops = ", ".join(f"{cause} {n}" for cause, n in sorted(stage["drops"].items())) or "0"
        depth = stage["queue_depth"]
        table.add_row(
            escape(name) + (" *" if name == bottleneck else ""),
            str(stage["frames_in"]),
            str(stage["frames_out"]),
            f"{stage['fps']:.1f}",
            f"{stage['busy']:.0%}",
            _ms(stage["service_ms"], "p50", "p95", "p99"),
            _ms(stage["batch_service_ms"], "p50"),
            _ms(stage["queue_wait_ms"], "p50", "p95"),
            "-" if depth is None else str(depth),
            drops,
            str(stage["errors"]),
            style="bold" if name == bottleneck else None,
        )
    console.print(table)
    sources = Table(title="end-to-end latency per source (capture to written)", title_justify="left")
    for column in ("source", "sink", "frames", "ms p50 / p95 / p99", "state", "reconnects", "dropped"):
        sources.add_column(column, justify="left" if column in ("source", "sink", "state") else "right")
    for name, source in report["sources"].items():
        health = source["health"]
        dropped = ", ".join(f"{cause} {n}" for cause, n in sorted(health["dropped"].items())) or "0"
        for sink, latency in source["latency_ms"].items() or [("-", None)]:
            sources.add_row(
                escape(name), escape(sink), str(latency["count"]) if latency else "0",
                _ms(latency, "p50", "p95", "p99") if latency else "-",
                health["state"], str(health["reconnects"]), dropped,
            )
    console.print(sources)
    if bottleneck:
        busy = report["stages"][bottleneck]["busy"]
        console.print(f"bottleneck: [bold]{escape(bottleneck)}[/bold] (busy {busy:.0%} of the run; marked *)")
    trace = report["trace"]
    if trace["capped"]:
        console.print(f"trace capped at {trace['limit']} spans: {trace['dropped_spans']} later spans not recorded")
