"""`detstream batch --ray`: the same job on a Ray cluster, one pipeline per worker slot.

Each worker is a Ray actor holding one loaded engine and one running BatchPipeline
(N decoder slots, one detector), reserving `ray.cpus_per_worker` CPUs and
`ray.gpus_per_worker` GPUs. The driver hands files out one at a time, keeping each
worker `decoders + 1` files ahead so its slots never wait, in collection order: a fast
worker simply asks more often. A worker returns each finished file's outputs as bytes
through Ray's object store, and the driver publishes them and writes the manifest
exactly as a local run does, so workers need to read the inputs but never the output
folder, and the results are the same as a local run's.

A worker that dies (process killed, node lost, pipeline failure) is replaced, and the
files it held go back to the front of the queue for whichever worker is free; a file
under which `ray.max_attempts` workers died fails with that reason.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
from collections import Counter, deque
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import ray
from ray.exceptions import RayError

from pipeline.batch.graph import BatchPipeline, QueueFeed
from pipeline.batch.config import BatchSettings
from pipeline.batch.collection import FileTask
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from stages.sinks.per_file import FAILED, FileResult

log = logging.getLogger("detstream")
WAIT_S = 0.2  # how often the driver looks at stop requests while waiting for results


@ray.remote
class BatchWorker:
    """One pipeline instance on a worker slot; `process` returns when its file is done."""

    def __init__(self, settings: BatchSettings, engine_factory: Callable[[], Any]) -> None:
        self.staging = Path(tempfile.mkdtemp(prefix="detstream-batch-"))
        self.feed = QueueFeed()
        self.ctx = RunContext()
        self.waiting: dict[str, Future[FileResult]] = {}
        self.lock = threading.Lock()
        self.broken: str | None = None
        pipeline = BatchPipeline(engine_factory(), settings, self.staging)
        threading.Thread(target=self._run, args=(pipeline,), name="batch-pipeline", daemon=True).start()

    def _run(self, pipeline: BatchPipeline) -> None:
        errors = pipeline.run(self.feed, self._finished, self.ctx)
        with self.lock:  # the pipeline stopped (a stage failed): nothing more gets done here
            self.broken = "; ".join(f"{k}: {v}" for k, v in errors.items()) or "the worker's pipeline stopped"
            for future in self.waiting.values():
                future.set_exception(RuntimeError(self.broken))
            self.waiting.clear()

    def _finished(self, result: FileResult) -> None:
        with self.lock:
            future = self.waiting.pop(result.rel, None)
        if future is not None:
            future.set_result(result)

    def process(self, task: FileTask) -> FileResult:
        future: Future[FileResult] = Future()
        with self.lock:
            if self.broken:
                raise RuntimeError(self.broken)
            self.waiting[task.rel] = future
        self.feed.put(task)
        result = future.result()
        outputs: dict[str, Path | bytes] = {}
        for name, staged in result.outputs.items():
            assert isinstance(staged, Path)
            outputs[name] = staged.read_bytes()
            staged.unlink()
        result.outputs = outputs
        return result

    def pid(self) -> int:
        return os.getpid()


def connect(address: str | None) -> bool:
    """Join `address` (or RAY_ADDRESS, else start a local cluster); True if we started it."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at {address or 'RAY_ADDRESS / local'}: {exc}") from exc
    return True


def worker_slots(settings: BatchSettings) -> int:
    """How many pipeline instances fit the cluster's resources (or the configured number)."""
    if settings.ray.workers:
        return settings.ray.workers
    resources = ray.cluster_resources()
    slots = math.floor(resources.get("CPU", 0) / settings.ray.cpus_per_worker + 1e-9)
    if settings.gpus_per_worker > 0:
        slots = min(slots, math.floor(resources.get("GPU", 0) / settings.gpus_per_worker + 1e-9))
    if slots < 1:
        raise ConfigError(
            f"the Ray cluster ({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs) cannot hold one "
            f"worker of {settings.ray.cpus_per_worker:g} CPUs and {settings.gpus_per_worker:g} GPUs"
        )
    return slots


