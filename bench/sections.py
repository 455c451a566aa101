"""What `make bench` measures: the six sections of issue #8, then the demo on its default
engine against PyTorch, the cost of metrics, torchvision's COCO models, tracking's cost
and quality (issue #16), the cost of event clips (issue #18) and region proposals' recall
(issue #19); on request the R-CNN ladder (#19), int8 (#20) and camera capacity (#21). Each
is a function of a shared Context (the demo video, the budget, a work folder holding the
engine packages); the budget keeps the full run within 10 minutes on 2 quiet cores
(tracking's clips aside, see Budget).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench import backends, coco_models, decode_fps, efficiency, engine_latency, live_overload, metrics_overhead
from bench import capacity, clips_cost, int8, ladder, proposal_recall, redis_publish, scaling, soak, tracking_cost
from bench import tracking_quality
from bench.common import CAMERA_MBPS, REPO, as_package, camera_video, cpu_seconds, machine, now
from bench.report import SECTION_TITLES
from pipeline.core.config import DEFAULT_MODEL
from synth.video import write_video

VIDEO_1080P = REPO / "data" / "bench-1080p.mp4"


@dataclass(frozen=True)
class Budget:
    """How much each section measures: the full run fits 10 minutes on 2 quiet cores
    (6 min 11 s for the first six sections on 2026-11-25), tracking aside: its quality part
    runs the pipeline 32 times (8 clips x 2 trackers x 2 strides), about 7 minutes more
    (217 s for 4 clips under a light load on 2026-12-01)."""

    rounds: int = 3  # alternating repeats, for the median
    engine_calls: int = 5
    engine_batches: tuple[int, ...] = engine_latency.BATCHES
    engine_models: tuple[str, ...] = engine_latency.DEFAULT_MODELS
    efficiency_frames: int = 160
    live_sources: tuple[int, ...] = (1, 2)
    live_seconds: float = 20.0
    scaling_frames: int = 48  # per run, split over the sources
    scaling_rounds: int = 3
    batch_clips: int = 8
    batch_clip_seconds: float = 2.0
    redis_messages: int = 20_000
    video_1080p_seconds: float = 4.0
    backends_frames: int | None = None  # per run of the demo config; None: the whole video, as `make demo`
    metrics_frames: int = 48  # per run; a warm-up and `rounds` runs each with metrics off and on
    coco_calls: int = 3
    coco_models: tuple[str, ...] = coco_models.MODELS
    tracking_frames: int = 300  # timed per object count, after the warm-up
    tracking_warmup: int = 50
    tracking_clips: int = len(tracking_quality.SEEDS)  # 4 runs each: 2 trackers x 2 strides
    tracking_clip_seconds: float = 10.0
    clips_seconds: float = 120.0  # of video put into the packet buffer per round
    clips_count: int = 5  # clips written
    proposal_images: int = 50  # selective search takes about 0.7 s an image
    ladder_images: int = 100  # per rung; R-CNN takes seconds an image (`make ladder`, not in the 10 minutes)
    int8_calls: int = 10  # timed engine calls per precision and batch (on request: 4 evals of the 500-image split)
    int8_calibration_images: int = 100
    soak_minutes: float = 60.0  # issue #21's long soak (`make soak MINUTES=60` does the same and records it)
    soak_fault_every_s: float = 120.0
    capacity_max_cameras: int = 12  # on request (`make capacity`): about 1.5 min a step
    capacity_seconds: float = 45.0  # measured per step, after the warm-up
    capacity_warmup_s: float = capacity.WARMUP_S


QUICK = Budget(rounds=1, engine_calls=1, engine_batches=(1, 2), engine_models=(DEFAULT_MODEL,), efficiency_frames=8,
               live_sources=(1,), live_seconds=6.0, scaling_frames=8, scaling_rounds=1, batch_clips=2,
               batch_clip_seconds=0.4, redis_messages=2000, backends_frames=8, metrics_frames=8, coco_calls=1,
               coco_models=coco_models.MODELS[:1], tracking_frames=40, tracking_warmup=10, tracking_clips=1,
               tracking_clip_seconds=2.0, clips_seconds=10.0, clips_count=1, proposal_images=2,
               ladder_images=2, int8_calls=1, int8_calibration_images=2, capacity_max_cameras=1,
               capacity_seconds=5.0, capacity_warmup_s=2.0, soak_minutes=1.0, soak_fault_every_s=20.0)


@dataclass
class Context:
    video: Path
    budget: Budget
    workdir: Path  # engine packages, exported once, shared by the sections

    def package(self) -> str:
        return as_package(DEFAULT_MODEL, self.workdir)


def ensure_1080p(seconds: float) -> Path:
    """The 1080p clip, generated once into data/ by the project's scene generator."""
    if not VIDEO_1080P.exists():
        print(f"generating {VIDEO_1080P}", file=sys.stderr)
        write_video(VIDEO_1080P, seed=7, width=1920, height=1080, fps=25, seconds=seconds)
    return VIDEO_1080P


