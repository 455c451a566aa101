"""Awkward and hostile videos, written with FFmpeg (through PyAV) into a test's folder.

Each is a few frames of small size, so a test using them runs in well under a second.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from support import render_blobs


def _frame(index: int, width: int, height: int) -> av.VideoFrame:
    if width >= 16 and height >= 16:
        image = render_blobs(index, width, height)
    else:
        image = np.full((height, width, 3), (index * 40) % 256, np.uint8)
    return av.VideoFrame.from_ndarray(image, format="rgb24")


def encoded(codec: str, frames: int, width: int, height: int, pix_fmt: str = "yuv420p",
            first: int = 0) -> list[av.Packet]:
    """Packets of `frames` frames encoded alone (no container), pts 0, 1, ..."""
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, 25)
    if codec == "libx264":
        context.options = {"preset": "ultrafast", "crf": "18"}
    packets: list[av.Packet] = []
    for i in range(frames):
        frame = _frame(first + i, width, height)
        frame.pts = i
        packets += context.encode(frame.reformat(format=pix_fmt))
    return packets + context.encode(None)


def write(path: Path, codec: str, frames: int, width: int, height: int, pix_fmt: str = "yuv420p",
          pts: list[int] | None = None) -> Path:
    """A container file of one video stream; `pts` (in 1/25 s) replaces 0, 1, 2, ..."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18", "bf": "0"}
        for i in range(frames):
            frame = _frame(i, width, height).reformat(format=pix_fmt)
            frame.pts = pts[i] if pts is not None else i
            frame.time_base = Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def concatenated_h264(path: Path, sizes: list[tuple[int, int, int]]) -> Path:
    """A raw H.264 stream of several encodes back to back, each (frames, width, height):
    the resolution changes mid-stream (a new SPS at each part)."""
    data = b"".join(bytes(p) for frames, width, height in sizes for p in encoded("libx264", frames, width, height))
    path.write_bytes(data)
    return path


def concatenated_ts(path: Path, parts: list[tuple[str, int]]) -> Path:
    """MPEG-TS files of different codecs (codec, frames), 64x48, cat'ed into one file:
    the codec changes mid-file."""
    chunks = []
    for index, (codec, frames) in enumerate(parts):
        part = path.with_name(f"{path.stem}.part{index}.ts")
        write(part, codec, frames, 64, 48)
        chunks.append(part.read_bytes())
        part.unlink()
    path.write_bytes(b"".join(chunks))
    return path


def huge_header(path: Path, width: int, height: int) -> Path:
    """A YUV4MPEG2 file whose header declares `width` x `height` followed by a few bytes of
    one frame: a decompression bomb's shape (a 100-byte file that claims gigabytes)."""
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + bytes(64))
    return path


@contextmanager
def rtsp_peer(reply: bytes | None) -> Iterator[int]:
    """A TCP peer on a free loopback port (yields the port) that reads each RTSP request and
    answers `reply` then hangs up; None: hangs up without a word (mid-handshake)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                peer, _ = server.accept()
            except TimeoutError:
                continue
            with peer:
                peer.settimeout(1)
                try:
                    peer.recv(4096)
                    if reply is not None:
                        peer.sendall(reply)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


GARBAGE = b"\x00\xffHTTP/9 nonsense\r\n\r\n" + bytes(range(256))