class _Scheduler:
    """Keeps every worker `ahead` files busy and puts the files of dead workers back."""

    def __init__(self, todo: list[FileTask], settings: BatchSettings, engine_factory: Callable[[], Any]) -> None:
        self.pending = deque(todo)
        self.settings = settings
        self.engine_factory = engine_factory
        self.ahead = settings.decoders + 1
        self.attempts: Counter[str] = Counter()
        self.inflight: dict[ray.ObjectRef, tuple[FileTask, Any]] = {}
        self.load: Counter[Any] = Counter()
        self.workers: list[Any] = []
        self.replacements_left = 0

    def start_worker(self) -> None:
        worker = BatchWorker.options(
            num_cpus=self.settings.ray.cpus_per_worker,
            num_gpus=self.settings.gpus_per_worker,
            max_concurrency=self.ahead + 1,
            max_restarts=0,  # a dead worker is replaced by a fresh one, wherever there is room
        ).remote(self.settings, self.engine_factory)
        self.workers.append(worker)

    def submit(self, started: Callable[[FileTask], None]) -> None:
        for worker in self.workers:
            while self.load[worker] < self.ahead and self.pending:
                task = self.pending.popleft()
                self.inflight[worker.process.remote(task)] = (task, worker)
                self.load[worker] += 1
                started(task)

    def lost(self, task: FileTask, worker: Any, exc: RayError) -> FileResult | None:
        """The worker died under `task`: retry it elsewhere, or fail it after too many deaths."""
        if worker in self.workers:
            self.workers.remove(worker)
            log.warning("a Ray worker was lost (%s): its files go to the other workers", type(exc).__name__)
            ray.kill(worker, no_restart=True)
            if self.replacements_left > 0:
                self.replacements_left -= 1
                self.start_worker()
        self.attempts[task.rel] += 1
        if self.attempts[task.rel] >= self.settings.ray.max_attempts:
            reason = f"{self.attempts[task.rel]} workers died processing it (last: {_first_line(exc)})"
            return FileResult(task.rel, FAILED, reason)
        self.pending.appendleft(task)
        return None

    def stop(self) -> None:
        for worker in self.workers:
            ray.kill(worker, no_restart=True)
        self.workers.clear()


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def run_on_ray(
    todo: list[FileTask],
    settings: BatchSettings,
    engine_factory: Callable[[], Any],
    on_result: Callable[[FileResult], None],
    ctx: RunContext,
    address: str | None,
    progress: Any,
) -> dict[str, str]:
    """Process `todo` on the cluster; returns cluster-level errors (empty when all went well).

    First stop request (ctx.stop_reading): no new files, the ones in flight finish.
    Second (ctx.abort): the workers are killed at once; their files count as interrupted.
    """
    started_here = connect(address)
    scheduler = _Scheduler(todo, settings, engine_factory)
    errors: dict[str, str] = {}
    frames = 0
    try:
        slots = worker_slots(settings)
        scheduler.replacements_left = slots * settings.ray.max_attempts
        log.info("Ray: %d workers of %g CPUs, %g GPUs", slots, settings.ray.cpus_per_worker, settings.gpus_per_worker)
        for _ in range(slots):
            scheduler.start_worker()
        while scheduler.inflight or (scheduler.pending and not ctx.stop_reading.is_set()):
            if ctx.abort.is_set():
                break
            if not ctx.stop_reading.is_set():
                scheduler.submit(progress.file_started)
            if not scheduler.inflight:
                errors["ray"] = "no Ray worker is left to process the remaining files"
                break
            ready, _ = ray.wait(list(scheduler.inflight), num_returns=1, timeout=WAIT_S)
            for ref in ready:
                task, worker = scheduler.inflight.pop(ref)
                scheduler.load[worker] -= 1
                try:
                    result = ray.get(ref)
                except RayError as exc:
                    result = scheduler.lost(task, worker, exc)
                    if result is None:
                        continue
                frames += result.frames
                on_result(result)
                progress.frames(frames)
    finally:
        scheduler.stop()
        if started_here:
            ray.shutdown()
    return errors
