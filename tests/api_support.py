"""Test helpers of the control API and the live page: real Messages of synthetic frames,
and `FakeControl`, the parts of SourceControl they use over a real FrameTap."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from pipeline.core.errors import UnknownSource
from pipeline.core.messages import Message, Overlay
from pipeline.core.tap import FrameTap, Watcher
from pipeline.core.types import Detections, Frame
from support import BLOB_CLASSES, blob_scene, render_blobs
from synth.video import iter_frames


def blob_message(source: str, seq: int, width: int = 320, height: int = 180) -> Message:
    """Frame `seq` of the moving colour blobs, with each blob as a tracked detection."""
    blobs = blob_scene(seq, width, height)
    detections = Detections(
        frame=Frame(source, seq, seq / 30, time.time(), render_blobs(seq, width, height)),
        boxes=np.array([b.box for b in blobs], np.float32),
        scores=np.full(len(blobs), 0.9, np.float32),
        class_ids=np.array([b.class_id for b in blobs], np.int64),
        labels=[BLOB_CLASSES[b.class_id] for b in blobs],
    )
    return Message.of(detections, "blob-test", track_ids=np.array([b.class_id for b in blobs]))


def scene_messages(source: str, seed: int, overlay: Overlay | None = None, frames: int = 40) -> list[Message]:
    """A synthetic camera's frames (synth/), its visible objects as tracked detections."""
    messages = []
    for index, image, instances in iter_frames(seed=seed, width=640, height=360, fps=10, seconds=frames / 10):
        detections = Detections(
            frame=Frame(source, index, index / 10, time.time(), image),
            boxes=np.array([i.xyxy for i in instances], np.float32).reshape(-1, 4),
            scores=np.array([0.97 - 0.03 * (i.track_id % 5) for i in instances], np.float32),
            class_ids=np.array([i.category_id for i in instances], np.int64),
            labels=[i.category_name for i in instances],
        )
        track_ids = np.array([i.track_id for i in instances], np.int64)
        messages.append(Message.of(detections, "faster-compact-synth", track_ids, overlay=overlay))
    return messages


class FakeControl:
    """The parts of SourceControl the page uses, over a real FrameTap; `play` offers each
    enabled source's messages in a loop at `rate` a second, as the track stage would."""

    def __init__(self) -> None:
        self.tap = FrameTap()
        self.messages: dict[str, list[Message]] = {}
        self.state: dict[str, str] = {}
        self.enabled: dict[str, bool] = {}
        self.received: dict[str, int] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def put(self, name: str, messages: list[Message], state: str = "streaming") -> None:
        with self._lock:
            self.messages[name], self.state[name], self.enabled[name] = messages, state, True
            self.received[name] = 0

    def set_state(self, name: str, state: str) -> None:
        with self._lock:
            self.state[name] = state

    def drop(self, name: str) -> None:
        with self._lock:
            for table in (self.messages, self.state, self.enabled, self.received):
                del table[name]

    def live(self) -> bool:
        return True

    def ready(self) -> dict[str, Any]:
        with self._lock:
            return {"ready": True, "model_loaded": True, "sources": dict(self.state)}

    def sources(self) -> list[dict[str, Any]]:
        with self._lock:
            names = list(self.state)
        return [self.source(name) for name in names]

    def source(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self.state:
                raise UnknownSource(f"no source named {name!r}")
            received, playing = self.received[name], self.state[name] == "streaming"
            return {
                "name": name,
                "state": self.state[name],
                "enabled": self.enabled[name],
                "fps": 10.0 if playing else 0.0,
                "received": received,
                "processed": received - received // 50,
                "dropped": {"queue_full": received // 50},
                "reconnects": 1 if self.state[name] == "reconnecting" else 0,
                "last_frame_ts": time.time() - (0.1 if playing else 42.0) if received else None,
                "settings": {"uri": f"rtsp://***@cameras.example/{len(name)}", "enabled": self.enabled[name]},
            }

    def update(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if name not in self.state:
                raise UnknownSource(f"no source named {name!r}")
            self.patches.append((name, changes))
            if "enabled" in changes:
                self.enabled[name] = bool(changes["enabled"])
                self.state[name] = "streaming" if changes["enabled"] else "paused"
        return self.source(name)

    def watch(self, name: str) -> AbstractContextManager[Watcher]:
        self.source(name)  # UnknownSource
        return self.tap.watch(name)

    def play(self, rate: float, stop: threading.Event) -> None:
        tick = 0
        while not stop.wait(1.0 / rate):
            with self._lock:
                playing = [(n, m) for n, m in self.messages.items() if self.state[n] == "streaming" and m]
                for name, _ in playing:
                    self.received[name] += 1
            for name, messages in playing:
                self.tap.offer(messages[tick % len(messages)])
            tick += 1


def wait_for(check: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
