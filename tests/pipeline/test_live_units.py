"""Small pieces of live-source support: live detection, backoff, health,
drop-oldest queues, the age bound at the detector, live settings."""

from __future__ import annotations

import logging
import random
import threading
import time

import numpy as np
import pytest
import torch

from pipeline.core.backoff import Backoff
from pipeline.core.config import load_config
from pipeline.core.context import RunContext
from pipeline.core.errors import ConfigError
from pipeline.core.health import QUEUE_FULL, TOO_OLD, SourceHealth
from pipeline.core.messages import to_message, validate_message
from pipeline.core.queues import END, Aborted, Channel, SourceMux
from pipeline.core.types import FrameBatch, Detections, Frame, Geometry
from pipeline.core.urls import is_live_uri
from stages.detect import Detect
from support import BlobEngine


def test_config_errors_never_echo_credentials(tmp_path):
    path = tmp_path / "cams.yaml"
    path.write_text("sources:\n  - {uri: 'rtsp://admin:hunter2@cam/1', queue: sometimes}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "sources.0.queue = 'sometimes'" in str(info.value) and "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "uri, live",
    [("rtsp://cam/1", True), ("rtsps://cam/1", True), ("http://cam/mjpeg", True), ("https://x/live.m3u8", True),
     ("/dev/video0", True), ("https://host/clip.mp4", False), ("clip.mkv", False), ("/data/a.mp4", False)],
)
def test_which_uris_are_live(uri, live):
    assert is_live_uri(uri) is live


