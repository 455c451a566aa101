"""`detstream batch INPUT... --out DIR`: a video collection, resumable, locally or on Ray."""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.logging import RichHandler

from pipeline.core.console import make_console
from pipeline.core.flags import MODEL_FLAGS, add_model_arguments, model_overrides

if TYPE_CHECKING:
    from pipeline.batch.config import BatchSettings

log = logging.getLogger("detstream")


def engine_factory(settings: BatchSettings, on_ray: bool) -> functools.partial[Any]:
    """A picklable recipe for the engine, so each Ray worker loads its own."""
    from engines.loading import load_engine  # torch loads only when a run needs it

    model = settings.model
    threads = model.threads
    if on_ray and threads is None:  # stay within the CPUs the worker reserved
        threads = max(1, int(settings.ray.cpus_per_worker))
    return functools.partial(
        load_engine, model.path, model.device, model.score_threshold, threads, model.engine,
        other_thresholds=settings.thresholds(), weights=model.weights, input_size=model.input_size,
        low_floor=settings.low_floor(),
    )


# settings key -> the flag that sets it (named in errors)
BATCH_FLAGS = {
    **MODEL_FLAGS, "decoders": "--decoders", "format": "--format", "video": "--video", "extensions": "--ext",
    "ground_truth": "--ground-truth", "max_frames": "--max-frames", "ray.address": "--ray",
}


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags as dotted settings keys (None: not given, the file's value stays)."""
    return {
        **model_overrides(args),
        "decoders": args.decoders,
        "format": args.format,
        "video": True if args.video else None,
        "extensions": args.ext.split(",") if args.ext else None,
        "ground_truth": args.ground_truth,
        "max_frames": args.max_frames,
        "ray.address": args.ray or None,
    }


def cmd_batch(args: argparse.Namespace) -> int:
    # imported here: the job needs PyAV, the stage graph and torch; the parser needs none
    from pipeline.batch.config import load_batch_settings
    from pipeline.batch.console import RichProgress, print_batch_summary
    from pipeline.batch.job import BatchJob
    from pipeline.batch.manifest import model_checksum

    settings = load_batch_settings(args.config, _overrides(args), BATCH_FLAGS)
    use_ray = args.ray is not None
    checksum = model_checksum(settings.model.path, settings.model.weights)
    job = BatchJob(args.inputs, args.out, settings, engine_factory(settings, use_ray), checksum, args.force)
    console = make_console(stderr=True)
    # log lines go above the progress bars instead of through them
    root = logging.getLogger()
    handlers, root.handlers = root.handlers, [RichHandler(console=console, show_time=False, show_path=False)]
    try:
        report = job.run(RichProgress(console, settings.max_frames), settings.ray.address, use_ray)
    finally:
        root.handlers = handlers
    print_batch_summary(report, args.out, console)
    return report.exit_code


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "batch",
        help="process a collection of videos: per-file results, resumable, locally or on Ray",
        description="Directories (recursive), globs ('videos/**/*.mp4', quoted) and list files (.txt: one path or URL "
        "a line) as INPUT. Re-running the same command skips the files already finished.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="directory, glob, list file (.txt) or video file")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (mirrors the input tree)")
    p.add_argument("--config", type=Path, metavar="YAML", help="batch settings file (see configs/batch.yaml)")
    p.add_argument("--decoders", type=int, metavar="N", help="files decoded at once (default 2)")
    p.add_argument("--format", choices=("jsonl", "coco"), help="per-file results: jsonl messages (default) or COCO results JSON")
    p.add_argument("--ground-truth", type=Path, metavar="GT.json",
                   help="with --format coco: number the frames with this COCO file's image ids (images VIDEO#N, as "
                        "detstream synth video writes), so the results score against it")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop each file after N frames")
    p.add_argument("--video", action="store_true", help="also write an annotated MP4 per file")
    p.add_argument("--force", action="store_true", help="process every file again, finished or not")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="run on a Ray cluster (default: RAY_ADDRESS, else a local one)")
    p.add_argument("--ext", metavar="LIST", help="extensions to take from directories, e.g. mp4,mkv")
    add_model_arguments(p, max_batch_default="the number of decoders")
    p.set_defaults(func=cmd_batch)
