"""`detstream batch INPUT... --out DIR`: a video collection, resumable, locally or on Ray."""

from __future__ import annotations

import argparse
import functools
import logging
import threading
from pathlib import Path
from typing import Any

import av
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from pipeline.batch.config import BatchSettings, load_batch_settings
from pipeline.batch.job import SKIPPED, BatchJob, BatchReport
from pipeline.batch.job import Progress as ProgressHooks
from pipeline.batch.collection import FileTask
from pipeline.batch.manifest import model_checksum
from stages.sinks.per_file import FAILED, INTERRUPTED, OK, FileResult

log = logging.getLogger("detstream")


def declared_frames(task: FileTask) -> int:
    """Frames the container says it holds (0 if it does not say); for the progress bar only."""
    if task.is_url:
        return 0
    try:
        with av.open(task.uri) as container:
            return int(container.streams.video[0].frames) if container.streams.video else 0
    except (av.FFmpegError, OSError):
        return 0  # the decoder reports it


class RichProgress(ProgressHooks):
    """Two bars: files (with ETA) and frames; the frame total is estimated from the
    files opened so far, since counting every file's frames up front costs an open each."""

    def __init__(self, console: Console) -> None:
        self.bars = Progress(
            TextColumn("{task.description:>6}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.lock = threading.Lock()
        self.opened = 0
        self.declared = 0
        self.todo = 0

    def begin(self, todo: list[FileTask], skipped: int) -> None:
        self.todo = len(todo)
        self.files = self.bars.add_task("files", total=len(todo), rate=f"({skipped} skipped)")
        self.frame_bar = self.bars.add_task("frames", total=None, rate="")
        self.bars.start()

    def file_started(self, task: FileTask) -> None:
        frames = declared_frames(task)
        with self.lock:
            self.opened += 1
            self.declared += frames
            estimate = round(self.declared / self.opened * self.todo) if frames else None
        if estimate:
            self.bars.update(self.frame_bar, total=max(estimate, self.declared))

    def file_finished(self, result: FileResult) -> None:
        self.bars.advance(self.files)

    def frames(self, done: int) -> None:
        elapsed = self.bars.tasks[self.frame_bar].elapsed or 0
        self.bars.update(self.frame_bar, completed=done, rate=f"{done / elapsed:.1f} fps" if elapsed else "")

    def end(self) -> None:
        self.bars.stop()


def print_batch_summary(report: BatchReport, out_dir: Path, console: Console) -> None:
    table = Table(title=f"detstream batch: {report.elapsed_s:.1f} s", title_justify="left")
    for column in ("files ok", "failed", "skipped", "interrupted", "frames", "detections", "frames/s"):
        table.add_column(column, justify="right")
    fps = report.frames / report.elapsed_s if report.elapsed_s > 0 else 0.0
    table.add_row(
        str(report.count(OK)), str(report.count(FAILED)), str(report.count(SKIPPED)), str(report.count(INTERRUPTED)),
        str(report.frames), str(report.detections), f"{fps:.1f}",
    )
    console.print(table)
    for file in sorted(report.files.values(), key=lambda f: f.path):
        if file.status == FAILED:
            console.print(f"[red]FAILED[/red] {escape(file.path)}: {escape(file.reason or '')}", highlight=False)
    for where, reason in report.errors.items():
        console.print(f"[red]{escape(where)} failed[/red]: {escape(reason)}", highlight=False)
    if report.signal:
        console.print(f"stopped by {report.signal}: run the same command again to finish the rest")
    console.print(f"results in {escape(str(out_dir))}/ (report.json, manifest.jsonl)", highlight=False)


def engine_factory(settings: BatchSettings, on_ray: bool) -> functools.partial[Any]:
    """A picklable recipe for the engine, so each Ray worker loads its own."""
    from engines.loading import load_engine  # torch loads only when a run needs it

    model = settings.model
    threads = model.threads
    if on_ray and threads is None:  # stay within the CPUs the worker reserved
        threads = max(1, int(settings.ray.cpus_per_worker))
    return functools.partial(load_engine, model.path, model.device, model.score_threshold, threads, model.engine)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    pairs = {
        "model.path": args.model,
        "model.device": args.device,
        "model.engine": args.engine,
        "model.score_threshold": args.score_threshold,
        "batch.max_batch": args.max_batch,
        "decoders": args.decoders,
        "format": args.format,
        "video": True if args.video else None,
        "extensions": args.ext.split(",") if args.ext else None,
        "ray.address": args.ray or None,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def cmd_batch(args: argparse.Namespace) -> int:
    settings = load_batch_settings(args.config, _overrides(args))
    use_ray = args.ray is not None
    job = BatchJob(
        args.inputs, args.out, settings, engine_factory(settings, use_ray), model_checksum(settings.model.path), args.force
    )
    console = Console(stderr=True)
    # log lines go above the progress bars instead of through them
    root = logging.getLogger()
    handlers, root.handlers = root.handlers, [RichHandler(console=console, show_time=False, show_path=False)]
    try:
        report = job.run(RichProgress(console), settings.ray.address, use_ray)
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
    p.add_argument("--model", metavar="PATH", help="model file, engine package, embedded:NAME or arch:NAME")
    p.add_argument("--decoders", type=int, metavar="N", help="files decoded at once (default 2)")
    p.add_argument("--format", choices=("jsonl", "coco"), help="per-file results: jsonl messages (default) or COCO results JSON")
    p.add_argument("--video", action="store_true", help="also write an annotated MP4 per file")
    p.add_argument("--force", action="store_true", help="process every file again, finished or not")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="run on a Ray cluster (default: RAY_ADDRESS, else a local one)")
    p.add_argument("--ext", metavar="LIST", help="extensions to take from directories, e.g. mp4,mkv")
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    p.add_argument("--engine", help="auto, torch, onnxruntime or tensorrt")
    p.add_argument("--score-threshold", type=float, metavar="S", help="default: the model's")
    p.add_argument("--max-batch", type=int, metavar="N", help="frames per engine call (default: the number of decoders)")
    p.set_defaults(func=cmd_batch)
