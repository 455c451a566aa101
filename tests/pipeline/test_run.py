"""End-to-end runs through real PyAV decode with an engine whose output is known."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.core.config import load_config
from pipeline.core.messages import validate_message
from pipeline.run.runner import run
from support import BlobEngine, blob_scene
from pycocotools import mask as mask_utils


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def config(tmp_path: Path, sources: list, **extra):
    sources = [s if isinstance(s, dict) else str(s) for s in sources]
    overrides = {"sources": sources, "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"], **extra}
    return load_config(None, overrides)


@pytest.mark.parametrize("max_batch", [1, 4])
def test_every_frame_of_every_file_gives_one_message_in_order(tmp_path, videos, max_batch):
    summary = run(config(tmp_path, [videos["a"], videos["b"]], **{"batch.max_batch": max_batch}), BlobEngine())
    assert summary.exit_code == 0
    messages = read_jsonl(tmp_path / "out.jsonl")
    assert len(messages) == 40 + 25
    for source, frames in (("a.mp4", 40), ("b.mp4", 25)):
        mine = [m for m in messages if m["source"] == source]
        assert [m["seq"] for m in mine] == list(range(frames))
        assert [m["pts"] for m in mine] == pytest.approx([i / 25 for i in range(frames)])
    assert len({m["event_id"] for m in messages}) == len(messages)
    assert summary.counts["postprocess"] == 65
    assert max(summary.batch_sizes) <= max_batch


def test_messages_are_valid_and_deterministic(tmp_path, videos):
    run(config(tmp_path, [videos["b"]]), BlobEngine())
    first = read_jsonl(tmp_path / "out.jsonl")
    for message in first:
        assert validate_message(message) == []
    run(config(tmp_path, [videos["b"]]), BlobEngine())
    second = read_jsonl(tmp_path / "out.jsonl")
    assert [m["event_id"] for m in first] == [m["event_id"] for m in second]
    assert [m["detections"] for m in first] == [m["detections"] for m in second]
    assert set(first[0]["latency_ms"]) == {"decode", "preprocess", "detect", "postprocess", "track", "total"}


def _match(detected: list[dict], truth: list[tuple[int, tuple[float, ...]]], tolerance: float) -> None:
    assert len(detected) == len(truth), (detected, truth)
    for class_id, box in truth:
        same = [d for d in detected if d["class_id"] == class_id]
        assert len(same) == 1
        assert np.abs(np.array(same[0]["box"]) - np.array(box)).max() <= tolerance, (same[0]["box"], box)


def test_boxes_land_in_source_pixels(tmp_path, videos):
    # a: 640x360 into a 256x320 input -> scale 0.5, letterboxed with 76 rows of padding
    run(config(tmp_path, [videos["a"]]), BlobEngine(input_size=(256, 320)))
    for message in read_jsonl(tmp_path / "out.jsonl"):
        truth = [(b.class_id, b.box) for b in blob_scene(message["seq"], 640, 360)]
        _match(message["detections"], truth, tolerance=4.0)


def test_rotation_metadata_is_honoured(tmp_path, videos):
    # stored 640x360 with a 90 degree counter-clockwise display rotation -> 360x640 frames
    run(config(tmp_path, [videos["rotated"]]), BlobEngine(input_size=(256, 320)))
    messages = read_jsonl(tmp_path / "out.jsonl")
    assert len(messages) == 20
    for message in messages:
        assert (message["width"], message["height"]) == (360, 640)
        # a stored pixel (x, y) is displayed at (y, 639 - x)
        truth = [
            (b.class_id, (b.box[1], 640 - b.box[2], b.box[3], 640 - b.box[0]))
            for b in blob_scene(message["seq"], 640, 360)
        ]
        _match(message["detections"], truth, tolerance=5.0)


def test_stride_and_max_fps_keep_a_subset(tmp_path, videos):
    run(config(tmp_path, [{"uri": str(videos["a"]), "stride": 3}]), BlobEngine())
    assert [m["pts"] for m in read_jsonl(tmp_path / "out.jsonl")] == pytest.approx([i * 3 / 25 for i in range(14)])
    run(config(tmp_path, [{"uri": str(videos["a"]), "max_fps": 5}]), BlobEngine())
    assert [m["pts"] for m in read_jsonl(tmp_path / "out.jsonl")] == pytest.approx([i * 0.2 for i in range(8)])


def test_max_frames_stops_each_source(tmp_path, videos):
    summary = run(config(tmp_path, [videos["a"], videos["b"]], max_frames=7), BlobEngine())
    messages = read_jsonl(tmp_path / "out.jsonl")
    assert sorted((m["source"], m["seq"]) for m in messages) == sorted(
        [("a.mp4", i) for i in range(7)] + [("b.mp4", i) for i in range(7)]
    )
    assert summary.exit_code == 0


def test_masks_are_pasted_into_the_source_frame(tmp_path, videos):
    run(config(tmp_path, [videos["a"]], max_frames=5), BlobEngine(input_size=(256, 320), masks=True))
    for message in read_jsonl(tmp_path / "out.jsonl"):
        assert validate_message(message) == []
        for det in message["detections"]:
            rle = {"size": det["mask"]["size"], "counts": det["mask"]["counts"].encode()}
            mask = mask_utils.decode(rle)
            ys, xs = np.nonzero(mask)
            x1, y1, x2, y2 = det["box"]
            # an all-ones mask logit fills its box
            assert abs(xs.min() - x1) <= 2 and abs(xs.max() + 1 - x2) <= 2
            assert abs(ys.min() - y1) <= 2 and abs(ys.max() + 1 - y2) <= 2


def test_video_sink_writes_one_annotated_frame_per_message(tmp_path, videos):
    sinks = [f"jsonl:{tmp_path / 'out.jsonl'}", f"video:{tmp_path / 'annotated.mp4'}"]
    summary = run(config(tmp_path, [videos["a"], videos["b"]], sinks=sinks), BlobEngine())
    assert summary.exit_code == 0
    for stem, frames, size in (("a", 40, (640, 360)), ("b", 25, (320, 180))):
        with av.open(str(tmp_path / f"annotated-{stem}.mp4")) as container:
            decoded = list(container.decode(video=0))
        assert len(decoded) == frames
        assert (decoded[0].width, decoded[0].height) == size
        # boxes are drawn: the annotated frame differs from the source at the box edges
        image = decoded[5].to_ndarray(format="rgb24")
        x1, y1, x2, y2 = blob_scene(5, *size)[0].box
        assert np.abs(image[y1 + 1 : y2 - 1, x1].astype(int) - image[y1 + 1 : y2 - 1, x1 + 8]).mean() > 20


def test_a_failing_stage_stops_the_run_cleanly(tmp_path, videos):
    summary = run(config(tmp_path, [videos["a"], videos["b"]]), BlobEngine(fail_on_call=3))
    assert summary.exit_code == 1
    assert "failing on purpose" in summary.stage_errors["detect"]
    assert summary.elapsed_s < 10
    # what was written before the failure is whole
    for message in read_jsonl(tmp_path / "out.jsonl"):
        assert validate_message(message) == []


def test_the_finish_line_and_the_summary_agree_on_counts(tmp_path, videos, caplog):
    """The file is read long before the slow detector is done: the line waits for the drain."""
    import logging

    with caplog.at_level(logging.INFO, logger="detstream"):
        summary = run(config(tmp_path, [str(videos["b"])]), BlobEngine(delay_s=0.01))
    (line,) = [r.getMessage() for r in caplog.records if "-> finished" in r.getMessage()]
    assert summary.health["b.mp4"]["processed"] == 25
    assert "received 25, processed 25," in line, line


def test_a_file_run_on_a_terminal_shows_a_frames_bar(tmp_path, videos):
    from io import StringIO

    from rich.console import Console

    from pipeline.core.context import RunContext
    from pipeline.run.progress import declared_total, file_progress

    cfg = config(tmp_path, [str(videos["b"]), str(videos["a"])], max_frames=30)
    assert declared_total(cfg) == 25 + 30
    screen = StringIO()
    ctx = RunContext()
    with file_progress(cfg, ctx, Console(file=screen, force_terminal=True, width=120)):
        summary = run(cfg, BlobEngine(delay_s=0.02), ctx)
    assert summary.counts["postprocess"] == 55
    assert "frames" in screen.getvalue() and "/55" in screen.getvalue() and "frames/s" in screen.getvalue()
    # not a terminal: no bar, nothing written
    quiet = StringIO()
    with file_progress(cfg, RunContext(), Console(file=quiet)):
        pass
    assert quiet.getvalue() == ""
