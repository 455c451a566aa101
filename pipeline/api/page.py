"""The live page: one self-contained HTML page and the annotated frames it shows."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from pipeline.run.control import SourceControl


def index_html() -> str:
    """The page served at GET / (no CDN, no build step)."""
    raise NotImplementedError


def jpeg_frames(control: SourceControl, name: str, fps: float, stop: threading.Event) -> Iterator[bytes]:
    """Annotated JPEG frames of source `name`, at most `fps` a second, encoded only while
    iterated (someone watches); ends when `stop` is set or the source goes away."""
    raise NotImplementedError
