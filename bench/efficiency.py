"""Pipeline efficiency: `detstream run` frames/s on the demo video against (a) the detector
alone on the same frames decoded beforehand: preprocess + engine in series, and the
engine calls alone in that loop, the pipeline's bottleneck stage (efficiency = pipeline /
engine alone) and (b) the naive loop a user would write (OpenCV decode ->
model -> JSON line, sequential: speedup = pipeline / naive). One engine package, one
backend; both write JSON lines.

The engine alone is timed at the batch sizes the pipeline's detector actually ran
(weighted by the frames each size carried): the detect stage batches what has arrived,
often fewer frames than `--batch`, and an engine timed at the full batch only would make
"efficiency" a comparison of two batch sizes (issue #20). A second, firm bound: the CPU
time every stage spends per frame (decode, preprocess, engine, postprocess + JSON),
measured in one sequential pass; on N cores no pipeline can exceed N / (that sum)
frames/s, so efficiency against it cannot exceed 1 by construction.

Rounds alternate pipeline, detector alone, naive loop; medians are printed, with the
pipeline's per-stage latency (median ms from one stage's hand-off to the next, queue
waits included: where frames wait) and the batch sizes its detector ran.

    .venv/bin/python -m bench.efficiency [--model SPEC] [--frames 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

import os
import time

from bench.common import (
    as_package, demo_arguments, detector_and_engine_alone, ensure_video, machine, naive_fps, pipeline_run, print_result,
    run_fps,
)
from engines.loading import load_engine
from pipeline.core.messages import STAGES

TARGET_EFFICIENCY = 0.90  # of the detector alone
TARGET_SPEEDUP = 1.3  # over the naive loop


def stage_latency_ms(jsonl: Path) -> dict[str, float]:
    """Median per-stage latency over the messages of one run."""
    messages = [json.loads(line) for line in jsonl.read_text().splitlines()]
    stages = [s for s in (*STAGES, "total") if s in messages[0]["latency_ms"]]
    return {s: round(statistics.median(m["latency_ms"][s] for m in messages), 1) for s in stages}


def engine_alone_at(package: str, video: Path, frames: int, batch_sizes: Counter[int]) -> float:
    """Frames/s of the engine alone at the pipeline's own mix of batch sizes: each size
    timed on its own, weighted by the frames the pipeline ran at that size."""
    carried = {b: b * n for b, n in batch_sizes.items() if b > 0}
    seconds = sum(count / detector_and_engine_alone(package, video, frames, b)[1] for b, count in carried.items())
    return sum(carried.values()) / seconds


def cpu_seconds_per_frame(package: str, video: Path, frames: int, batch: int) -> dict[str, float]:
    """Process CPU time per frame of each stage's work, one sequential pass (all threads
    counted: the engine's intra-op pool too)."""
    import av

    from engines.inputs import Normalizer
    from engines.outputs import Selection, finish_frame
    from pipeline.core.messages import to_message
    from pipeline.core.types import Frame

    engine = load_engine(package)
    normalize = Normalizer(engine.info)
    selection = Selection.uniform(engine.info.score_threshold, 0.5, 100, engine.info.class_names)
    spent = Counter()
    clock = time.process_time
    with av.open(str(video)) as container:
        decoded = container.decode(video=0)
        images = []
        for _ in range(frames):
            started = clock()
            frame = next(decoded, None)
            if frame is None:
                break
            images.append(frame.to_ndarray(format="rgb24"))
            spent["decode"] += clock() - started
    tensor, geometry = normalize(images[:batch])
    engine.infer(tensor, [g.resized_size for g in geometry])  # warm-up, not counted
    for first in range(0, len(images), batch):
        chunk = images[first : first + batch]
        started = clock()
        tensor, geometry = normalize(chunk)
        spent["preprocess"] += clock() - started
        started = clock()
        raws = engine.infer(tensor, [g.resized_size for g in geometry])
        spent["engine"] += clock() - started
        started = clock()
        for offset, (image, geo, raw) in enumerate(zip(chunk, geometry, raws)):
            frame = Frame(source="bench", seq=first + offset, pts=0.0, capture_ts=0.0, image=image)
            detections = finish_frame(frame, geo, raw, selection, engine.info.class_names)
            json.dumps(to_message(detections, engine.info.name))
        spent["postprocess_and_sink"] += clock() - started
    return {stage: round(value / len(images), 5) for stage, value in spent.items()}


def measure(package: str, video: Path, batch: int, frames: int, rounds: int, workdir: Path) -> dict:
    pipeline, alone, engine_alone, naive = [], [], [], []
    latency: list[dict[str, float]] = []
    batch_sizes: Counter[int] = Counter()
    out = workdir / "pipeline.jsonl"
    for _ in range(rounds):
        summary = pipeline_run(package, [video], batch, sinks=(f"jsonl:{out}",), max_frames=frames)
        pipeline.append(run_fps(summary))
        latency.append(stage_latency_ms(out))
        batch_sizes.update(summary.batch_sizes)
        with_preprocess, engine_only = detector_and_engine_alone(package, video, frames, batch)
        alone.append(with_preprocess)
        engine_alone.append(engine_only)
        naive.append(naive_fps(package, video, workdir / "naive.jsonl", frames)[0])
    runs = {"pipeline": pipeline, "detector_alone": alone, "engine_alone": engine_alone, "naive": naive}
    medians = {name: statistics.median(values) for name, values in runs.items()}
    medians["engine_alone_same_batches"] = engine_alone_at(package, video, frames, batch_sizes)
    cpu = cpu_seconds_per_frame(package, video, frames, batch)
    cores = os.cpu_count() or 1
    cpu_bound = cores / sum(cpu.values())
    return {
        "video": str(video),
        "frames": frames,
        "batch": batch,
        "engine": type(load_engine(package)).__name__,
        "rounds": rounds,
        "fps_median": {name: round(value, 2) for name, value in medians.items()},
        "fps_runs": {name: [round(v, 2) for v in values] for name, values in runs.items()},
        # the verdict uses the engine alone at the pipeline's own batch sizes (the bottleneck stage)
        "efficiency": round(medians["pipeline"] / medians["engine_alone_same_batches"], 3),
        "efficiency_vs_engine_at_full_batch": round(medians["pipeline"] / medians["engine_alone"], 3),
        "cpu_s_per_frame": cpu,
        "cpu_bound_fps": round(cpu_bound, 2),
        "efficiency_vs_cpu_bound": round(medians["pipeline"] / cpu_bound, 3),
        "efficiency_vs_detector_with_preprocess": round(medians["pipeline"] / medians["detector_alone"], 3),
        "speedup_over_naive": round(medians["pipeline"] / medians["naive"], 3),
        "targets": {"efficiency": TARGET_EFFICIENCY, "speedup_over_naive": TARGET_SPEEDUP},
        "stage_latency_ms_median": {s: statistics.median(run[s] for run in latency) for s in latency[0]},
        "batch_sizes": dict(sorted(batch_sizes.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.efficiency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    demo_arguments(parser)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=100, help="first N frames of the video")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        package = as_package(args.model, Path(tmp))
        result = measure(package, args.video, args.batch, args.frames, args.rounds, Path(tmp))
    print_result({"machine": machine(), "model": args.model, **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
