"""Camera capacity: how many 720p / 25 fps cameras this machine holds with `max_fps: 5` and
the default model while every camera keeps its latency bound (issue #21).

Method: step up the number of cameras, 1, 2, 3, ..., each one its own RTSP test server
(gst-rtsp-server, tests/rtsp/server.py) serving the demo clip (`detstream synth video`,
1280x720, 25 fps) re-encoded as a camera's H.264 stream (4 Mbit/s, a key frame every 2 s;
the one section 11 uses) and looped to the step's length. Each step is one `run` of the real
pipeline as `detstream run` builds it: the default model and engine (loaded by the run),
default live settings, `max_fps` on every source, a JSON lines sink. After the first frame
of every camera and a warm-up, a window of `seconds` is measured. The capacity is the
largest N such that every step up to N held; the run stops after the first failing step
(and `extra_steps` more, to show whether that failure was noise) or at `max_cameras`.

The bound, for every camera, over the window:
  (a) frame age p99 <= the source's `max_age_ms` (1000 ms by default). Age = when the
      result left the pipeline's last stage - when the camera produced the frame, on the
      camera's clock (its pts mapped to wall clock, as bench/live_overload.py does), so a
      decoder falling behind shows as growing age, not as fewer frames;
  (b) at most 5 % of the frames `max_fps` admits are dropped (queue full or too old),
      i.e. about `max_fps` messages/s;
  (c) it stayed connected: messages came, no reconnect.
Reported per step: per-camera messages/s, age p50/p99, drop fraction; the CPU of the
detstream process (this one: the cameras are subprocesses) and of the test servers, in %
of one core, and the process RSS.

    .venv/bin/python -m bench.capacity [--max-cameras 12] [--seconds 45] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import (CAMERA_MBPS, DEMO_VIDEO, REPO, camera_video, ensure_video, machine, percentile,
                          print_result, process_cpu_s, read_timelines, rss_mb)

sys.path.insert(0, str(REPO / "tests"))  # the RTSP test server and the background run
from rtsp_support import BackgroundRun, RtspServer  # noqa: E402

if TYPE_CHECKING:
    from engines.base import Engine

MAX_FPS = 5.0
WARMUP_S = 10.0  # after every camera's first frame: engine warm-up and connection start-up are not steady state
CONNECT_TIMEOUT_S = 180.0  # the run loads the model first: slow on a busy machine


@dataclass(frozen=True)
class Bound:
    """What "every camera keeps its latency bound" means; `check` says how a camera broke it."""

    max_age_ms: float = 1000.0  # the sources' default max_age_ms
    max_drop: float = 0.05

    def check(self, camera: dict) -> list[str]:
        """Why `camera` (one row of a step) broke the bound; empty when it held."""
        if camera["messages"] == 0:
            return ["no message"]
        reasons = []
        if camera["age_ms"]["p99"] > self.max_age_ms:
            reasons.append(f"age p99 {camera['age_ms']['p99']} ms > {self.max_age_ms:g} ms")
        if camera["drop_fraction"] > self.max_drop:
            reasons.append(f"dropped {camera['drop_fraction']:.1%} > {self.max_drop:.0%}")
        if camera["reconnects"]:
            reasons.append(f"{camera['reconnects']} reconnect(s)")
        return reasons

    def describe(self) -> str:
        return (f"every camera: frame age p99 <= {self.max_age_ms:g} ms (camera clock), at most "
                f"{self.max_drop:.0%} of the frames max_fps admits dropped, no reconnect")


def looped_clip(video: Path, seconds: float, out: Path) -> Path:
    """`video` repeated (stream copy, pts running on) until it lasts `seconds`: the test
    server plays a file once, and a step must not see its cameras reconnect."""
    import av

    with av.open(str(video)) as source, av.open(str(out), mode="w", format="mp4") as sink:
        template = source.streams.video[0]
        packets = [p for p in source.demux(template) if p.dts is not None]
        stamps = [(p.pts, p.dts) for p in packets]  # muxing rescales a packet's own stamps
        length = max(pts for pts, _ in stamps) + stamps[1][0] - stamps[0][0]  # one frame past the last, time-base units
        stream = sink.add_stream_from_template(template)
        for loop in range(int(seconds / float(length * template.time_base)) + 1):
            for packet, (pts, dts) in zip(packets, stamps):
                packet.pts, packet.dts, packet.time_base = pts + loop * length, dts + loop * length, template.time_base
                packet.stream = stream
                sink.mux(packet)
    return out


def camera_rows(names: list[str], window: tuple[float, float], before: dict[str, dict], after: dict[str, dict],
                out: Path, bound: Bound) -> list[dict]:
    """Per camera over the window: messages, ages on the camera clock, drops and reconnects
    (health counters at the window's start and end)."""
    timelines, _ = read_timelines(out, names)
    start, end = window
    rows = []
    for name in names:
        timeline = timelines[name]
        ages = [a for a, d in zip(timeline.ages(), timeline.done) if start <= d <= end]
        received = after[name]["received"] - before[name]["received"]
        dropped = {cause: n - before[name]["dropped"].get(cause, 0) for cause, n in after[name]["dropped"].items()}
        row = {
            "camera": name,
            "messages": len(ages),
            "messages_per_s": round(len(ages) / (end - start), 2),
            "age_ms": {"p50": round(percentile(ages, 0.5) * 1000), "p99": round(percentile(ages, 0.99) * 1000)}
            if ages else {"p50": None, "p99": None},
            "received": received,
            "dropped": {c: n for c, n in dropped.items() if n},
            "drop_fraction": round(sum(dropped.values()) / received, 4) if received else 0.0,
            "reconnects": after[name]["reconnects"] - before[name]["reconnects"],
        }
        row["broken"] = bound.check(row)
        rows.append(row)
    return rows


def step(urls: list[str], seconds: float, warmup: float, out: Path, servers: list[int], bound: Bound,
         engine: Engine | None = None) -> dict:
    """One run with a camera per URL; `engine` None: the run loads the default model itself."""
    from pipeline.core.config import load_config

    names = [f"cam{i}" for i in range(len(urls))]
    config = load_config(None, {"sources": [{"uri": u, "name": n, "max_fps": MAX_FPS, "max_age_ms": bound.max_age_ms}
                                            for u, n in zip(urls, names)],
                                "sinks": [f"jsonl:{out}"]})
    run = BackgroundRun(config, engine)
    try:
        run.wait_for(lambda: all(n in run.ctx.health and run.health(n)["received"] > 0 for n in names),
                     CONNECT_TIMEOUT_S, "the first frame of every camera")
        time.sleep(warmup)
        cpu = process_cpu_s(), sum(process_cpu_s(pid) for pid in servers)
        before, start = {n: run.health(n) for n in names}, time.time()
        rss: list[float] = []
        while (left := start + seconds - time.time()) > 0:
            rss.append(rss_mb())
            time.sleep(min(1.0, left))
        after, end = {n: run.health(n) for n in names}, time.time()
        used = process_cpu_s() - cpu[0], sum(process_cpu_s(pid) for pid in servers) - cpu[1]
    finally:
        summary = run.stop(60)
    cameras = camera_rows(names, (start, end), before, after, out, bound)
    broken = [f"{c['camera']}: {', '.join(c['broken'])}" for c in cameras if c["broken"]]
    if summary.source_errors or summary.stage_errors:
        broken.append(f"run errors: {summary.source_errors or summary.stage_errors}")
    return {
        "cameras": len(urls),
        "seconds": round(end - start, 1),
        "held": not broken,
        "broken": broken,
        "cpu_percent": round(100 * used[0] / (end - start)),  # of one core; the machine has os.cpu_count()
        "servers_cpu_percent": round(100 * used[1] / (end - start)),
        "rss_mb_max": round(max(rss)),
        "worst": worst(cameras),
        "per_camera": cameras,
    }


def worst(cameras: list[dict]) -> dict:
    """The step's figures a table shows: the range of messages/s, the worst camera's ages and drops."""
    ages = [c["age_ms"] for c in cameras if c["messages"]]
    rates = [c["messages_per_s"] for c in cameras]
    return {"messages_per_s": [min(rates), max(rates)],
            "age_p50_ms": max((a["p50"] for a in ages), default=None),
            "age_p99_ms": max((a["p99"] for a in ages), default=None),
            "drop_fraction": max(c["drop_fraction"] for c in cameras)}


def capacity(steps: list[dict]) -> int:
    """The largest N such that every step up to N held (0 when one camera already fails)."""
    held = 0
    for row in sorted(steps, key=lambda s: s["cameras"]):
        if not row["held"]:
            break
        held = row["cameras"]
    return held


def camera_stream(demo: Path = DEMO_VIDEO) -> Path:
    """The cameras' clip: the demo video (generated first if need be) at a camera's bit rate."""
    ensure_video(demo)
    return camera_video(demo, CAMERA_MBPS)


def measure(max_cameras: int, seconds: float, workdir: Path, warmup: float = WARMUP_S, extra_steps: int = 1,
            video: Path | None = None, engine: Engine | None = None, bound: Bound = Bound()) -> dict:
    """Step up from one camera until a step fails (then `extra_steps` more) or `max_cameras`.
    `video`: the cameras' clip (default `camera_stream()`)."""
    import av

    from pipeline.core.config import DEFAULT_MODEL

    video = video or camera_stream()
    # the server starts a file when a camera connects, after the model has loaded: the clip
    # must last the connection, the warm-up, the window and the stop
    clip = looped_clip(video, warmup + seconds + 60, workdir / "camera.mp4")
    with av.open(str(video)) as container:
        context = container.streams.video[0].codec_context
        camera = f"{context.width}x{context.height} H.264, {float(container.streams.video[0].average_rate):g} fps"
    servers: list[RtspServer] = []
    steps: list[dict] = []
    try:
        for n in range(1, max_cameras + 1):
            servers += [RtspServer(clip).start() for _ in range(n - len(servers))]
            row = step([s.url() for s in servers], seconds, warmup, workdir / f"step-{n}.jsonl",
                       [s.process.pid for s in servers if s.process], bound, engine)
            steps.append(row)
            print(format_step(row), file=sys.stderr, flush=True)
            failed = [s for s in steps if not s["held"]]
            if failed and n - failed[0]["cameras"] >= extra_steps:
                break
    finally:
        for server in servers:
            server.stop()
    found = capacity(steps)
    return {"camera": f"{camera}, RTSP over TCP from {video.name} looped", "video": str(video), "max_fps": MAX_FPS,
            "model": DEFAULT_MODEL if engine is None else engine.info.name,
            "bound": {"max_age_ms": bound.max_age_ms, "max_drop": bound.max_drop, "text": bound.describe()},
            "warmup_s": warmup, "window_s": seconds, "max_cameras": max_cameras, "capacity": found,
            # every step passed up to the limit: the machine may hold more
            "at_limit": found == max_cameras, "steps": steps}


def format_step(row: dict) -> str:
    """One line per step, as the table prints it."""
    w = row["worst"]
    return (f"{row['cameras']:>3} {w['messages_per_s'][0]:>6.2f}-{w['messages_per_s'][1]:<5.2f} {w['age_p50_ms']!s:>7} "
            f"{w['age_p99_ms']!s:>7} {w['drop_fraction']:>6.1%} {row['cpu_percent']:>5}% {row['servers_cpu_percent']:>5}% "
            f"{row['rss_mb_max']:>6}  {'held' if row['held'] else 'BROKEN: ' + '; '.join(row['broken'])}")


def table(result: dict) -> str:
    header = "  N msgs/s/camera  age p50 age p99  drop   CPU servers RSS MB  verdict (worst camera)"
    lines = [f"bound: {result['bound']['text']}", header, *map(format_step, result["steps"])]
    more = " or more (every step held up to --max-cameras)" if result["at_limit"] else ""
    lines.append(f"capacity: {result['capacity']} camera(s){more} at max_fps {result['max_fps']:g}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-cameras", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=45.0, help="measured window of each step, after the warm-up")
    parser.add_argument("--warmup", type=float, default=WARMUP_S)
    parser.add_argument("--extra-steps", type=int, default=1, help="steps run after the first failing one")
    parser.add_argument("--video", type=Path, help="the cameras' H.264 clip (default: the demo video at 4 Mbit/s, made "
                        "into data/ when missing)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    load, started = os.getloadavg()[0], datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.max_cameras, args.seconds, Path(tmp), args.warmup, args.extra_steps, args.video)
    print_result({"machine": machine(), "load_average_at_start": load, "started": started, **result}, args.json)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
