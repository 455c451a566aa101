"""`detstream eval-track VIDEO`: run an annotated video with tracking and score the tracks
(HOTA, IDF1, MOTA, ...; docs/track-eval.md). Building the parser imports nothing heavy."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from pipeline.core.console import make_console
from pipeline.core.flags import MODEL_FLAGS, add_model_arguments, model_overrides
from pipeline.core.arg_types import positive_int

if TYPE_CHECKING:
    from pipeline.track_eval.evaluate import TrackEvalReport

# (field of TrackScore, row title, format) in the order the table shows them
ROWS = (
    ("hota", "HOTA", ".3f"),
    ("deta", "DetA", ".3f"),
    ("assa", "AssA", ".3f"),
    ("idf1", "IDF1", ".3f"),
    ("mota", "MOTA", ".3f"),
    ("precision", "precision", ".3f"),
    ("recall", "recall", ".3f"),
    ("id_switches", "ID switches", "d"),
    ("fp", "false positives", "d"),
    ("fn", "misses", "d"),
    ("gt_objects", "ground-truth boxes", "d"),
    ("gt_tracks", "ground-truth tracks", "d"),
    ("predicted", "predicted boxes", "d"),
    ("predicted_tracks", "predicted tracks", "d"),
    ("dont_care", "don't-care boxes", "d"),
    ("dont_care_matches", "predictions on don't care", "d"),
    ("unscored", "predictions of other classes", "d"),
    ("frames", "frames scored", "d"),
)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text}")
    return value


def _pixels(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected pixels >= 0, got {text}")
    return value


def _finite(value: Any) -> Any:
    """NaN (a ratio of nothing, e.g. precision without predictions) as JSON null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def report_json(report: TrackEvalReport) -> dict[str, Any]:
    return {
        "video": str(report.video),
        "annotations": str(report.annotations),
        "tracker": report.tracker,
        "stride": report.stride,
        "dont_care": asdict(report.rule),
        "classes": list(report.classes),
        "metrics": {key: _finite(value) for key, value in asdict(report.score).items()},
        "lines": [asdict(row) for row in report.lines],
    }


def print_report(report: TrackEvalReport) -> None:
    title = f"eval-track {report.video.name}: {report.tracker}, stride {report.stride}"
    table = Table(title=escape(title), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, name, form in ROWS:
        value = getattr(report.score, key)
        table.add_row(name, "-" if isinstance(value, float) and not math.isfinite(value) else format(value, form))
    console = make_console()
    console.print(table)
    if report.lines:
        crossings = Table(title="line crossings", title_justify="left")
        for column in ("line", "direction", "class"):
            crossings.add_column(column)
        crossings.add_column("ground truth", justify="right")
        crossings.add_column("tracked", justify="right")
        for row in report.lines:
            crossings.add_row(escape(row.line), escape(row.direction), row.label, str(row.truth), str(row.tracked))
        console.print(crossings)
    elif report.line_names:
        console.print(f"no crossings of {', '.join(report.line_names)}, in the ground truth or the run", highlight=False)
    rule = report.rule
    console.print(
        f"classes scored: {', '.join(report.classes)}; don't care: under {rule.min_height:g} px tall "
        f"or over {rule.max_occluded:g} hidden",
        highlight=False,
    )


def cmd_eval_track(args: argparse.Namespace) -> int:
    # imported here: the run needs torch, PyAV and the stage graph; the parser needs none
    from pipeline.core.context import RunContext
    from pipeline.run.progress import file_progress
    from pipeline.track_eval.evaluate import evaluate, tracking_config
    from pipeline.track_eval.referee import DontCare

    config = tracking_config(args.video, args.config, model_overrides(args), MODEL_FLAGS, args.stride, args.tracker)
    annotations = args.annotations or args.video.with_suffix(".json")
    ctx = RunContext(metrics_enabled=config.metrics.enabled)
    with file_progress(config, ctx, make_console(stderr=True)):
        report = evaluate(args.video, annotations, config, DontCare(args.min_height, args.max_occluded), ctx=ctx)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print_report(report)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval-track",
        help="run an annotated video with tracking and score the tracks (HOTA, IDF1, MOTA)",
        description="Runs VIDEO through the pipeline with tracking on and scores the tracks against the ground "
        "truth (COCO with track_id per annotation, as detstream synth video writes): HOTA/DetA/AssA from TrackEval, "
        "IDF1, MOTA, ID switches, FP/FN from py-motmetrics. Only the processed frames are scored. The config "
        "file's sinks are not used; its one source, if any, gives its settings to VIDEO.",
    )
    p.add_argument("video", type=Path, metavar="VIDEO", help="the video file")
    p.add_argument("--annotations", type=Path, metavar="GT.json", help="ground truth (default: VIDEO with .json)")
    p.add_argument("--config", type=Path, metavar="YAML", help="run settings (see configs/)")
    p.add_argument("--stride", type=positive_int, metavar="N", help="process every Nth frame (default: the config's, else 1)")
    p.add_argument("--tracker", choices=("bytetrack", "iou"), help="tracking.method (default: the config's, else bytetrack)")
    p.add_argument("--min-height", type=_pixels, default=10.0, metavar="PX",
                   help="ground truth shorter than this is don't care (default 10)")
    p.add_argument("--max-occluded", type=_fraction, default=0.5, metavar="F",
                   help="ground truth hidden more than this is don't care (default 0.5)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    add_model_arguments(p)
    p.set_defaults(func=cmd_eval_track)
