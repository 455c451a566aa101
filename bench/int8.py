"""ONNX Runtime fp32 against int8 (Q/DQ, engines/int8.py) on this CPU, per embedded model:
ms per image at batch 1 and 2 (engine alone, frames of the demo video normalized
beforehand, calls alternating between the two packages so load changes hit both alike),
the pipeline's frames/s on the demo video (`detstream run`, batch 2), and the accuracy
cost: box (and mask) mAP of each on the held-out test split through `detstream eval`.
The int8 package is calibrated on the validation split (never the test split).

    .venv/bin/python -m bench.int8 [--models embedded:faster-compact-synth ...] [--calls 10]
        [--calibration data/synth-val/annotations.json] [--calibration-images 100]
        [--test data/synth-test/annotations.json] [--json out.json]

Each model's result also holds the time of the dense part alone (backbone, FPN, RPN head:
the part quantization speeds up; the rest of the engine is torch glue that int8 does
not touch) and its per-op profile (ONNX Runtime's own profiler, batch 1, summed by op
type) for fp32, the int8 package's CPU flavour (what ONNX Runtime runs) and its TensorRT
flavour run on ONNX Runtime: where the time goes (QLinearConv kernels vs the Quantize /
Dequantize around float layers, for instance), and a what-if: the dense part's speed-up
if every activation had an int8 kernel (ReLU swapped in for HardSwish, untrained: speed
only), which bounds what int8 can give this engine on this CPU.

Timings mean something only on a quiet machine; the issue's targets (issue #20): mAP
within 0.01 of fp32 (box and mask) and int8 frames/s at least 1.4x fp32's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import (DEMO_VIDEO, REPO, alternating_medians, as_package, ensure_video, machine, pipeline_run,
                          print_result, run_fps)
from bench.engine_latency import read_frames
from engines.coco_images import dataset_images
from engines.inputs import Normalizer
from engines.int8 import export_int8, quantize_part
from engines.loading import load_engine
from engines.package import cpu_part, read_package

DEFAULT_MODELS = ("embedded:faster-compact-synth", "embedded:mask-compact-synth")
BATCHES = (1, 2)
FPS_TARGET = 1.4  # issue #20: int8 frames/s at least 1.4x fp32's
MAP_COST_TARGET = 0.01  # and mAP within 0.01 of fp32 (box and mask)
CALIBRATION = Path("data/synth-val/annotations.json")  # never the test split
TEST_SPLIT = Path("data/synth-test/annotations.json")
SPLITS = {"synth-val": ("2", "200"), "synth-test": ("3", "500")}  # as the Makefile generates them


def ensure_split(annotations: Path) -> None:
    """data/synth-val or data/synth-test, generated as the Makefile does when missing."""
    if annotations.exists() or annotations.parent.name not in SPLITS:
        return
    seed, count = SPLITS[annotations.parent.name]
    subprocess.run([sys.executable, "-m", "synth", "dataset", str(annotations.parent), "--seed", seed,
                    "--count", count, "--size", "640x360"], check=True)


def latency(packages: dict[str, str], video: Path, calls: int) -> list[dict]:
    """ms per image of each package's engine and of its dense part alone (the part int8
    speeds up most; the rest of the engine is torch between ONNX Runtime sessions), calls
    alternating between the packages."""
    engines = {name: load_engine(path, backend="onnxruntime") for name, path in packages.items()}
    images = read_frames(video, max(BATCHES))
    normalize = Normalizer(engines["fp32"].info)
    rows = []
    for batch in BATCHES:
        tensor, geometry = normalize(images[:batch])
        sizes = [g.resized_size for g in geometry]
        work = {}
        for name, engine in engines.items():
            work[name] = lambda engine=engine: engine.infer(tensor, sizes)
            work[f"{name} dense"] = lambda engine=engine: engine.parts.dense(tensor)
        medians = alternating_medians(calls, work)
        for name in engines:
            rows.append({"precision": name, "batch": batch,
                         "ms_per_image": round(medians[name] * 1000 / batch, 1),
                         "dense_ms_per_image": round(medians[f"{name} dense"] * 1000 / batch, 1)})
    return rows


def op_profile(package: str, image, part: str = "dense", runs: int = 5) -> dict[str, float]:
    """ms per call of the package's ONNX file `part` (a dense part) by op type (ONNX
    Runtime's profiler, batch 1)."""
    import onnxruntime as ort

    from engines.onnxruntime_backend import session_options

    found = read_package(Path(package))
    options = session_options(None)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:  # the trace file is ONNX Runtime's, not ours to keep
        options.profile_file_prefix = str(Path(tmp) / "dense")
        session = ort.InferenceSession(str(found.file(part)), options, providers=["CPUExecutionProvider"])
        tensor, _ = Normalizer(found.info)([image])
        for _ in range(runs):
            session.run(None, {"images": tensor.numpy()})
        trace = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = event.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + event["dur"] / 1000 / runs
    return {op: round(ms, 3) for op, ms in sorted(by_op.items(), key=lambda item: -item[1])}


