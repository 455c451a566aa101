"""Per-call latency and throughput of the default models' engines, batch 1, 2, 4 and 8:
PyTorch vs ONNX Runtime (vs TensorRT when a CUDA GPU and TensorRT are present), one
engine package, frames of the 720p demo video decoded and normalized beforehand (this
times the engine alone: dense part, proposals, RoI heads, candidates).

    .venv/bin/python -m bench.engine_latency [--models embedded:faster-compact-synth ...] [--calls 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from bench.common import DEMO_VIDEO, as_package, ensure_video, machine, print_result
from engines.base import Engine
from engines.loading import load_engine
from engines.inputs import Normalizer

DEFAULT_MODELS = ("embedded:faster-compact-synth", "embedded:mask-compact-synth")
BATCHES = (1, 2, 4, 8)


def backends() -> list[str]:
    names = ["torch", "onnxruntime"]
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return names
    return names + ["tensorrt"] if torch.cuda.is_available() else names


def read_frames(video: Path, count: int) -> list[np.ndarray]:
    with av.open(str(video)) as container:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(count), container.decode(video=0))]


def timed_call(engine: Engine, tensor: torch.Tensor, sizes: list[tuple[int, int]]) -> float:
    started = time.perf_counter()
    engine.infer(tensor, sizes)
    return time.perf_counter() - started


def measure(model: str, images: list[np.ndarray], calls: int, workdir: Path, batches: tuple[int, ...] = BATCHES) -> dict:
    """Median seconds per call for each backend and batch; calls alternate between the
    backends so that a change in the machine's load hits each alike."""
    package = as_package(model, workdir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    engines = {b: load_engine(package, device=device if b == "tensorrt" else "cpu", backend=b) for b in backends()}
    normalize = Normalizer(engines["torch"].info)
    rows = []
    for batch in batches:
        tensor, geometry = normalize(images[:batch])
        sizes = [g.resized_size for g in geometry]
        for engine in engines.values():
            engine.infer(tensor, sizes)  # warm-up: allocations, ONNX Runtime's first-run planning
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(calls):
            for name, engine in engines.items():
                seconds[name].append(timed_call(engine, tensor, sizes))
        for name, values in seconds.items():
            median = statistics.median(values)
            rows.append({"backend": name, "batch": batch, "ms_per_call": round(median * 1000, 1),
                         "ms_per_image": round(median * 1000 / batch, 1), "images_per_s": round(batch / median, 2)})
    by = {(r["backend"], r["batch"]): r for r in rows}
    ratios = {str(b): round(by[("onnxruntime", b)]["images_per_s"] / by[("torch", b)]["images_per_s"], 3) for b in batches}
    return {"model": model, "input_size": list(engines["torch"].info.input_size), "rows": rows,
            "ratio_onnxruntime_over_torch": ratios}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_latency", description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--video", type=Path, default=DEMO_VIDEO)
    parser.add_argument("--calls", type=int, default=5, help="timed calls per backend and batch size (alternating)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ensure_video(args.video)
    images = read_frames(args.video, max(BATCHES))
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(model, images, args.calls, Path(tmp)) for model in args.models]
    result = {"machine": machine(),
              "models": results}
    print_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