def test_live_policy_is_visible_and_overridable():
    config = load_config(None, {"sources": ["rtsp://cam/1", "a.mp4", {"uri": "http://h/x.mp4", "live": True},
                                            {"uri": "rtsp://cam/2", "queue": "block", "max_age_ms": None}]})
    cam, file, forced, blocking = config.sources
    assert (cam.is_live, cam.drops_oldest, cam.queue_capacity(8), cam.max_age_s) == (True, True, 2, 1.0)
    assert (file.is_live, file.drops_oldest, file.queue_capacity(8), file.max_age_s) == (False, False, 8, None)
    assert forced.is_live and forced.drops_oldest
    assert blocking.is_live and not blocking.drops_oldest and blocking.max_age_s is None
    assert cam.rtsp_transport == "tcp" and cam.reconnect.max_attempts is None  # forever


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter():
    exact = Backoff(0.5, 8.0, 0.0)
    assert [exact.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert exact.delay(10_000) == 8.0  # forever mode does not overflow
    jittered = Backoff(1.0, 30.0, 0.2, random.Random(1))
    delays = [jittered.delay(3) for _ in range(200)]
    assert all(3.2 <= d <= 4.8 for d in delays) and len(set(delays)) > 100


def test_backoff_counts_failures_until_reset():
    backoff = Backoff(0.05, 0.3, 0.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    backoff.reset()
    assert backoff.next_delay() == 0.05


def test_health_counts_sessions_and_logs_every_transition(caplog):
    health = SourceHealth("cam", live=True)
    with caplog.at_level(logging.INFO, logger="detstream"):
        health.streaming()
        health.stalled("no packet for 5 s")
        health.streaming()  # recovered in place: same session
        health.lost("end of stream")
        health.attempt_failed("refused", 1, 0.5)
        health.streaming()  # reconnected
        health.count_dropped(QUEUE_FULL)
        health.finished("stopped")
    snap = health.snapshot()
    assert (snap["session"], snap["reconnects"], snap["stalls"], snap["failed_attempts"]) == (1, 1, 1, 1)
    transitions = [r.getMessage() for r in caplog.records if "->" in r.getMessage()]
    assert [t.split(": ")[1].split(" (")[0] for t in transitions] == [
        "connecting -> streaming", "streaming -> stalled", "stalled -> streaming", "streaming -> reconnecting",
        "reconnecting -> streaming", "streaming -> finished",
    ]
    assert "reconnects 1, stalls 1" in transitions[-1] and "dropped queue_full 1" in transitions[-1]
    assert any("attempt 1 failed: refused; retrying in 0.5 s" in r.getMessage() for r in caplog.records)


def test_live_queue_keeps_the_newest_frames_without_blocking():
    mux = SourceMux(["cam", "file"], {"cam": 2, "file": 2}, threading.Event(), drop_oldest=frozenset({"cam"}))
    evicted = [mux.put("cam", i) for i in range(5)]
    assert evicted == [None, None, 0, 1, 2]
    assert mux.get_batch(4, 0.0) == [3, 4]
    mux.close("cam")
    assert mux.put("cam", 9) == 9  # closed: not queued, handed back to be counted


def test_on_demand_channel_lets_the_producer_wait_for_each_request():
    abort = threading.Event()
    channel = Channel(1, abort, on_demand=True)
    requested = threading.Event()

    def producer() -> None:
        for item in range(2):
            channel.wait_for_demand()
            requested.set()
            channel.put(item)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    assert not requested.wait(0.3)  # nobody asked: nothing is produced ahead
    assert channel.get() == 0  # the request wakes the producer, which answers it
    requested.clear()
    assert not requested.wait(0.3) and channel.qsize() == 0  # item 1 waits for the next request
    assert channel.get() == 1
    thread.join(1)
    assert not thread.is_alive()
    waiting = Channel(1, abort, on_demand=True)
    abort.set()
    with pytest.raises(Aborted):
        waiting.wait_for_demand()
    Channel(1, threading.Event()).wait_for_demand()  # not on demand: returns at once


def _frame(source: str, age_s: float) -> Frame:
    frame = Frame(source, 0, 0.0, 0.0, np.zeros((180, 320, 3), np.uint8))
    frame.stamps["decode"] = time.monotonic() - age_s
    return frame


def test_detector_drops_frames_past_their_max_age_and_counts_them():
    ctx = RunContext()
    ctx.health = {"cam": SourceHealth("cam", True), "file": SourceHealth("file", False)}
    batches, results = Channel(4, ctx.abort), Channel(4, ctx.abort)
    detect = Detect(BlobEngine(), batches, results, ctx, max_age_s={"cam": 0.5})
    frames = [_frame("cam", 2.0), _frame("cam", 0.0), _frame("file", 60.0)]
    geometry = [Geometry((180, 320), (180, 320))] * 3
    batches.put(FrameBatch(frames, torch.zeros(3, 3, 256, 320), geometry))
    batches.put(FrameBatch(frames[:1], torch.zeros(1, 3, 256, 320), geometry[:1]))  # all stale: no engine call
    batches.put(END)
    detect.work()
    inference = results.get()
    batch = inference.batch
    assert batch.frames == frames[1:] and len(inference.outputs) == 2 and tuple(batch.images.shape) == (2, 3, 256, 320)
    assert results.get() is END
    assert dict(detect.batch_sizes) == {2: 1}
    cam, file = ctx.health["cam"].snapshot(), ctx.health["file"].snapshot()
    assert cam["dropped"] == {TOO_OLD: 2} and cam["processed"] == 1
    assert file["dropped"] == {} and file["processed"] == 1  # files are never dropped


def test_messages_carry_the_session():
    frame = Frame("cam", 41, 0.52, 1.7e9, np.zeros((90, 160, 3), np.uint8), session=3)
    message = to_message(Detections(frame, np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), []), "m")
    assert message["session"] == 3 and message["seq"] == 41 and validate_message(message) == []
    assert any("'session'" in p for p in validate_message({**message, "session": -1}))
    older = {k: v for k, v in message.items() if k != "session"}
    assert validate_message(older) == []  # an additive field: v1 messages without it stay valid


def test_a_runs_finish_is_logged_once_the_counts_are_final(caplog):
    health = SourceHealth("file", live=False, finish_logged_later=True)
    with caplog.at_level(logging.INFO, logger="detstream"):
        health.streaming()
        health.count_received()
        health.count_received()
        health.finished()  # the reader is done; one frame is still in flight
        assert health.snapshot()["state"] == "finished"
        assert not any("-> finished" in r.getMessage() for r in caplog.records)
        health.count_processed(1.0)
        health.count_processed(1.0)
        health.log_finish()  # the runner, after the drain
        health.log_finish()  # once only
    finished = [r.getMessage() for r in caplog.records if "-> finished" in r.getMessage()]
    assert len(finished) == 1 and "streaming -> finished" in finished[0] and "received 2, processed 2" in finished[0]
