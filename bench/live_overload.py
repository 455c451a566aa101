"""Live latency under overload: N simulated 25 fps cameras (the real RTSP test server,
tests/rtsp/server.py) against a detector that cannot keep up (a fake engine sleeping
`delay` seconds per call, whatever the batch), detstream against the naive loop.

- detstream: `run` with default live settings (drop-oldest queues, max_age_ms 1000),
  max_batch N so one call can take a frame of each camera.
- naive loop: what a user writes: one `cv2.VideoCapture` per camera (RTSP over TCP, as
  detstream), read one frame of each in turn, one detector call on those N frames, write
  JSON lines. It never drops a frame, so frames wait in the socket buffers.

A frame's age is the wall-clock time its result is written minus the time the camera
produced it. The camera's clock is its stream timestamps (pts) mapped to wall clock by
the frame that arrived earliest relative to its pts (at connection, nothing is buffered),
on each side alike. Ages count from 2 s after the first result to the end of the run
(not the frames drained after it). Reported: age p50/p99/max, how fast age grows (least-squares slope,
seconds of age per second of run) and the drop rate, with detstream's per-stage latency
(median ms, queue waits included) to show where frames wait, whether every frame is
accounted for (received = processed + dropped) and the process RSS during the run.

    .venv/bin/python -m bench.live_overload [--sources 1 2] [--seconds 20] [--delay 0.25]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.common import (REPO, NaiveDetector, ages_s, machine, percentile, print_result, read_rgb, read_timelines,
                          rss_mb)
from pipeline.core.config import load_config
from pipeline.core.types import Frame, RawOutput

sys.path.insert(0, str(REPO / "tests"))  # the RTSP test server and the fake detector
from rtsp_support import BackgroundRun, RtspServer, write_live_clip  # noqa: E402
from support import BlobEngine  # noqa: E402

CAMERA_FPS = 25
TARGET_AGE_OVER_BATCH = 2.0  # p99 frame age within 2x the detector's per-batch time
WARMUP_S = 2.0  # ages count from this long after the first result: start-up is not steady state


class TimedEngine:
    """Wraps an engine and records how long each call took."""

    def __init__(self, engine: BlobEngine) -> None:
        self.engine = engine
        self.info = engine.info
        self.seconds: list[float] = []

    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[RawOutput]:
        started = time.perf_counter()
        try:
            return self.engine.infer(images, image_sizes)
        finally:
            self.seconds.append(time.perf_counter() - started)


def summarize(ages: dict[str, list[float]], done: dict[str, list[float]], dropped: int, received: int,
              engine: TimedEngine, seconds: float, stopped: float) -> dict:
    """Frame-age statistics over the steady state: results from WARMUP_S after the first
    one until the run was asked to stop (not the frames drained after that)."""
    start = min(d for source in done.values() for d in source)
    steady = [(d - start, a) for source in ages for d, a in zip(done[source], ages[source])
              if start + WARMUP_S <= d <= stopped]
    times, every = np.array([t for t, _ in steady]), [a for _, a in steady]
    slope = float(np.polyfit(times, np.array(every), 1)[0]) if len(every) > 1 else 0.0
    return {
        "seconds": round(seconds, 1),
        "processed": sum(len(source) for source in ages.values()),
        "aged": len(every),
        "received": received,
        "dropped": dropped,
        "drop_rate": round(dropped / received, 3) if received else 0.0,
        "age_ms": {"p50": round(statistics.median(every) * 1000), "p99": round(percentile(every, 0.99) * 1000),
                   "max": round(max(every) * 1000)},
        "age_growth_s_per_s": round(slope, 3),
        "batch_ms_median": round(statistics.median(engine.seconds) * 1000, 1),
        "calls": len(engine.seconds),
    }


def detstream_live(url: str, sources: int, seconds: float, delay: float, out: Path) -> dict:
    names = [f"cam{i}" for i in range(sources)]
    config = load_config(None, {"sources": [{"uri": url, "name": n} for n in names], "sinks": [f"jsonl:{out}"],
                                "batch.max_batch": sources})
    engine = TimedEngine(BlobEngine(delay_s=delay))
    run = BackgroundRun(config, engine)
    def streaming() -> bool:  # health entries appear once the run has built its stages
        return all(n in run.ctx.health and run.health(n)["received"] > 0 for n in names)

    run.wait_for(streaming, 30, "the first frame of every camera")
    rss: list[float] = []  # once a second: memory must stay flat while frames are dropped
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        rss.append(rss_mb())
        time.sleep(min(1.0, left))
    stopped = time.time()
    summary = run.stop()
    timelines, stage_ms = read_timelines(out, names)
    ages = {n: timelines[n].ages() for n in names}
    done = {n: timelines[n].done for n in names}
    health = [summary.health[n] for n in names]
    result = summarize(ages, done, sum(sum(h["dropped"].values()) for h in health),
                       sum(h["received"] for h in health), engine, seconds, stopped)
    result["dropped_by_cause"] = {cause: sum(h["dropped"].get(cause, 0) for h in health)
                                  for cause in sorted({c for h in health for c in h["dropped"]})}
    result["stage_latency_ms_median"] = {s: round(statistics.median(v), 1) for s, v in stage_ms.items()}
    # every frame accounted for: received = processed + dropped, per camera
    result["accounting_exact"] = all(h["received"] == h["processed"] + sum(h["dropped"].values()) for h in health)
    result["rss_mb"] = {"first": round(rss[0]), "last": round(rss[-1]), "max": round(max(rss))}
    return result


def naive_live(url: str, sources: int, seconds: float, delay: float, out: Path) -> dict:
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"  # as detstream's default
    engine = TimedEngine(BlobEngine(delay_s=delay))
    captures = [cv2.VideoCapture(url, cv2.CAP_FFMPEG) for _ in range(sources)]
    arrived: dict[int, list[float]] = {i: [] for i in range(sources)}
    done: dict[int, list[float]] = {i: [] for i in range(sources)}
    pts: dict[int, list[float]] = {i: [] for i in range(sources)}
    started = time.time()
    with out.open("w") as file:
        detect = NaiveDetector(engine, file)  # type: ignore[arg-type]
        while time.time() - started < seconds:
            frames = []
            for i, capture in enumerate(captures):
                image = read_rgb(capture)
                if image is None:
                    raise SystemExit(f"naive loop: camera {i} ended")
                arrived[i].append(time.time())
                pts[i].append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
                frames.append(Frame(source=f"cam{i}", seq=len(pts[i]) - 1, pts=pts[i][-1], capture_ts=arrived[i][-1], image=image))
            detect(frames)
            for i in range(sources):
                done[i].append(time.time())
    for capture in captures:
        capture.release()
    ages = {str(i): ages_s(arrived[i], done[i], pts[i]) for i in range(sources)}
    received = sum(len(p) for p in pts.values())
    return summarize(ages, {str(i): d for i, d in done.items()}, 0, received, engine, seconds, time.time())


def measure(sources: list[int], seconds: float, delay: float, workdir: Path) -> dict:
    clip = write_live_clip(workdir / "camera.mp4", seconds=seconds + 20, fps=CAMERA_FPS, width=640, height=360)
    server = RtspServer(clip).start()  # each client gets its own stream, from the start
    rows = []
    try:
        for n in sources:
            for name, method in (("detstream", detstream_live), ("naive loop", naive_live)):
                row = method(server.url(), n, seconds, delay, workdir / f"{name.replace(' ', '-')}-{n}.jsonl")
                rows.append({"method": name, "sources": n, **row})
    finally:
        server.stop()
    return {"camera": f"640x360 H.264, {CAMERA_FPS} fps, RTSP over TCP", "detector_delay_s": delay,
            "target_p99_over_batch": TARGET_AGE_OVER_BATCH, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_overload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--delay", type=float, default=0.25, help="detector seconds per call (0.25 = 4 calls/s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.sources, args.seconds, args.delay, Path(tmp))
    print_result({"machine": machine(), **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
