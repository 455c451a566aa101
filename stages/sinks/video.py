"""`video:PATH.mp4` sink: annotated H.264, one file per source (boxes, labels, track ids
and trails, zones and lines with their counts: stages/sinks/draw.py).

With one source the file is PATH; with several, `{source}` in PATH is replaced by the
source id (its file stem), or that is appended to PATH's stem: out/annotated-cam1.mp4. Timestamps come from the stream pts,
so strides and dropped frames keep real timing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath

from pipeline.core.context import RunContext
from pipeline.core.errors import SinkError
from pipeline.core.messages import Message
from pipeline.core.types import SourceEnd
from stages.sinks.draw import Trails, annotate
from stages.sinks.mp4 import VideoWriter
from stages.sinks.base import Sink

def _file_part(source: str) -> str:
    """A source id made safe for a file name, without the source's own extension."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath(source).stem or source)


def output_paths(template: str, sources: list[str]) -> dict[str, Path]:
    parts = {s: _file_part(s) for s in sources}
    if len(set(parts.values())) < len(parts):  # a.mp4 and a.mkv: keep extensions
        parts = {s: re.sub(r"[^A-Za-z0-9._-]+", "_", s) for s in sources}
    if "{source}" in template:
        return {s: Path(template.replace("{source}", parts[s])) for s in sources}
    path = Path(template)
    if len(sources) == 1:
        return {sources[0]: path}
    return {s: path.with_name(f"{path.stem}-{parts[s]}{path.suffix}") for s in sources}


def added_path(template: str, source: str) -> Path:
    """The file of a source added while the run goes on: named as in a run of several sources."""
    if "{source}" in template:
        return Path(template.replace("{source}", _file_part(source)))
    path = Path(template)
    return path.with_name(f"{path.stem}-{_file_part(source)}{path.suffix}")


class VideoSink(Sink):
    FORM = "video:PATH.mp4"

    def __init__(self, uri: str, ctx: RunContext, queue_size: int, sources: list[str]) -> None:
        super().__init__(uri, ctx, queue_size)
        template = uri.partition(":")[2]
        if not template.endswith(".mp4"):
            raise SinkError(f"sink {uri!r}: the video sink writes MP4; the path must end in .mp4")
        self.template = template
        self.paths = output_paths(template, sources)
        self.writers: dict[str, VideoWriter] = {}
        self.trails: dict[str, Trails] = {}
        for path in self.paths.values():
            self._check(path)  # fail now, not at the first frame, if the place is not writable

    def _check(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"sink {self.uri!r}: cannot create {path.parent}: {exc.strerror}") from exc
        if not os.access(path.parent, os.W_OK):
            raise SinkError(f"sink {self.uri!r}: cannot write into {path.parent}")

    def _writer(self, source: str) -> VideoWriter:
        """The source's writer, opened at its first frame (a source added at runtime gets
        the path it would have had in a run of several sources)."""
        if source not in self.writers:
            path = self.paths.get(source) or added_path(self.template, source)
            self._check(path)
            self.writers[source] = VideoWriter(path)
            self.trails[source] = Trails()
        return self.writers[source]

    def write(self, message: Message) -> None:
        frame = message.detections.frame
        writer = self._writer(frame.source)
        writer.write(annotate(message, self.trails[frame.source]), frame.pts)

    def source_ended(self, end: SourceEnd) -> None:
        # the file is complete now, not at the end of the run (and a removed camera's is freed)
        if (writer := self.writers.pop(end.source, None)) is not None:
            writer.close()
            self.trails.pop(end.source, None)

    def finish(self) -> None:
        for writer in self.writers.values():
            writer.close()
