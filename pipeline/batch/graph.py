"""One batch pipeline instance: N decoder slots feeding one detector, per-file outputs.

    slot[0..N-1] --SourceMux (one queue per slot)--> preprocess --> detect --> postprocess --> track --> per-file-writer
       ^ next file from the feed when the current one is done

A slot's `FileDone` goes to the track stage, which passes it on once the file's frames
and its tracks' last events are through.

A slot is a thread that takes the next file from the feed and reads it with the run's
own frame reader (stages/reader.py, in the slot's thread, so there is never a thread per
file), then the next one. The mux is keyed by slot while frames keep their file's id, so
preprocess round-robins over the N open files and batches stay full as files come and
go. The local `detstream batch` runs one instance; on Ray each worker runs one. Stopping
and the grace period follow the run's supervisor (pipeline/run/supervisor.py).
"""

from __future__ import annotations

import queue
import threading
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from engines.base import Engine
from pipeline.batch.config import BatchSettings
from pipeline.batch.collection import FileTask
from pipeline.core.config import SourceConfig
from pipeline.core.context import RunContext
from pipeline.core.queues import POLL_S, Aborted, Channel, SourceMux
from pipeline.run.supervisor import join
from stages.base import Stage
from stages.sinks.per_file import FileDone, FileResult, PerFileWriter
from stages.detect import Detect
from engines.outputs import Selection
from stages.postprocess import Postprocess
from stages.preprocess import Preprocess
from stages.proposals import proposal_stage
from stages.reader import FrameReader
from stages.track import Track
from stages.tracking.source_tracks import SourceSettings


class ListFeed:
    """Hands out the files of a list, each once, to whichever slot asks first."""

    def __init__(self, tasks: Iterable[FileTask]) -> None:
        self._tasks = iter(list(tasks))
        self._lock = threading.Lock()

    def next(self, ctx: RunContext) -> FileTask | None:
        if ctx.stop_reading.is_set():
            return None
        with self._lock:
            return next(self._tasks, None)


class QueueFeed:
    """Files that keep arriving (a Ray worker's); `close` ends the feed."""

    def __init__(self) -> None:
        self._queue: queue.Queue[FileTask | None] = queue.Queue()

    def put(self, task: FileTask) -> None:
        self._queue.put(task)

    def close(self) -> None:
        self._queue.put(None)

    def next(self, ctx: RunContext) -> FileTask | None:
        while not ctx.stop_reading.is_set():
            try:
                task = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if task is None:
                self._queue.put(None)  # the other slots must see the end too
            return task
        return None


class DecodeSlot(Stage):
    def __init__(
        self,
        slot: str,
        feed: ListFeed | QueueFeed,
        mux: SourceMux,
        sink: Channel,
        settings: BatchSettings,
        ctx: RunContext,
        on_start: Callable[[FileTask], None] | None = None,
    ) -> None:
        super().__init__(f"decode[{slot}]", ctx)
        self.slot = slot
        self.feed = feed
        self.mux = mux
        self.sink = sink
        self.settings = settings
        self.on_start = on_start

    def work(self) -> None:
        while (task := self.feed.next(self.ctx)) is not None:
            if self.on_start:
                self.on_start(task)
            self.sink.put(self._decode(task))

    def _decode(self, task: FileTask) -> FileDone:
        source = SourceConfig(uri=task.uri, name=task.rel, stride=self.settings.stride, max_fps=self.settings.max_fps)
        # frames keep their file's id and go to this slot's queue, which stays open for the next file
        reader = FrameReader(self, source, task.rel, partial(self.mux.put, self.slot), self.settings.max_frames)
        try:
            reader.read_file()  # a SourceError is reported into ctx.source_errors
        except Aborted:
            raise
        except Exception as exc:  # noqa: BLE001 - an unforeseen error of one file fails that file only
            reason = f"{type(exc).__name__}: {exc}"
            self.ctx.source_failed(task.rel, reason)
        error = self.ctx.source_errors.get(task.rel)
        # stopped before the end: the file is incomplete (conservatively, even if it just ended)
        interrupted = error is None and self.ctx.stop_reading.is_set()
        return FileDone(task.rel, reader.frames, error, interrupted)

    def finish(self) -> None:
        self.mux.close(self.slot)


class BatchPipeline:
    """Build, start and join one pipeline instance over the files of a feed."""

    def __init__(self, engine: Engine, settings: BatchSettings, staging: Path) -> None:
        self.engine = engine
        self.settings = settings
        self.staging = staging
        self.kinds = [settings.format] + (["video"] if settings.video else [])
        # class names are checked against the loaded model here, before any file is read
        self.selection = Selection.for_model(settings.model, engine.info)
        self.image_ids = settings.ground_truth_ids() if settings.format == "coco" else None
        if settings.tracking.enabled:
            self.kinds.append("events")
        # every file is tracked the same way (zones and lines: normalized fit files of any size)
        self.tracking = SourceSettings(settings.tracking, settings.zones, settings.lines)

    def run(
        self,
        feed: ListFeed | QueueFeed,
        on_result: Callable[[FileResult], None],
        ctx: RunContext,
        on_start: Callable[[FileTask], None] | None = None,
        tick: Callable[[], None] | None = None,
    ) -> dict[str, str]:
        """Process every file of `feed`; returns the stage errors (empty when all went well).

        `tick` is called about twenty times a second from this thread (progress display).
        """
        stages = self._build(feed, on_result, ctx, on_start)
        for stage in stages:
            stage.start()
        join(stages, ctx, self.settings.shutdown_timeout_s, tick)
        return dict(ctx.stage_errors)

    def _build(
        self,
        feed: ListFeed | QueueFeed,
        on_result: Callable[[FileResult], None],
        ctx: RunContext,
        on_start: Callable[[FileTask], None] | None,
    ) -> list[Stage]:
        settings, info = self.settings, self.engine.info
        slots = [f"slot{i}" for i in range(settings.decoders)]
        mux = SourceMux(slots, settings.queue_size, ctx.abort)
        batches = Channel(settings.queue_size, ctx.abort)
        results = Channel(settings.queue_size, ctx.abort)
        finished = Channel(settings.queue_size, ctx.abort)
        sink = PerFileWriter(self.staging, self.kinds, on_result, ctx, settings.queue_size, self.image_ids)
        low_score = settings.tracking.low_score if settings.tracking.enabled else None
        proposing, detect_input = proposal_stage(info, batches, settings.queue_size, ctx)
        return [
            *(DecodeSlot(slot, feed, mux, finished, settings, ctx, on_start) for slot in slots),
            Preprocess(mux, batches, info, settings.engine_batch, ctx),
            *proposing,
            Detect(self.engine, detect_input, results, ctx),
            Postprocess(results, finished, self.selection, info, ctx, low_score=lambda source: low_score),
            Track(finished, [sink.input], info, ctx, lambda source: self.tracking),
            sink,
        ]
