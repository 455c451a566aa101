"""Small pieces: payload shape checks, geometry, queues, message validation."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import torch

from pipeline.core.messages import Message, event_id, to_message, validate_message
from pipeline.core.queues import Aborted, Channel, SourceMux
from pipeline.core.types import Detections, Frame, FrameBatch, Geometry, Inference, RawOutput
from engines.inputs import letterbox_size
from stages.sinks.video import output_paths


def frame(source: str = "cam", seq: int = 0) -> Frame:
    return Frame(source, seq, 0.04 * seq, 1.7e9, np.zeros((90, 160, 3), np.uint8))


def test_detections_say_expected_and_actual_shape():
    with pytest.raises(ValueError, match=r"Detections.boxes: expected shape \(2, 4\), got \(2, 5\)"):
        Detections(frame(), np.zeros((2, 5)), np.zeros(2), np.zeros(2, np.int64), ["a", "b"])
    with pytest.raises(ValueError, match="expected 2 labels, got 1"):
        Detections(frame(), np.zeros((2, 4)), np.zeros(2), np.zeros(2, np.int64), ["a"])


def test_geometry_undoes_the_letterbox_and_clips():
    assert letterbox_size((720, 1280), (320, 576)) == (320, 569)
    geometry = Geometry(source_size=(720, 1280), resized_size=(320, 569))
    boxes = torch.tensor([[0.0, 0.0, 284.5, 160.0], [500.0, 300.0, 600.0, 320.0]])
    back = geometry.to_source(boxes)
    assert back[0].tolist() == pytest.approx([0, 0, 640, 360], abs=0.01)
    assert back[1, 2] == 1280  # clipped to the frame (the box reached into the padding)


def test_mux_is_round_robin_across_sources():
    abort = threading.Event()
    mux = SourceMux(["a", "b", "c"], maxsize=10, abort=abort)
    for i in range(6):
        mux.put("a", ("a", i))
    mux.put("b", ("b", 0))
    mux.put("c", ("c", 0))
    batch = mux.get_batch(3, 0.0)
    assert sorted(s for s, _ in batch) == ["a", "b", "c"]  # a's backlog does not starve b and c
    assert [item for item in mux.get_batch(10, 0.0)] == [("a", i) for i in range(1, 6)]


def test_mux_signals_the_end_only_when_drained():
    mux = SourceMux(["a"], maxsize=4, abort=threading.Event())
    mux.put("a", 1)
    mux.close("a")
    assert mux.get_batch(4, 0.0) == [1]
    assert mux.get_batch(4, 0.0) is None


def test_blocked_queues_wake_up_on_abort():
    abort = threading.Event()
    channel = Channel(1, abort)
    channel.put(1)
    mux = SourceMux(["a"], maxsize=1, abort=abort)
    mux.put("a", 1)
    errors: list[str] = []

    def blocked(call) -> None:
        try:
            call()
        except Aborted:
            errors.append("aborted")

    threads = [threading.Thread(target=blocked, args=(lambda: channel.put(2),)),
               threading.Thread(target=blocked, args=(lambda: mux.put("a", 2),))]
    for t in threads:
        t.start()
    time.sleep(0.2)
    abort.set()
    for t in threads:
        t.join(timeout=2)
    assert errors == ["aborted", "aborted"]


def test_event_ids_are_deterministic_and_distinct():
    assert event_id("cam", 3) == event_id("cam", 3)
    assert len({event_id("cam", i) for i in range(1000)} | {event_id("cam2", 0)}) == 1001


def test_validation_catches_what_consumers_rely_on():
    det = Detections(frame(seq=2), np.array([[1, 2, 30, 40]], np.float32), np.array([0.8], np.float32),
                     np.array([1]), ["person"])
    message = to_message(det, "m")
    assert validate_message(message) == []
    assert "event_id does not match source and seq" in validate_message({**message, "seq": 3})
    broken = {**message, "detections": [{**message["detections"][0], "box": [50, 2, 30, 40]}]}
    assert any("is not [x1, y1, x2, y2]" in p for p in validate_message(broken))
    assert any("missing 'pts'" in p for p in validate_message({k: v for k, v in message.items() if k != "pts"}))


def test_video_output_names():
    assert output_paths("out/v.mp4", ["a.mp4"]) == {"a.mp4": __import__("pathlib").Path("out/v.mp4")}
    paths = output_paths("out/v.mp4", ["a.mp4", "b.mp4"])
    assert [p.name for p in paths.values()] == ["v-a.mp4", "v-b.mp4"]
    paths = output_paths("out/{source}.mp4", ["cam 1", "a.mkv"])
    assert [p.name for p in paths.values()] == ["cam_1.mp4", "a.mp4"]
    assert [p.name for p in output_paths("v.mp4", ["a.mp4", "a.mkv"]).values()] == ["v-a.mp4.mp4", "v-a.mkv.mp4"]


def test_inference_needs_one_output_per_frame():
    frames = [Frame("cam", i, 0.0, 0.0, np.zeros((4, 4, 3), np.uint8)) for i in range(2)]
    batch = FrameBatch(frames, torch.zeros(2, 3, 4, 4), [Geometry((4, 4), (4, 4))] * 2)
    empty = RawOutput(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64))
    assert len(Inference(batch, [empty, empty]).outputs) == 2
    with pytest.raises(ValueError, match="expected 2 outputs"):
        Inference(batch, [empty])


def test_a_message_is_serialised_once_and_every_sink_gets_that_line():
    frame = Frame("cam", 3, 0.12, 1.7e9, np.zeros((90, 160, 3), np.uint8))
    det = Detections(frame, np.array([[1, 2, 30, 40]], np.float32), np.array([0.9], np.float32), np.array([1]), ["person"])
    message = Message.of(det, "m")
    assert json.loads(message.line) == message.body == to_message(det, "m")
    assert "\n" not in message.line and validate_message(message.body) == []
