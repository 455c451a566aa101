"""Per-stage metrics of real runs (real PyAV decode, the blob engine) and their parts."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from pipeline.core.config import load_config
from pipeline.core.context import RunContext
from pipeline.core.metrics import Metrics
from pipeline.run.runner import run
from pipeline.core.trace import Trace
from pipeline.core.types import Frame
from support import BlobEngine


def config(tmp_path: Path, sources: list[Path], sinks: int = 1, **extra):
    overrides = {
        "sources": [str(s) for s in sources],
        "sinks": [f"jsonl:{tmp_path / f'out{i}.jsonl'}" for i in range(sinks)],
        **extra,
    }
    return load_config(None, overrides)


def frame(source: str = "cam", seq: int = 0, **stamps: float) -> Frame:
    item = Frame(source, seq, 0.0, 0.0, np.zeros((2, 2, 3), np.uint8))
    item.stamps.update(stamps)
    return item


def test_every_stage_counts_every_frame_and_times_it(tmp_path, videos):
    cfg = config(tmp_path, [videos["a"], videos["b"]], sinks=2, **{"batch.max_batch": 2})
    summary = run(cfg, BlobEngine(delay_s=0.1))  # a slow engine: detect is the bottleneck
    snapshot = summary.metrics
    stages = snapshot["stages"]
    sinks = [f"sink[jsonl:{tmp_path / f'out{i}.jsonl'}]" for i in range(2)]
    assert list(stages) == ["decode[a.mp4]", "decode[b.mp4]", "preprocess", "detect", "postprocess", "track", *sinks]
    assert stages["decode[a.mp4]"]["frames_out"] == 40 and stages["decode[b.mp4]"]["frames_out"] == 25
    for name in ("preprocess", "detect", "postprocess", "track", *sinks):
        assert stages[name]["frames_in"] == stages[name]["frames_out"] == 65, name
        assert stages[name]["queue_wait_ms"]["count"] == 65, name
    assert summary.counts == {name: stage["frames_out"] for name, stage in stages.items()}
    for i in range(2):  # what the sinks counted is what they wrote
        assert len((tmp_path / f"out{i}.jsonl").read_text().splitlines()) == 65
    for name, stage in stages.items():
        assert stage["service_ms"]["count"] == stage["frames_out"]
        assert stage["batch_service_ms"]["count"] == stage["batches"]
        assert 0 < stage["busy"] <= 1 and stage["fps"] > 0
        assert stage["errors"] == 0 and stage["drops"] == {}
    assert stages["detect"]["batches"] == sum(summary.batch_sizes.values())
    assert snapshot["bottleneck"] == "detect"
    # per source: health from pipeline/health.py, latency per sink, one sample per frame
    for source, frames in (("a.mp4", 40), ("b.mp4", 25)):
        entry = snapshot["sources"][source]
        assert entry["health"]["received"] == entry["health"]["processed"] == frames
        assert entry["health"]["state"] == "finished"
        assert set(entry["latency_ms"]) == set(sinks)
        for latency in entry["latency_ms"].values():
            assert latency["count"] == frames
            assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    queues = snapshot["queues"]
    assert queues["source[a.mp4]"] == {"consumer": "preprocess", "depth": 0, "capacity": 8}
    assert queues["batches"]["consumer"] == "detect" and queues["results"]["consumer"] == "postprocess"
    assert stages["preprocess"]["queue_depth"] == 0 and stages["decode[a.mp4]"]["queue_depth"] is None


def test_metrics_off_times_nothing_but_still_counts_frames(tmp_path, videos):
    summary = run(config(tmp_path, [videos["b"]], **{"metrics.enabled": False}), BlobEngine())
    assert summary.exit_code == 0 and summary.counts["postprocess"] == 25
    assert summary.metrics["enabled"] is False
    for stage in summary.metrics["stages"].values():
        assert stage["frames_out"] == 25  # frame counts are the run summary's: always on
        assert stage["service_ms"]["count"] == stage["queue_wait_ms"]["count"] == 0 and stage["busy_s"] == 0
    assert summary.metrics["bottleneck"] is None


def test_a_failing_stage_counts_an_error(tmp_path, videos):
    summary = run(config(tmp_path, [videos["b"]]), BlobEngine(fail_on_call=2))
    assert summary.exit_code == 1
    assert summary.metrics["stages"]["detect"]["errors"] == 1
    assert summary.metrics["stages"]["detect"]["frames_out"] == 1


def test_a_missing_file_counts_an_error_on_its_decoder(tmp_path, videos):
    summary = run(config(tmp_path, [videos["b"], tmp_path / "missing.mp4"]), BlobEngine())
    stages = summary.metrics["stages"]
    assert stages["decode[missing.mp4]"]["errors"] == 1 and stages["decode[b.mp4]"]["errors"] == 0
    assert summary.metrics["sources"]["missing.mp4"]["health"]["state"] == "failed"


def test_periodic_fps_line(tmp_path, videos, caplog):
    caplog.set_level(logging.INFO, logger="detstream")
    run(config(tmp_path, [videos["b"]], **{"metrics.log_every_s": 0.2}), BlobEngine(delay_s=0.05))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fps: ")]
    assert lines and "decode[b.mp4] " in lines[0] and "| detect " in lines[0]


def test_queue_wait_runs_from_the_latest_stamp_and_service_is_shared_by_a_batch():
    metrics = Metrics({})
    stage = metrics.stage("detect")
    metrics.register(stage)
    now = time.monotonic()
    frames = [frame(seq=i, start=now - 1000.0, preprocess=now - 0.2) for i in range(4)]
    started = stage.arrived(frames)
    stage.served(frames, started - 0.4)  # a batch that took (at least) 0.4 s
    wait = stage.queue_wait.snapshot()
    assert wait.count == 4 and 0.2 <= wait.min and wait.max < 500  # not from "start"
    assert stage.batch_service.snapshot().count == 1 and stage.service.snapshot().count == 4
    assert stage.service.snapshot().min >= 0.1  # 0.4 s shared by 4 frames
    stage.drop("too_old", 2)
    view = metrics.snapshot()["stages"]["detect"]
    assert (view["frames_in"], view["frames_out"], view["batches"], view["drops"]) == (4, 4, 1, {"too_old": 2})
    assert view["busy_s"] >= 0.4


def test_unregistered_stages_stay_out_of_snapshots():
    metrics = Metrics({})
    metrics.stage("decode[never started]")
    assert metrics.snapshot()["stages"] == {} and metrics.elapsed_s == 0.0


def test_trace_keeps_at_most_its_limit_and_counts_the_rest():
    ctx = RunContext(trace=Trace(limit=5))
    stage = ctx.metrics.stage("preprocess")
    ctx.metrics.register(stage)
    stage.thread_started()
    for seq in (0, 3):
        stage.served([frame(seq=seq), frame(seq=seq + 1), frame(seq=seq + 2)], time.monotonic())
    trace = ctx.metrics.trace
    assert trace is not None and (trace.events, trace.dropped) == (3, 3)
    chrome = trace.to_chrome()
    spans = [e for e in chrome["traceEvents"] if e["ph"] == "X"]
    assert [e["args"]["seq"] for e in spans] == [0, 1, 2]
    assert all(e["args"]["batch"] == 3 and e["name"] == "preprocess" for e in spans)
    assert chrome["otherData"] == {"spans": 3, "limit": 5, "dropped_spans": 3}
