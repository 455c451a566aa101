"""What `detstream batch` shows on the terminal: progress bars and the summary table.

Kept apart from `pipeline.batch.cli` because it needs PyAV and the job's types (which
import the stage graph and torch): the command module imports this only when a batch runs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import av
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from pipeline.batch.collection import FileTask
from pipeline.batch.job import SKIPPED, BatchReport
from pipeline.batch.job import JobEvents
from stages.sinks.per_file import FAILED, INTERRUPTED, OK, FileResult


def declared_frames(task: FileTask) -> int:
    """Frames the container says it holds (0 if it does not say); for the progress bar only."""
    if task.is_url:
        return 0
    try:
        with av.open(task.uri) as container:
            return int(container.streams.video[0].frames) if container.streams.video else 0
    except (av.FFmpegError, OSError):
        return 0  # the decoder reports it


class RichProgress(JobEvents):
    """Two bars: files (with ETA) and frames; the frame total is estimated from the
    files opened so far, since counting every file's frames up front costs an open each.
    A file that fails counts with the frames it got through, not the ones it declared;
    `max_frames` caps each file's count."""

    def __init__(self, console: Console, max_frames: int | None = None) -> None:
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
        self.max_frames = max_frames
        self.lock = threading.Lock()
        self.todo = 0
        self.declared: dict[str, int] = {}  # frames of each file opened and not failed
        self.failed: dict[str, int] = {}  # frames each failed file got through

    def begin(self, todo: list[FileTask], skipped: int) -> None:
        self.todo = len(todo)
        self.files = self.bars.add_task("files", total=len(todo), rate=f"({skipped} skipped)")
        self.frame_bar = self.bars.add_task("frames", total=None, rate="")
        self.bars.start()

    def file_started(self, task: FileTask) -> None:
        frames = declared_frames(task)
        if self.max_frames is not None and frames:
            frames = min(frames, self.max_frames)
        with self.lock:
            self.declared[task.rel] = frames
        self._update_total()

    def file_finished(self, result: FileResult) -> None:
        if result.status == FAILED:
            with self.lock:
                self.declared.pop(result.rel, None)
                self.failed[result.rel] = result.frames
            self._update_total()
        self.bars.advance(self.files)

    def frame_total(self) -> int | None:
        """Frames of the files that failed, plus those declared by the others opened so far,
        plus as many per file not yet opened; None until a file declares its frames."""
        with self.lock:
            known = [n for n in self.declared.values() if n]
            if not known:
                return None
            unopened = max(0, self.todo - len(self.declared) - len(self.failed))
            return sum(known) + round(sum(known) / len(known) * unopened) + sum(self.failed.values())

    def _update_total(self) -> None:
        total = self.frame_total()
        if total:
            self.bars.update(self.frame_bar, total=total)

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
