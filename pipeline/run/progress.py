"""A progress bar for runs on files: frames of total, frames/s, ETA (stderr a terminal only).

Totals are the frame counts the files declare (capped by `max_frames`); a source that
declares none, or keeps a subset (`stride`, `max_fps`), leaves the total unknown. Live
sources have no end: no bar. Log lines go above the bar while it shows.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from typing import Iterator

import av
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.core.config import RunConfig
from pipeline.core.context import RunContext

COUNTED_STAGE = "track"  # frames done: messages handed to the sinks
POLL_S = 0.2


def declared_total(config: RunConfig) -> int | None:
    """Frames the run will process, if every file declares its count; else None."""
    total = 0
    for source in config.sources:
        if source.stride != 1 or source.max_fps is not None:
            return None
        try:
            with av.open(source.uri) as container:
                frames = int(container.streams.video[0].frames) if container.streams.video else 0
        except (av.FFmpegError, OSError, IndexError):
            return None  # the run reports the bad file itself
        if frames <= 0:
            return None
        total += min(frames, config.max_frames) if config.max_frames else frames
    return total


@contextlib.contextmanager
def file_progress(config: RunConfig, ctx: RunContext, console: Console) -> Iterator[None]:
    """Show the bar while the body runs, if `console` is a terminal and every source is a file."""
    if not console.is_terminal or not config.sources or any(s.is_live for s in config.sources):
        yield
        return
    progress = Progress(
        TextColumn("frames"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
        console=console, transient=True,
    )
    task = progress.add_task("frames", total=declared_total(config), rate="")
    done = threading.Event()

    def poll() -> None:
        first: float | None = None  # when the first frame came out: the model's load time is not in the rate
        while not done.wait(POLL_S):
            frames = ctx.metrics.frames_out().get(COUNTED_STAGE, 0)
            now = time.monotonic()
            if frames and first is None:
                first, first_frames = now, frames
            rate = f"{(frames - first_frames) / (now - first):.1f} frames/s" if first is not None and now > first else ""
            progress.update(task, completed=frames, rate=rate)

    # log lines through rich's stderr proxy while the bar shows: they print above it
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.stream for h in handlers]
    poller = threading.Thread(target=poll, name="progress", daemon=True)
    with progress:
        for handler in handlers:
            handler.setStream(sys.stderr)
        poller.start()
        try:
            yield
        finally:
            done.set()
            poller.join()
            for handler, stream in zip(handlers, streams):
                handler.setStream(stream)
