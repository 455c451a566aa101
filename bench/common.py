"""What the benchmark scripts share: the machine they ran on, the demo video and its
engine package, a camera-like stream made from it, the `--model/--video/--json` options, one `detstream run` and its
frames/s, the detector alone on pre-decoded frames, the naive loop a user would write,
printing a result as JSON, and what the live benchmarks share: a process's RSS and CPU
time from /proc, percentiles, and frame ages on the camera's clock read from JSON lines.

Rule: nothing heavy is imported at module level (torch, PyAV, OpenCV, the pipeline load
inside the function that needs them), so a script that needs only `cpu_name` or
`print_result` (bench/redis_publish.py, `run_all --render-only`) starts at once.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO

if TYPE_CHECKING:
    import cv2
    import numpy as np
    import torch

    from engines.base import Engine
    from engines.inputs import Normalizer
    from pipeline.core.types import Frame
    from pipeline.run.runner import RunSummary

REPO = Path(__file__).resolve().parents[1]
DEMO_VIDEO = REPO / "data" / "demo.mp4"
CAMERA_MBPS = 4.0  # a 720p IP camera's usual main stream
# the tracking section's counting lines (sources[].lines entries): three across the street (the
# synthetic scenes' objects move sideways: most cross them) and one along the near pavement
# (people walk along it: a box's bottom, moved by feet hidden behind others, crosses it and back)
COUNTING_LINES = [
    *({"name": f"vertical-{x}", "points": [[x, 1.0], [x, 0.0]], "coordinates": "normalized"} for x in (0.25, 0.5, 0.75)),
    {"name": "horizontal", "points": [[0.0, 0.75], [1.0, 0.75]], "coordinates": "normalized"},
]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg, redis-benchmark, detstream)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def machine() -> dict:
    """What every report says it ran on."""
    import torch

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def print_result(result: dict, path: Path | None) -> None:
    """Print the result as JSON, and write it to `path` too when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")


def ensure_video(video: Path) -> None:
    """The demo video, generated as `make demo` does if it is not there yet."""
    if not video.exists():
        subprocess.run([sys.executable, "-m", "synth", "video", str(video), "--seed", "7",
                        "--size", "1280x720", "--fps", "25", "--seconds", "10"], check=True)


def camera_video(source: Path, mbps: float) -> Path:
    """`source` re-encoded as a camera's stream at `mbps` Mbit/s (made once, into data/)."""
    from fractions import Fraction

    import av

    target = REPO / "data" / f"bench-camera-{mbps:g}mbps.mp4"
    if target.exists():
        return target
    print(f"generating {target}", file=sys.stderr, flush=True)
    with av.open(str(source)) as reader, av.open(str(target), mode="w") as writer:
        rate = reader.streams.video[0].average_rate
        stream = writer.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.bit_rate = int(mbps * 1e6)
        gop = str(round(2 * rate))
        stream.options = {"preset": "veryfast", "g": gop, "keyint_min": gop, "sc_threshold": "0", "bf": "0",
                          "maxrate": f"{mbps:g}M", "bufsize": f"{2 * mbps:g}M"}
        for index, frame in enumerate(reader.decode(video=0)):
            image = frame.reformat(width=1280, height=720, format="yuv420p")
            image.pts, image.time_base = index, Fraction(1, int(rate))
            writer.mux(stream.encode(image))
        writer.mux(stream.encode(None))
    return target


def as_package(model: str, workdir: Path) -> str:
    """`model` itself if it is an engine package, else its export into `workdir` (exported
    once per model and workdir, so the sections of one run share it)."""
    from engines.export import export_package

    if (Path(model) / "package.json").exists():
        return model
    folder = workdir / ("package-" + model.replace(":", "-").replace("/", "-"))
    if (folder / "package.json").exists():
        return str(folder)
    return str(export_package(model, folder).root)


def demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every demo-video benchmark takes: --model, --video, --json."""
    from pipeline.core.config import DEFAULT_MODEL

    parser.add_argument("--model", default=DEFAULT_MODEL, help="model to export (or an engine package)")
    parser.add_argument("--video", type=Path, default=DEMO_VIDEO)
    parser.add_argument("--json", type=Path, help="also write the results here")


def run_fps(summary: RunSummary) -> float:
    """Frames/s of a finished run; a failed run is an error, not a number."""
    if summary.exit_code:
        raise SystemExit(f"detstream run failed: {summary.source_errors or summary.stage_errors}")
    return summary.counts["postprocess"] / summary.elapsed_s


def pipeline_run(
    model: str,
    videos: list[Path],
    batch: int,
    backend: str = "auto",
    sinks: tuple[str, ...] = (),
    max_frames: int | None = None,
    engine: Engine | None = None,
) -> RunSummary:
    """`detstream run` on `videos`; `engine` (already loaded) is used instead of `model`."""
    from pipeline.core.config import load_config
    from pipeline.run.runner import run

    overrides = {"sources": [str(v) for v in videos], "model.path": model, "model.engine": backend,
                 "batch.max_batch": batch, "sinks": list(sinks), "max_frames": max_frames}
    summary = run(load_config(None, overrides), engine)
    if summary.exit_code:
        raise SystemExit(f"detstream run failed: {summary.source_errors or summary.stage_errors}")
    return summary


def detector_and_engine_alone(model: str, video: Path, frames: int, batch: int, backend: str = "auto") -> tuple[float, float]:
    """Frames/s of preprocess + engine in series on frames decoded beforehand, and frames/s
    of the engine calls alone in that same loop (the pipeline's bottleneck stage)."""
    import av

    from engines.inputs import Normalizer
    from engines.loading import load_engine

    engine = load_engine(model, backend=backend)
    normalize = Normalizer(engine.info)
    with av.open(str(video)) as container:
        images = [f.to_ndarray(format="rgb24") for _, f in zip(range(frames), container.decode(video=0))]
    engine.infer(*_prepared(normalize, images[:batch]))  # warm-up
    in_engine = 0.0
    started = time.perf_counter()
    for first in range(0, len(images), batch):
        prepared = _prepared(normalize, images[first : first + batch])
        called = time.perf_counter()
        engine.infer(*prepared)
        in_engine += time.perf_counter() - called
    return len(images) / (time.perf_counter() - started), len(images) / in_engine


def _prepared(normalize: Normalizer, images: list) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    batch, geometry = normalize(images)
    return batch, [g.resized_size for g in geometry]


class NaiveDetector:
    """The naive loop's detection code, called on each frame (or on one frame per camera):
    normalize, infer, select, one JSON line per frame. Same pre- and postprocessing as the
    pipeline."""

    def __init__(self, engine: Engine, out: TextIO) -> None:
        from engines.inputs import Normalizer
        from engines.outputs import Selection

        self.engine = engine
        self.normalize = Normalizer(engine.info)
        self.selection = Selection.uniform(engine.info.score_threshold, 0.5, 100, engine.info.class_names)
        self.out = out

    def __call__(self, frames: list[Frame]) -> None:
        from engines.outputs import finish_frame
        from pipeline.core.messages import to_message

        batch, geometry = self.normalize([f.image for f in frames])
        raws = self.engine.infer(batch, [g.resized_size for g in geometry])
        for frame, frame_geometry, raw in zip(frames, geometry, raws):
            detections = finish_frame(frame, frame_geometry, raw, self.selection, self.engine.info.class_names)
            self.out.write(json.dumps(to_message(detections, self.engine.info.name)) + "\n")


def read_rgb(capture: cv2.VideoCapture) -> np.ndarray | None:
    """The next frame of an OpenCV `VideoCapture`, as RGB; None at the end."""
    import cv2

    ok, bgr = capture.read()
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None


def naive_fps(package: str, video: Path, out: Path, max_frames: int | None = None) -> tuple[float, int]:
    """The loop a user would write without detstream: OpenCV `VideoCapture` -> model -> one
    JSON line per frame; decode, detect, write one frame at a time, nothing overlapped."""
    import cv2

    from engines.loading import load_engine
    from pipeline.core.types import Frame

    engine = load_engine(package)
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    frames = 0
    with out.open("w") as file:
        detect = NaiveDetector(engine, file)
        while (max_frames is None or frames < max_frames) and (image := read_rgb(capture)) is not None:
            detect([Frame(source="naive", seq=frames, pts=0.0, capture_ts=time.time(), image=image)])
            frames += 1
    capture.release()
    return frames / (time.perf_counter() - started), frames


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def process_cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds a process has used, all its threads, from /proc."""
    # the fields after the command name, which may hold spaces: utime and stime are 14 and 15
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alternating_medians(calls: int, work: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median seconds of each of `work`'s callables over `calls` rounds, after one untimed
    call each (warm-up); in every round each takes its turn, so a change in the
    machine's load hits all of them alike."""
    for run in work.values():
        run()
    seconds: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(calls):
        for name, run in work.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ages_s(arrived: list[float], done: list[float], pts: list[float]) -> list[float]:
    """Age of each result: done - (camera clock origin + pts), for one source and session.

    The camera's clock is its pts mapped to wall clock by the frame that arrived earliest
    relative to its pts (at connection nothing is buffered). Unlike the arrival time, this
    clock also counts the time a frame waited in the socket when decoding falls behind."""
    origin = min(a - p for a, p in zip(arrived, pts))
    return [d - (origin + p) for d, p in zip(done, pts)]


@dataclass
class Timeline:
    """One source's results in the order written: when each frame's packet arrived, when its
    result left the last stage (wall clock), its pts and session."""

    arrived: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    pts: list[float] = field(default_factory=list)
    session: list[int] = field(default_factory=list)

    def ages(self) -> list[float]:
        """`ages_s` per session (pts restart with each reconnect), in the order written."""
        ages = [0.0] * len(self.pts)
        for session in set(self.session):
            index = [i for i, s in enumerate(self.session) if s == session]

            def pick(values: list[float]) -> list[float]:
                return [values[i] for i in index]  # noqa: B023 - used at once, inside the loop

            for i, age in zip(index, ages_s(pick(self.arrived), pick(self.done), pick(self.pts))):
                ages[i] = age
        return ages


def read_timelines(path: Path, names: list[str]) -> tuple[dict[str, Timeline], dict[str, list[float]]]:
    """Per source, the Timeline of a run's JSON lines; and per stage, every message's latency (ms)."""
    from pipeline.core.messages import STAGES

    timelines = {n: Timeline() for n in names}
    stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
    for line in path.read_text().splitlines():
        message = json.loads(line)
        latency, timeline = message["latency_ms"], timelines[message["source"]]
        # capture_ts is the wall clock at decode; the stage stamps give arrival and the end
        timeline.arrived.append(message["capture_ts"] - latency["decode"] / 1000)
        timeline.done.append(message["capture_ts"] + (latency["total"] - latency["decode"]) / 1000)
        timeline.pts.append(message["pts"])
        timeline.session.append(message.get("session", 0))
        for stage in STAGES:
            if stage in latency:  # proposals: only R-CNN and Fast R-CNN have the stage
                stage_ms[stage].append(latency[stage])
    return timelines, {s: v for s, v in stage_ms.items() if v}
