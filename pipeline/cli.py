"""`detstream` command line: run, profile, sources, consume, synth, train, eval, eval-track, export, build-engine."""

# Start-up rule: building the parser imports only light modules (argparse, the standard
# library, rich, pipeline.core modules without numpy/torch). Each command imports what
# it runs (torch, PyAV, the stage graph, matplotlib...) inside its function, so
# `detstream --help` and client commands such as `consume` start in a fraction of a
# second instead of the seconds torch takes. tests/pipeline/test_cli_startup.py checks it.
# Every module named below follows the same rule for its `add_parser`.

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engines.build_engine_cli import add_parser as add_build_engine_parser
from engines.export_cli import add_parser as add_export_parser
from engines.models_cli import add_parser as add_models_parser
from engines.proposals.cli import add_parser as add_proposals_parser
from engines.training.eval_cli import add_parser as add_eval_parser
from engines.training.train_cli import add_parser as add_train_parser
from pipeline.api.client_cli import add_parser as add_sources_parser
from pipeline.batch.cli import add_parser as add_batch_parser
from pipeline.redis.cli import add_parser as add_consume_parser
from pipeline.track_eval.cli import add_parser as add_eval_track_parser
from pipeline.core.console import make_console
from pipeline.core.errors import ConfigError, DetstreamError
from pipeline.core.flags import MODEL_FLAGS, add_model_arguments, flag_values
from pipeline.core.trace import DEFAULT_LIMIT as DEFAULT_TRACE_LIMIT
from pipeline.core.secrets import RedactingFilter, redact
from pipeline.core.memory import release_large_blocks
from pipeline.core.threads import sleep_idle_threads
from synth.cli import add_parser as add_synth_parser

if TYPE_CHECKING:
    from pipeline.run.runner import RunSummary

log = logging.getLogger("detstream")


# settings key -> the flag of run and profile that sets it
RUN_FLAGS = {
    "sources": "--source",
    "sinks": "--sink",
    **MODEL_FLAGS,
    "max_frames": "--max-frames",
    "metrics.port": "--metrics-port",
}
# settings key -> flag of `run` only (profile measures a run, it serves no API)
API_FLAGS = {"api.port": "--api-port"}


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags as dotted config keys; those given (not None) replace the file's values."""
    return flag_values(args, RUN_FLAGS)


def print_summary(summary: RunSummary, console: Console) -> None:
    table = Table(title=f"detstream run: {summary.elapsed_s:.1f} s", title_justify="left")
    table.add_column("stage")
    table.add_column("frames", justify="right")
    table.add_column("fps", justify="right")
    for stage, frames in summary.counts.items():
        table.add_row(escape(stage), str(frames), f"{frames / max(summary.elapsed_s, 1e-9):.1f}")
    console.print(table)
    if summary.batch_sizes:
        console.print("batch sizes used: " + ", ".join(f"{k}x{v}" for k, v in summary.batch_sizes.items()))
    for sink, stats in summary.sink_stats.items():
        console.print(f"{escape(sink)}: " + ", ".join(f"{k} {v}" for k, v in stats.items()), highlight=False)
    print_sources(summary, console)
    for stage, reason in summary.stage_errors.items():
        console.print(f"[red]stage {escape(stage)} failed[/red]: {escape(reason)}")
    if summary.signal:
        console.print(f"stopped by {summary.signal}" + (" (aborted)" if summary.aborted else ""))


def print_sources(summary: RunSummary, console: Console) -> None:
    """Per source: status, then its final health state and the counters of the whole run."""
    for source in summary.sources:
        reason = summary.source_errors.get(source)
        h = summary.health.get(source)
        if reason:
            status = f"[red]FAILED[/red]: {escape(reason)}"
        elif h and h["live"] and not h["ever_connected"]:
            attempts = f"{h['failed_attempts']} attempts" + (f": {h['last_error']}" if h["last_error"] else "")
            status = f"[yellow]never connected[/yellow] ({escape(attempts)})"
        else:
            status = "ok"
        console.print(f"source {escape(repr(source))}: {status}", highlight=False)
        if h:
            dropped = ", ".join(f"{cause} {n}" for cause, n in sorted(h["dropped"].items())) or "0"
            console.print(
                f"  {h['state']}: received {h['received']}, processed {h['processed']}, dropped {dropped}, "
                f"reconnects {h['reconnects']}, stalls {h['stalls']}, decode errors {h['decode_errors']}, "
                f"max age at detector {h['max_age_ms']:.0f} ms",
                highlight=False,
            )
        events: dict[str, int] = {}
        for item in summary.metrics.get("events", []):
            if item["source"] == source:
                events[item["type"]] = events.get(item["type"], 0) + item["count"]
        if events:
            console.print("  events: " + ", ".join(f"{kind} {n}" for kind, n in events.items()), highlight=False)


