"""`detstream batch` as a job: plan against the manifest, process, publish, report.

The job owns the output folder: it skips files the manifest lists as finished (same
size, mtime, model checksum and settings), processes the rest locally (one pipeline
instance, pipeline/batch.py) or on Ray (one per worker slot, pipeline/ray_batch.py), and
for each finished file renames its outputs into place and then appends it to the
manifest, in that order. Failed and interrupted files are reported, never recorded, so
the next run tries them again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from engines.base import Engine
from pipeline.batch.graph import BatchPipeline, ListFeed
from pipeline.batch.config import BatchSettings
from pipeline.core.files import write_atomic
from stages.sinks.file_outputs import PARTIAL_DIR, clear_partial, publish
from pipeline.batch.collection import FileStat, FileTask, expand, stat_of
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError, SinkError
from pipeline.batch.manifest import Manifest, ManifestEntry
from pipeline.core.signals import Signals
from pipeline.run.runner import describe_run
from pipeline.run.supervisor import exit_code
from stages.sinks.per_file import FAILED, INTERRUPTED, OK, FileResult

log = logging.getLogger("detstream")
SKIPPED = "skipped"
REPORT_NAME = "report.json"
REPORT_SCHEMA = "detstream.batch-report/v1"
EngineFactory = Callable[[], Engine]


@dataclass
class FileReport:
    path: str
    status: str  # ok, failed, interrupted, skipped
    reason: str | None = None
    frames: int = 0
    detections: int = 0
    elapsed_s: float = 0.0


@dataclass
class BatchReport:
    files: dict[str, FileReport] = field(default_factory=dict)
    elapsed_s: float = 0.0
    signal: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # stage or cluster errors

    def count(self, status: str) -> int:
        return sum(1 for f in self.files.values() if f.status == status)

    @property
    def frames(self) -> int:
        """Frames processed in this run (skipped files not included)."""
        return sum(f.frames for f in self.files.values() if f.status == OK)

    @property
    def detections(self) -> int:
        return sum(f.detections for f in self.files.values() if f.status == OK)

    @property
    def exit_code(self) -> int:
        return exit_code(bool(self.count(FAILED) or self.errors), self.signal, incomplete=bool(self.count(INTERRUPTED)))

    def to_json(self, model: str, settings: str) -> dict:
        return {
            "schema": REPORT_SCHEMA,
            "model": model,
            "settings": settings,
            "counts": {s: self.count(s) for s in (OK, FAILED, SKIPPED, INTERRUPTED)},
            "frames": self.frames,
            "detections": self.detections,
            "elapsed_s": round(self.elapsed_s, 3),
            "frames_per_s": round(self.frames / self.elapsed_s, 2) if self.elapsed_s > 0 else None,
            "signal": self.signal,
            "errors": self.errors,
            "files": [asdict(self.files[k]) for k in sorted(self.files)],
        }


class JobEvents:
    """What a batch job reports while it runs (for a progress display); this one shows nothing."""

    def begin(self, todo: list[FileTask], skipped: int) -> None: ...
    def file_started(self, task: FileTask) -> None: ...
    def file_finished(self, result: FileResult) -> None: ...
    def frames(self, done: int) -> None: ...
    def end(self) -> None: ...


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """One job per output folder at a time; the OS drops the lock if the process dies."""
    with open(out_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConfigError(f"{out_dir}: another detstream batch is writing here") from exc
        yield


class BatchJob:
    def __init__(
        self,
        inputs: list[str],
        out_dir: Path,
        settings: BatchSettings,
        engine_factory: EngineFactory,
        model_checksum: str,
        force: bool = False,
    ) -> None:
        self.out_dir = out_dir
        self.settings = settings
        self.engine_factory = engine_factory
        self.model = model_checksum
        self.force = force
        self.tasks = expand(inputs, tuple(settings.extensions))
        if settings.ground_truth is not None:  # before any file is read: one line, not unscorable results
            if settings.format != "coco":
                raise ConfigError("ground_truth numbers COCO results: it needs format coco (--format coco)")
            ids = settings.ground_truth_ids()
            assert ids is not None
            ids.check([task.rel for task in self.tasks], settings.stride, settings.max_fps)
        self.fingerprint = settings.fingerprint()
        self.report = BatchReport()
        self._stats: dict[str, FileStat] = {}
        self.manifest: Manifest | None = None

    def plan(self) -> list[FileTask]:
        """The files to process; the others are reported as skipped."""
        assert self.manifest is not None
        todo = []
        for task in self.tasks:
            stat = stat_of(task)
            self._stats[task.rel] = stat
            entry = None if self.force else self.manifest.finished(task.rel, stat, self.model, self.fingerprint)
            if entry is None:
                todo.append(task)
            else:
                self.report.files[task.rel] = FileReport(task.rel, SKIPPED, None, entry.frames, entry.detections)
        return todo

    def run(self, progress: JobEvents | None = None, ray_address: str | None = None, use_ray: bool = False) -> BatchReport:
        progress = progress or JobEvents()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with _locked(self.out_dir):
            self.manifest = Manifest(self.out_dir)
            todo = self.plan()
            # the model loads, and its class names are checked, before the progress display
            # and the staging folder: a bad setting is one line, not a report of unstarted files
            staging = self.out_dir / PARTIAL_DIR
            local = None
            if todo and not use_ray:
                engine = self.engine_factory()
                log.info("%s", describe_run(engine, [f"{len(todo)} files"], [f"{self.settings.format} in {self.out_dir}"]))
                local = BatchPipeline(engine, self.settings, staging)
            elif todo:
                log.info("running %s on Ray: each worker loads it (engine %s, device %s); %d files; %s in %s",
                         self.settings.model.path, self.settings.model.engine, self.settings.model.device, len(todo),
                         self.settings.format, self.out_dir)
            clear_partial(self.out_dir)
            progress.begin(todo, len(self.tasks) - len(todo))
            ctx = RunContext()
            signals = Signals.of(ctx)
            started = time.monotonic()
            on_result = self._recorder(progress)
            try:
                with signals.installed():
                    if todo and use_ray:
                        from pipeline.batch.ray_workers import run_on_ray  # ray is an optional extra

                        self.report.errors = run_on_ray(
                            todo, self.settings, self.engine_factory, on_result, ctx, ray_address, progress
                        )
                    elif local is not None:
                        tick = lambda: progress.frames(ctx.metrics.frames_out().get("per-file-writer", 0))  # noqa: E731
                        self.report.errors = local.run(ListFeed(todo), on_result, ctx, progress.file_started, tick)
            finally:
                progress.end()
                self.report.elapsed_s = time.monotonic() - started
                self.report.signal = signals.received
                for task in todo:  # never reached a slot before the stop
                    self.report.files.setdefault(task.rel, FileReport(task.rel, INTERRUPTED, "not started"))
                self.manifest.compact()
                shutil.rmtree(staging, ignore_errors=True)
                write_atomic(
                    self.out_dir / REPORT_NAME,
                    json.dumps(self.report.to_json(self.model, self.fingerprint), indent=1).encode(),
                )
        return self.report

    def _recorder(self, progress: JobEvents) -> Callable[[FileResult], None]:
        def on_result(result: FileResult) -> None:
            if result.status == OK:
                try:
                    publish(self.out_dir, result.outputs)  # outputs first, then the manifest line
                except SinkError as exc:  # a name that would land outside --out: that file fails
                    result = replace(result, status=FAILED, reason=str(exc), outputs={})
                    log.error("%s: %s", result.rel, exc)
            if result.status == OK:
                stat = self._stats[result.rel]
                assert self.manifest is not None
                self.manifest.record(
                    ManifestEntry(
                        result.rel, stat.size, stat.mtime_ns, self.model, self.fingerprint,
                        sorted(result.outputs), result.frames, result.detections,
                    )
                )
            self.report.files[result.rel] = FileReport(
                result.rel, result.status, result.reason, result.frames, result.detections, round(result.elapsed_s, 3)
            )
            progress.file_finished(result)

        return on_result