def relu_ceiling(package: str, video: Path, calls: int, workdir: Path) -> dict:
    """How fast int8 could make the dense part if every activation had an int8 kernel:
    the fp32 dense part with HardSwish -> Relu and HardSigmoid -> Sigmoid swapped in the
    graph (an untrained what-if: its outputs mean nothing, only its speed), quantized as
    the CPU flavour is, timed against the fp32 dense part (alternating calls)."""
    import onnx
    import onnxruntime as ort

    from engines.onnxruntime_backend import session_options

    found = read_package(Path(package))
    model = onnx.load(str(found.file("dense")))
    for node in model.graph.node:
        if node.op_type in ("HardSwish", "HardSigmoid"):
            node.op_type = "Relu" if node.op_type == "HardSwish" else "Sigmoid"
            del node.attribute[:]  # HardSigmoid's alpha and beta
    relu = workdir / f"{found.root.name}-dense-relu.onnx"
    onnx.save(model, str(relu))
    frames = read_frames(video, 8)
    normalize = Normalizer(found.info)
    inputs = [normalize([frame])[0].numpy() for frame in frames]
    relu_int8 = quantize_part(relu, workdir / f"{found.root.name}-dense-relu-int8.onnx", inputs, "cpu")
    sessions = {name: ort.InferenceSession(str(path), session_options(None), providers=["CPUExecutionProvider"])
                for name, path in (("fp32", found.file("dense")), ("relu_int8", relu_int8))}
    result = {}
    for batch in BATCHES:
        feed = {"images": np.concatenate(inputs[:batch])}
        medians = alternating_medians(calls, {name: lambda session=session: session.run(None, feed)
                                              for name, session in sessions.items()})
        result[str(batch)] = round(medians["fp32"] / medians["relu_int8"], 3)
    return {"dense_speedup": result}


def mean_ap(package: str, test: Path, workdir: Path) -> dict:
    """`detstream eval` of the package on `test`: box and mask AP (COCO, IoU .5:.95)."""
    out = workdir / f"eval-{Path(package).name}.json"
    subprocess.run([sys.executable, "-m", "pipeline.cli", "eval", "--model", package, "--data", str(test),
                    "--out", str(out)], check=True)
    report = json.loads(out.read_text())
    return {kind: report[kind]["AP"] for kind in ("bbox", "segm") if kind in report}


def measure_model(model: str, video: Path, calls: int, calibration: Path, calibration_images: int, test: Path,
                  workdir: Path) -> dict:
    fp32 = as_package(model, workdir)
    images = dataset_images(calibration, calibration_images)
    int8 = str(export_int8(read_package(Path(fp32)), workdir / (Path(fp32).name + "-int8"), images,
                           source=str(calibration)).root)
    packages = {"fp32": fp32, "int8": int8}
    rows = latency(packages, video, calls)
    by = {(r["precision"], r["batch"]): r["ms_per_image"] for r in rows}
    fps = {name: round(run_fps(pipeline_run(path, [video], batch=2, backend="onnxruntime")), 2)
           for name, path in packages.items()}
    accuracy = {name: mean_ap(path, test, workdir) for name, path in packages.items()}
    frame = read_frames(video, 1)[0]
    # what ONNX Runtime runs (int8: the CPU flavour), and the TensorRT flavour's dense part
    profiles = {"fp32": op_profile(fp32, frame), "int8": op_profile(int8, frame, cpu_part("dense")),
                "int8, TensorRT's Q/DQ": op_profile(int8, frame)}
    return {
        "model": model,
        "calibration_images": len(images),
        "rows": rows,
        "speedup_int8_over_fp32": {str(b): round(by[("fp32", b)] / by[("int8", b)], 3) for b in BATCHES},
        "pipeline_fps": fps,
        "pipeline_fps_ratio": round(fps["int8"] / fps["fp32"], 3),
        "map": accuracy,
        "map_cost": {kind: round(accuracy["fp32"][kind] - accuracy["int8"][kind], 4) for kind in accuracy["fp32"]},
        "dense_ms_by_op": profiles,
        "relu_ceiling": relu_ceiling(fp32, video, calls, workdir),
    }


def measure(models: list[str], video: Path, calls: int, calibration: Path, calibration_images: int, test: Path,
            workdir: Path) -> dict:
    """Every model's fp32-vs-int8 figures: `python -m bench.int8` and run_all's `int8` section."""
    ensure_video(video)
    ensure_split(calibration)
    ensure_split(test)
    results = [measure_model(m, video, calls, calibration, calibration_images, test, workdir) for m in models]
    shown = {name: str(path.relative_to(REPO)) if path.resolve().is_relative_to(REPO) else str(path)
             for name, path in (("test", test.resolve()), ("calibration", calibration.resolve()))}
    return {"models": results, "calls": calls, **shown,
            "targets": {"fps_ratio": FPS_TARGET, "map_cost": MAP_COST_TARGET}}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.int8", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--video", type=Path, default=DEMO_VIDEO)
    parser.add_argument("--calls", type=int, default=10, help="timed calls per precision and batch (alternating)")
    parser.add_argument("--calibration", type=Path, default=CALIBRATION)
    parser.add_argument("--calibration-images", type=int, default=100)
    parser.add_argument("--test", type=Path, default=TEST_SPLIT)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.models, args.video, args.calls, args.calibration, args.calibration_images, args.test,
                         Path(tmp))
    print_result({"machine": machine(), **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