NO_SINKS = (
    "no sinks: every result would be discarded; give --sink jsonl:-, --sink jsonl:PATH, "
    "--sink video:PATH.mp4, --sink redis://HOST:PORT/DB, --sink webhook:https://HOST/PATH or "
    "--sink mqtt://HOST:PORT/PREFIX (or sinks: in the config file)"
)


def _require_sinks(config: Any) -> None:
    """A run that writes its results nowhere is a mistake, not a silent no-op (-v: the settings in effect)."""
    log.debug("settings in effect: %s", redact(config.model_dump_json()))
    if not config.sinks:
        raise ConfigError(NO_SINKS)


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.api.server import serving
    from pipeline.api.state import restore
    from pipeline.core.config import load_config
    from pipeline.core.context import RunContext
    from pipeline.run.progress import file_progress
    from pipeline.run.runner import run  # torch, PyAV and the stages: only when running

    overrides = {**_run_overrides(args), **flag_values(args, API_FLAGS)}
    config = restore(load_config(args.config, overrides, {**RUN_FLAGS, **API_FLAGS}))  # api.state_file
    _require_sinks(config)
    # made now: a missing token off loopback fails before the model loads
    serve = serving(config.api, config.sources) if config.api.port is not None else None
    console = make_console(stderr=True)
    ctx = RunContext(metrics_enabled=config.metrics.enabled)
    with file_progress(config, ctx, console):
        summary = run(config, ctx=ctx, serve=serve)
    print_summary(summary, console)
    return _exit(summary)


def cmd_profile(args: argparse.Namespace) -> int:
    # imported here: matplotlib is only needed by this command
    from pipeline.core.config import load_config
    from pipeline.profile.profile import profile
    from pipeline.profile.report import print_profile

    if args.trace_limit < 1:
        raise ConfigError(f"--trace-limit {args.trace_limit}: must be at least 1")
    config = load_config(args.config, _run_overrides(args), RUN_FLAGS)
    _require_sinks(config)
    result = profile(config, args.out, args.trace_limit)
    print_summary(result.summary, make_console(stderr=True))
    console = make_console()
    print_profile(result.report, console)
    console.print("wrote " + ", ".join(str(path) for path in result.files.values()), highlight=False)
    return _exit(result.summary)


def _exit(summary: RunSummary) -> int:
    if summary.stuck or summary.signal:
        # a thread stuck inside native code can crash interpreter teardown: leave now.
        # After Ctrl-C too: sinks are closed already, and tearing down torch and FFmpeg
        # took 30 s on a busy 2-core box (measured), far past a prompt exit.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(summary.exit_code)
    return summary.exit_code


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of `run`, shared by `profile`."""
    p.add_argument("config", nargs="?", type=Path, help="YAML config (see configs/)")
    p.add_argument("--source", action="append", metavar="URI", help="video file or URL; repeat for several")
    p.add_argument("--sink", action="append", metavar="URI", help="jsonl:PATH, video:PATH.mp4, redis://HOST:PORT/DB, webhook:https://HOST/PATH or mqtt://HOST:PORT/PREFIX; repeat for several")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop each source after N frames")
    add_model_arguments(p)
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on this port (/metrics)")


def add_run_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run the pipeline on sources, write to sinks")
    add_run_arguments(p)
    p.add_argument("--api-port", type=int, metavar="PORT",
                   help="serve the control API, health probes, /metrics and the live page on this port (docs/api.md)")
    p.set_defaults(func=cmd_run)


def add_profile_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "profile", help="run the pipeline and report per-stage figures, a timeline chart and a trace"
    )
    add_run_arguments(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for report.json, timeline.png, trace.json")
    p.add_argument("--trace-limit", type=int, default=DEFAULT_TRACE_LIMIT, metavar="N",
                   help=f"keep at most N spans in the trace (default {DEFAULT_TRACE_LIMIT})")
    p.set_defaults(func=cmd_profile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detstream", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_run_parser(subparsers)
    add_profile_parser(subparsers)
    add_sources_parser(subparsers)
    add_consume_parser(subparsers)
    add_batch_parser(subparsers)
    add_synth_parser(subparsers)
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    add_eval_track_parser(subparsers)
    add_models_parser(subparsers)
    add_export_parser(subparsers)
    add_build_engine_parser(subparsers)
    add_proposals_parser(subparsers)
    for sub in subparsers.choices.values():  # `detstream run -v ...` as well as `detstream -v run ...`
        # SUPPRESS: not given after the command, the value before it stays
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    sleep_idle_threads()  # before any command imports torch (pipeline/core/threads.py)
    release_large_blocks()  # freed batch tensors and frames leave RSS (pipeline/core/memory.py)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="detstream %(levelname)s: %(message)s", stream=sys.stderr)
    if args.verbose:  # detstream's own debug lines; other libraries' would drown them
        log.setLevel(logging.DEBUG)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    try:
        return int(args.func(args))
    except DetstreamError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a run (e.g. while loading the model)
        return 130


if __name__ == "__main__":
    sys.exit(main())
