"""The live page: one self-contained HTML page (page.html) and the annotated frames it shows.

Rules of `jpeg_frames`, the one place where frames are drawn and encoded for viewers:

- Nothing happens until someone iterates: the source's tap is opened by the first
  `next()` (UnknownSource is raised there; a server that answers 404 before its headers
  asks `control.source(name)` first), so a stream nobody reads costs the pipeline
  nothing. Closing the iterator (the server must, when the viewer leaves or the response
  ends) closes the tap.
- Each JPEG is the newest message of the source, drawn by stages/sinks/draw.py
  (`annotate`, the one drawing code) with trails kept for this viewer, at most `fps` a
  second: messages that arrive in between replace each other in the watcher and are never
  drawn, so a 30 fps camera watched at 5 fps costs 5 encodes a second.
- Frames wider than MAX_WIDTH are scaled down after drawing (labels stay legible): the
  encode cost is bounded whatever the camera's resolution.
- It ends when `stop` is set, when the source is removed (checked every POLL_S while no
  frame comes), or when no frame has come for IDLE_S (a paused, stalled or reconnecting
  source). Why end on idle: the server notices a viewer who left only when it writes, so
  a stream that never writes would hold a thread and a socket for as long as the source
  is quiet; the page opens the stream again once the source streams.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from importlib import resources

import cv2

from pipeline.core.errors import UnknownSource
from pipeline.core.messages import Message
from pipeline.run.control import SourceControl
from stages.sinks.draw import Trails, annotate

JPEG_QUALITY = 80
MAX_WIDTH = 1280  # wider frames are scaled down to this width before encoding
POLL_S = 0.5  # while no frame comes: how often `stop` and the source's existence are checked
IDLE_S = 10.0  # no frame for this long ends the iteration


def index_html() -> str:
    """The page served at GET / (page.html: inline CSS and JS, no CDN, no build step).

    It reads GET /sources and GET /health/ready every second, shows each source's
    /sources/{name}/stream.mjpg, and pauses or resumes with PATCH /sources/{name}
    {"enabled": ...}. A token given as /#token=... is sent as `Authorization: Bearer` on
    every fetch and as `?token=` on the image URLs (an <img> cannot send headers)."""
    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


def encode_jpeg(message: Message, trails: Trails | None = None) -> bytes:
    """The message drawn over its frame, as JPEG bytes (frames are RGB, OpenCV wants BGR)."""
    image = annotate(message, trails)
    height, width = image.shape[:2]
    if width > MAX_WIDTH:
        size = (MAX_WIDTH, max(1, round(height * MAX_WIDTH / width)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # OpenCV returns False only for images it cannot encode, never for a valid frame
        raise ValueError(f"JPEG encoding failed for a {width}x{height} frame")
    return data.tobytes()


def jpeg_frames(control: SourceControl, name: str, fps: float, stop: threading.Event) -> Iterator[bytes]:
    """Annotated JPEG frames of source `name`, at most `fps` a second, encoded only while
    iterated (someone watches); ends when `stop` is set or the source goes away (see the
    module docstring for every rule)."""
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    period = 1.0 / fps
    trails = Trails()
    with control.watch(name) as watcher:
        next_at = time.monotonic()  # no encode before this time
        last_frame = time.monotonic()
        while not stop.is_set():
            wait = next_at - time.monotonic()
            if wait > 0:
                stop.wait(wait)  # newer messages replace older ones in the watcher meanwhile
                continue
            message = watcher.next(POLL_S)
            now = time.monotonic()
            if message is None:
                if now - last_frame >= IDLE_S or not _exists(control, name):
                    return
                continue
            last_frame, next_at = now, now + period
            yield encode_jpeg(message, trails)


def _exists(control: SourceControl, name: str) -> bool:
    try:
        control.source(name)
    except UnknownSource:
        return False
    return True
