"""Per-file outputs for `detstream batch`, staged until the file is complete.

Frames of many files arrive interleaved. Each file's outputs are written under the
staging folder; a decoder slot sends `FileDone` once it has put the file's last frame in
the pipeline, with the number of frames. When the sink has written that many frames the
file is complete, and `on_result` gets its staged outputs (or, for a bad or interrupted
file, the reason; its staged outputs are deleted). Files are lossless, so counting frames
is enough to know that nothing is still in flight.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from stages.sinks.file_outputs import output_names
from pipeline.core.context import RunContext
from pipeline.core.events import Event, EventBatch
from pipeline.core.messages import Message
from pipeline.core.queues import END, Channel
from pipeline.core.types import SourceEnd
from stages.base import Stage
from stages.sinks.draw import Trails, annotate
from stages.sinks.mp4 import VideoWriter

OK, FAILED, INTERRUPTED = "ok", "failed", "interrupted"


@dataclass(frozen=True)
class FileDone(SourceEnd):
    """A decoder slot is through with a file (`source`: its path relative to the
    collection; `frames`: frames it put into the pipeline). The track stage passes it on
    once the file's frames and its tracks' last events are through."""

    error: str | None = None  # the file is bad (its frames so far are discarded)
    interrupted: bool = False  # the run stopped before the end of the file

    @property
    def rel(self) -> str:
        return self.source


@dataclass
class FileResult:
    rel: str
    status: str  # OK, FAILED or INTERRUPTED
    reason: str | None = None
    frames: int = 0
    detections: int = 0
    elapsed_s: float = 0.0
    # output name relative to the output folder -> staged file, or its bytes (from Ray)
    outputs: dict[str, Path | bytes] = field(default_factory=dict)


def coco_results(message: dict[str, Any], image_id: int | None = None) -> list[dict[str, Any]]:
    """COCO results records of one frame's message; image_id is the frame's seq unless given."""
    records = []
    for det in message["detections"]:
        x1, y1, x2, y2 = det["box"]
        record = {
            "image_id": message["seq"] if image_id is None else image_id,
            "category_id": det["class_id"],
            "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
            "score": det["score"],
        }
        if "mask" in det:
            record["segmentation"] = det["mask"]
        records.append(record)
    return records


class FileOutputs:
    """The staged outputs of one file while its frames come in."""

    def __init__(self, rel: str, staging: Path, kinds: list[str], image_ids: dict[int, int] | None = None) -> None:
        """`image_ids`: frame seq -> COCO image id of the ground truth (frames not in it
        get no COCO results); None: the image id is the seq."""
        self.rel = rel
        self.image_ids = image_ids
        self.staged = {name: staging / name for name in output_names(rel, kinds).values()}
        self.names = output_names(rel, kinds)
        for path in self.staged.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        self.jsonl: TextIO | None = open(self._path("jsonl"), "w", encoding="utf-8") if "jsonl" in kinds else None  # noqa: SIM115
        self.coco: list[dict[str, Any]] | None = [] if "coco" in kinds else None
        self.video = VideoWriter(self._path("video")) if "video" in kinds else None
        self.trails = Trails()
        # events of a tracked file: written as they come (tracks end before the file is complete)
        self.events: TextIO | None = open(self._path("events"), "w", encoding="utf-8") if "events" in kinds else None  # noqa: SIM115
        self.written = 0
        self.detections = 0
        self.expected: FileDone | None = None
        self.started = time.monotonic()

    def _path(self, kind: str) -> Path:
        return self.staged[self.names[kind]]

    def add(self, message: Message) -> None:
        detections = message.detections
        if self.jsonl is not None:
            self.jsonl.write(message.line + "\n")
        if self.coco is not None:
            if self.image_ids is None:
                self.coco.extend(coco_results(message.body))
            elif (image_id := self.image_ids.get(message.body["seq"])) is not None:
                self.coco.extend(coco_results(message.body, image_id))
        if self.video is not None:
            self.video.write(annotate(message, self.trails), detections.frame.pts)
        self.add_events(message.events)
        self.written += 1
        self.detections += len(detections)

    def add_events(self, events: tuple[Event, ...]) -> None:
        if self.events is not None:
            self.events.write("".join(event.line + "\n" for event in events))

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.written >= self.expected.frames

    def close(self) -> dict[str, Path | bytes]:
        """Close every output; the staged files that exist, by output name."""
        for file in (self.jsonl, self.events):
            if file is not None:
                file.close()
        if self.coco is not None:
            self._path("coco").write_text(json.dumps(self.coco, separators=(",", ":")))
        if self.video is not None:
            self.video.close()  # a file with no frame has no video: nothing was opened
        return {name: path for name, path in self.staged.items() if path.exists()}

    def discard(self) -> None:
        for file in (self.jsonl, self.events):
            if file is not None:
                file.close()
        if self.video is not None and self.video.container is not None:
            self.video.container.close()
        for path in self.staged.values():
            path.unlink(missing_ok=True)


class PerFileWriter(Stage):
    """The last stage of `detstream batch`. Not a `Sink` (those take sink URIs from a run
    config): its queue carries Messages, events of no frame, and `FileDone` markers (passed
    on by the track stage after the file's frames and last events)."""

    def __init__(
        self,
        staging: Path,
        kinds: list[str],
        on_result: Callable[[FileResult], None],
        ctx: RunContext,
        queue_size: int,
        image_ids: Callable[[str], dict[int, int] | None] | None = None,
    ) -> None:
        """`image_ids(rel)`: the COCO image ids of a file's frames (see `FileOutputs`)."""
        super().__init__("per-file-writer", ctx)
        self.image_ids = image_ids
        self.input = Channel(queue_size, ctx.abort)
        self.staging = staging
        self.kinds = kinds
        self.on_result = on_result
        self.files: dict[str, FileOutputs] = {}

    def _file(self, rel: str) -> FileOutputs:
        if rel not in self.files:
            ids = self.image_ids(rel) if self.image_ids is not None else None
            self.files[rel] = FileOutputs(rel, self.staging, self.kinds, ids)
        return self.files[rel]

    def work(self) -> None:
        while (item := self.input.get()) is not END:
            if isinstance(item, FileDone):
                outputs = self._file(item.rel)
                outputs.expected = item
            elif isinstance(item, EventBatch):
                outputs = self._file(item.source)
                outputs.add_events(item.events)
            else:
                frame = item.detections.frame
                started = self.metrics.arrived((frame,))
                outputs = self._file(frame.source)
                outputs.add(item)
                self.metrics.served((frame,), started)
            if outputs.complete:
                self._finish_file(outputs)

    def _finish_file(self, outputs: FileOutputs) -> None:
        del self.files[outputs.rel]
        done = outputs.expected
        assert done is not None
        elapsed = time.monotonic() - outputs.started
        if done.error or done.interrupted:
            outputs.discard()
            status = FAILED if done.error else INTERRUPTED
            result = FileResult(outputs.rel, status, done.error, outputs.written, outputs.detections, elapsed)
        else:
            staged = outputs.close()
            result = FileResult(outputs.rel, OK, None, outputs.written, outputs.detections, elapsed, staged)
        self.on_result(result)

    def finish(self) -> None:
        # files still open here were cut off by an abort: nothing of them is kept
        for outputs in list(self.files.values()):
            outputs.discard()
            self.on_result(FileResult(outputs.rel, INTERRUPTED, "the run was aborted", outputs.written))
        self.files.clear()
