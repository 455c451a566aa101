"""Test helpers: videos with known content, and an engine whose output is known.

The colour-blob engine finds saturated red/green/blue rectangles in the *preprocessed*
input tensor, so whatever preprocess and postprocess do to geometry is checked against
rectangles whose source-pixel positions the test knows exactly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from engines.base import ModelInfo
from pipeline.core.types import RawOutput

BLOB_CLASSES = ("__background__", "red", "green", "blue")
BLOB_COLORS = {1: (230, 20, 20), 2: (20, 230, 20), 3: (20, 20, 230)}
BACKGROUND = 40


@dataclass
class Blob:
    class_id: int
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in stored-frame pixels (x2, y2 exclusive)


def blob_scene(index: int, width: int, height: int) -> list[Blob]:
    """Three rectangles moving on straight lines; positions are a pure function of index."""
    blobs = []
    for class_id in (1, 2, 3):
        w, h = width // (5 + class_id), height // (3 + class_id)
        x = (index * 3 * class_id + class_id * width // 4) % (width - w)
        y = (class_id * height // 5 + index * class_id) % (height - h)
        blobs.append(Blob(class_id, (x, y, x + w, y + h)))
    return blobs


def render_blobs(index: int, width: int, height: int) -> np.ndarray:
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    for blob in blob_scene(index, width, height):
        x1, y1, x2, y2 = blob.box
        image[y1:y2, x1:x2] = BLOB_COLORS[blob.class_id]
    return image


def write_video(
    path: Path,
    frames: int,
    width: int = 320,
    height: int = 180,
    fps: int = 25,
    rotation: int | None = None,
) -> Path:
    """H.264 MP4 of moving blobs (high quality so edges stay sharp)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(render_blobs(i, width, height), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


class BlobEngine:
    """Engine that 'detects' the saturated rectangles of `render_blobs`.

    Optionally fails on a given call, sleeps per call, or returns full-box masks.
    """

    def __init__(
        self,
        input_size: tuple[int, int] = (256, 320),
        masks: bool = False,
        fail_on_call: int | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.info = ModelInfo(
            name="blob-test",
            architecture="blob",
            class_names=BLOB_CLASSES,
            input_size=input_size,
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            score_threshold=0.5,
            has_masks=masks,
        )
        self.fail_on_call = fail_on_call
        self.delay_s = delay_s
        self.calls = 0

    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[RawOutput]:
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise RuntimeError("blob engine failing on purpose")
        if self.delay_s:
            time.sleep(self.delay_s)
        return [self._one(image, size) for image, size in zip(images, image_sizes)]

    def _one(self, image: torch.Tensor, size: tuple[int, int]) -> RawOutput:
        pixels = (image[:, : size[0], : size[1]] * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        boxes, labels = [], []
        for class_id in (1, 2, 3):
            channel = class_id - 1
            others = [c for c in range(3) if c != channel]
            mask = (pixels[..., channel] > 128) & (pixels[..., others].max(-1) < 128)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
            for left, top, w, h, area in stats[1:]:
                if area >= 4:
                    boxes.append([left, top, left + w, top + h])
                    labels.append(class_id)
        n = len(boxes)
        return RawOutput(
            boxes=torch.tensor(boxes, dtype=torch.float32).reshape(n, 4),
            scores=torch.full((n,), 0.9),
            labels=torch.tensor(labels, dtype=torch.int64),
            mask_logits=torch.full((n, 28, 28), 10.0) if self.info.has_masks else None,
        )


class GatedEngine(BlobEngine):
    """A blob engine that stops before engine call N (each N of `calls`) until the test opens
    `gates[N]`; `reached[N]` is set when it gets there."""

    def __init__(self, calls: tuple[int, ...]) -> None:
        super().__init__()
        self.gates = {call: threading.Event() for call in calls}
        self.reached = {call: threading.Event() for call in calls}

    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[RawOutput]:
        call = self.calls + 1
        if call in self.gates:
            self.reached[call].set()
            self.gates[call].wait(60)
        return super().infer(images, image_sizes)

    def open_all(self) -> None:
        for gate in self.gates.values():
            gate.set()


# the console script the package installs, next to this interpreter
DETSTREAM = [str(Path(sys.executable).parent / "detstream")]

# the synth tests' clip and dataset
VIDEO_ARGS: dict[str, Any] = {"seed": 7, "width": 320, "height": 240, "fps": 25, "seconds": 2.0, "objects": 6}
DATASET_ARGS: dict[str, Any] = {"seed": 11, "count": 60, "width": 320, "height": 240}


def run_cli(*args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`detstream ARGS` in a subprocess, as a user runs it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*DETSTREAM, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def counting_source(video: Path) -> dict[str, Any]:
    """A source with a counting line and a zone on a `write_video(..., 160, 96)` clip: the
    blobs wrap around, so it gives every event type, many of each."""
    return {"uri": str(video), "lines": [{"name": "middle", "points": [[80, 96], [80, 0]]}],
            "zones": [{"name": "right", "points": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]], "coordinates": "normalized"}]}


def make_tls_files(directory: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=detstream test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return directory


def end_process(process: subprocess.Popen | None, kill: bool = False) -> None:
    """Stop a test server: SIGKILL (no shutdown at all) or SIGTERM, then SIGKILL after 10 s."""
    if process is None or process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