def measure_decode(ctx: Context) -> dict:
    videos = [ctx.video, ensure_1080p(ctx.budget.video_1080p_seconds)]
    return decode_fps.measure(videos, ctx.budget.rounds)


def measure_engines(ctx: Context) -> dict:
    images = engine_latency.read_frames(ctx.video, max(ctx.budget.engine_batches))
    models = [engine_latency.measure(m, images, ctx.budget.engine_calls, ctx.workdir, ctx.budget.engine_batches)
              for m in ctx.budget.engine_models]
    return {"models": models, "calls": ctx.budget.engine_calls, "tensorrt": "tensorrt" in engine_latency.backends()}


def measure_efficiency(ctx: Context) -> dict:
    return efficiency.measure(ctx.package(), ctx.video, 2, ctx.budget.efficiency_frames, ctx.budget.rounds, ctx.workdir)


def measure_live(ctx: Context) -> dict:
    return live_overload.measure(list(ctx.budget.live_sources), ctx.budget.live_seconds, 0.25, ctx.workdir)


def measure_scaling(ctx: Context) -> dict:
    b = ctx.budget
    return scaling.measure(ctx.package(), ctx.video, b.scaling_frames, b.scaling_rounds, b.batch_clips,
                           b.batch_clip_seconds, ctx.workdir)


def measure_redis(ctx: Context) -> dict:
    return redis_publish.measure(ctx.budget.redis_messages, ctx.budget.rounds)


def measure_backends(ctx: Context) -> dict:
    return backends.measure(backends.DEMO_CONFIG, ctx.video, ctx.budget.backends_frames, ctx.budget.rounds, ctx.workdir)


def measure_metrics(ctx: Context) -> dict:
    return metrics_overhead.measure(ctx.package(), ctx.video, 2, ctx.budget.metrics_frames, ctx.budget.rounds,
                                    ctx.workdir)


def measure_coco(ctx: Context) -> dict:
    return coco_models.measure(ctx.video, ctx.budget.coco_calls, ctx.workdir, ctx.budget.coco_models)


def measure_tracking(ctx: Context) -> dict:
    b = ctx.budget
    return {"cost": tracking_cost.measure(b.tracking_frames, b.tracking_warmup),
            "quality": tracking_quality.measure(ctx.workdir, b.tracking_clips, b.tracking_clip_seconds)}


def measure_clips(ctx: Context) -> dict:
    video = camera_video(ctx.video, CAMERA_MBPS)
    return clips_cost.measure(video, ctx.budget.clips_seconds, ctx.budget.clips_count, ctx.budget.rounds)


def measure_proposals(ctx: Context) -> dict:
    return proposal_recall.measure(ctx.workdir, ctx.budget.proposal_images)


def measure_ladder(ctx: Context) -> dict:
    return ladder.measure(ctx.workdir, ctx.budget.ladder_images)


def measure_soak(ctx: Context) -> dict:
    out = ctx.workdir / "soak"
    soak.run_soak(out, ctx.budget.soak_minutes, 1, ctx.budget.soak_fault_every_s, 5.0)
    return soak.summary(out)


def measure_int8(ctx: Context) -> dict:
    return int8.measure(list(int8.DEFAULT_MODELS), ctx.video, ctx.budget.int8_calls, REPO / int8.CALIBRATION,
                        ctx.budget.int8_calibration_images, REPO / int8.TEST_SPLIT, ctx.workdir)


def measure_capacity(ctx: Context) -> dict:
    b = ctx.budget
    return capacity.measure(b.capacity_max_cameras, b.capacity_seconds, ctx.workdir, b.capacity_warmup_s,
                            video=capacity.camera_stream(ctx.video))


SECTIONS: dict[str, Callable[[Context], dict]] = {
    "decode": measure_decode,
    "engines": measure_engines,
    "efficiency": measure_efficiency,
    "live": measure_live,
    "scaling": measure_scaling,
    "redis": measure_redis,
    "backends": measure_backends,
    "metrics": measure_metrics,
    "coco": measure_coco,
    "tracking": measure_tracking,
    "clips": measure_clips,
    "proposals": measure_proposals,
    "ladder": measure_ladder,
    "int8": measure_int8,
    "capacity": measure_capacity,
    "soak": measure_soak,
}
assert list(SECTIONS) == list(SECTION_TITLES)


def run_section(name: str, ctx: Context) -> dict:
    print(f"== {name}", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    started, cpu = time.monotonic(), cpu_seconds()
    result = SECTIONS[name](ctx)
    elapsed = time.monotonic() - started
    print(f"== {name}: {elapsed:.0f} s", file=sys.stderr, flush=True)
    return {"machine": machine(), "load_average": load, "elapsed_s": round(elapsed, 1),
            "cpu_s": round(cpu_seconds() - cpu, 1), "finished": now(), "result": relative_paths(result)}


def relative_paths(value: object) -> object:
    """Paths inside the repository shown relative to it, so the report reads the same anywhere."""
    if isinstance(value, dict):
        return {k: relative_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_paths(v) for v in value]
    if isinstance(value, str) and value.startswith(str(REPO) + "/"):
        return value[len(str(REPO)) + 1:]
    return value
