"""`make gpu-check`: what only a machine with an NVIDIA GPU and TensorRT can settle, in one
run (minutes) and one JSON report.

For each embedded model (`embedded:faster-compact-synth`, `embedded:mask-compact-synth`)
and each precision (fp32 with TF32 off, fp16, int8 when calibration images are given),
the package is exported (fp16: `engines.fp16`; int8: `engines.int8`, Q/DQ), TensorRT
plans are built from it, and the TensorRT backend is held against ONNX Runtime running
the very same ONNX on the CPU:
- parity: the detections `detstream run` would publish on 10 held-out synthetic frames,
  batches of 2 against ONNX Runtime's single frames, both directions (`engines.parity`,
  at the precision's tolerance), masks included;
- a batch of 10 (above the dense profile's 8: chunks) against the plans' own single frames;
- black frames: no candidates, the zero-RoI path;
- latency: ms per image at batch 1, 2 and 8 (median of `--runs`, after warm-up);
and once: a plan record from another TensorRT release is refused with the rebuild hint.

Without TensorRT or CUDA it says so and stops (exit 0, "skipped" in the report): there
is nothing to settle. Exit 1 when a check fails. The checks take their engines from a
`Setup`, so CI runs this very code through the CPU stand-in of tests/engines/trt_stubs.py.

    python -m engines.gpu_check [--out gpu-check.json] [--calibration COCO.json] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engines.base import Engine
from engines.export import export_package
from engines.package import Package, read_package
from engines.parity import TOLERANCES, compare, detect
from pipeline.core.errors import ModelError

MODELS = ("faster-compact-synth", "mask-compact-synth")
PRECISIONS = ("fp32", "fp16", "int8")
BATCHES = (1, 2, 8)


@dataclass
class Setup:
    """Where the engines come from: TensorRT (the thing checked) and the reference."""

    tensorrt: Callable[[Package], Engine]
    reference: Callable[[Package], Engine]
    build: Callable[[Package], Package]  # builds plans, returns the package with its record


def reference_engine(package: Package) -> Engine:
    """ONNX Runtime on the CPU running the very ONNX files TensorRT builds (for an int8
    package its TensorRT flavour, not the CPU flavour ONNX Runtime runs otherwise)."""
    from engines.onnxruntime_backend import OnnxRuntimeEngine

    return OnnxRuntimeEngine(package, package.info.score_threshold, cpu_flavour=False)


def gpu_setup() -> Setup:
    """The real thing: TensorRT on cuda:0, ONNX Runtime on the CPU."""
    from engines.tensorrt_backend import tensorrt_engine
    from engines.tensorrt_build import build_plans, record_build

    def build(package: Package) -> Package:
        return record_build(package, build_plans(package, tf32=False))

    return Setup(lambda p: tensorrt_engine(p, "cuda", p.info.score_threshold, None), reference_engine, build)


def frames(count: int = 10) -> list[np.ndarray]:
    """Held-out synthetic frames (seed 43: neither training's 1 nor validation's 2)."""
    from synth.video import iter_frames

    found = iter_frames(seed=43, width=640, height=360, seconds=count / 5, objects=8)
    return [image for i, image, _ in found if i % 5 == 0][:count]


def variants(package: Package, work: Path, precisions: tuple[str, ...], calibration: Path | None,
             calibration_images: int) -> dict[str, Package | str]:
    """The package in each precision, or why a precision is missing."""
    found: dict[str, Package | str] = {}
    for precision in precisions:
        if precision == "fp32":
            found["fp32"] = package
        elif precision == "fp16":
            from engines.fp16 import export_fp16

            found["fp16"] = export_fp16(package, work / "fp16")
        elif calibration is None:
            found["int8"] = "not built: no --calibration COCO.json given"
        else:
            from engines.coco_images import dataset_images
            from engines.int8 import export_int8

            images = dataset_images(calibration, calibration_images)
            found["int8"] = export_int8(package, work / "int8", images, source=str(calibration))
    return found


def latency(engine: Engine, images: list[np.ndarray], batch: int, runs: int) -> float:
    """Median ms per image of `engine.infer` on `batch` images (inputs prepared outside)."""
    from engines.inputs import Normalizer

    chosen = (images * batch)[:batch]
    tensor, geometry = Normalizer(engine.info)(chosen)
    sizes = [g.resized_size for g in geometry]
    engine.infer(tensor, sizes)  # warm-up: lazy allocations, first-run tactics
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.infer(tensor, sizes)  # the TensorRT backend synchronizes before returning
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times) / batch, 3)


def check_precision(package: Package, precision: str, setup: Setup, images: list[np.ndarray],
                    runs: int) -> dict[str, Any]:
    tolerance = TOLERANCES[precision]
    threshold = package.info.score_threshold
    built = setup.build(package)
    ours, reference = setup.tensorrt(built), setup.reference(built)
    expected = detect(reference, images, batch=1)
    singles = detect(ours, images, batch=1)
    black = [np.zeros_like(images[0])] * 2
    black_ours = detect(ours, black)
    checks = {
        "parity": compare(detect(ours, images, batch=2), expected, threshold, tolerance),
        "batch_of_10": compare(detect(ours, images, batch=len(images)), singles, threshold, tolerance),
        "black_frames": compare(black_ours, detect(reference, black), threshold, tolerance)
        + [f"{len(d.boxes)} detections on a black frame" for d in black_ours if len(d.boxes)],
    }
    return {
        "tolerance": asdict(tolerance),
        "detections": sum(len(d.boxes) for d in expected),
        "checks": {name: {"ok": not problems, "problems": problems[:10]} for name, problems in checks.items()},
        "latency_ms_per_image": {str(b): latency(ours, images, b, runs) for b in BATCHES} if runs else None,
        "ok": not any(checks.values()) and bool(expected),
    }


def check_foreign_plan(package: Package, setup: Setup, work: Path) -> dict[str, Any]:
    """A plan record from another TensorRT release must be refused with the rebuild hint."""
    root = work / "foreign"
    shutil.copytree(package.root, root)
    meta = json.loads((root / "package.json").read_text())
    meta["tensorrt"]["version"] = "9.0.1.4"
    (root / "package.json").write_text(json.dumps(meta))
    try:
        setup.tensorrt(read_package(root))
    except ModelError as exc:
        return {"ok": "rebuild with detstream build-engine" in str(exc) and "9.0.1" in str(exc), "message": str(exc)}
    return {"ok": False, "message": "loaded a plan recorded for TensorRT 9.0.1"}


def run(work: Path, setup: Setup, models: tuple[str, ...] = MODELS, images: list[np.ndarray] | None = None,
        calibration: Path | None = None, calibration_images: int = 100, runs: int = 20,
        machine: dict[str, str] | None = None, precisions: tuple[str, ...] = PRECISIONS) -> dict[str, Any]:
    images = frames() if images is None else images
    report: dict[str, Any] = {"machine": machine or {}, "frames": len(images), "models": {}}
    for name in models:
        package = export_package(f"embedded:{name}", work / name / "fp32")
        results: dict[str, Any] = {}
        for precision, found in variants(package, work / name, precisions, calibration, calibration_images).items():
            results[precision] = ({"ok": None, "skipped": found} if isinstance(found, str)
                                  else check_precision(found, precision, setup, images, runs))
        report["models"][name] = results
        if "foreign_plan" not in report:
            report["foreign_plan"] = check_foreign_plan(read_package(package.root), setup, work / name)
    verdicts = [r["ok"] for m in report["models"].values() for r in m.values() if r["ok"] is not None]
    report["ok"] = all(verdicts) and report["foreign_plan"]["ok"]
    return report


def summary(report: dict[str, Any]) -> str:
    lines = [f"{'model':22s} {'precision':9s} {'checks':8s} " + " ".join(f"b{b:<2d} ms/img" for b in BATCHES)]
    for name, results in report["models"].items():
        for precision, r in results.items():
            if r["ok"] is None:
                lines.append(f"{name:22s} {precision:9s} {r['skipped']}")
                continue
            times = r["latency_ms_per_image"] or {}
            cells = " ".join(f"{times.get(str(b), float('nan')):10.2f}" for b in BATCHES)
            lines.append(f"{name:22s} {precision:9s} {'ok' if r['ok'] else 'FAILED':8s} {cells}")
    lines.append(f"foreign plan refused with the rebuild hint: {report['foreign_plan']['ok']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from pipeline.core.arg_types import positive_int

    parser = argparse.ArgumentParser(prog="python -m engines.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="the JSON report (default gpu-check.json)")
    parser.add_argument("--work", type=Path, default=Path("runs/gpu-check"), help="packages and plans are written here")
    parser.add_argument("--calibration", type=Path, metavar="COCO.json", help="int8 calibration images (e.g. data/synth-val)")
    parser.add_argument("--calibration-images", type=positive_int, default=100, metavar="N")
    parser.add_argument("--runs", type=positive_int, default=20, help="timed runs per latency cell")
    args = parser.parse_args(argv)
    try:
        from engines.tensorrt_build import import_tensorrt, machine_record

        machine = machine_record(import_tensorrt())
    except ModelError as exc:
        args.out.write_text(json.dumps({"skipped": str(exc)}, indent=2) + "\n")
        print(f"gpu-check SKIPPED: {exc}", file=sys.stderr)
        return 0
    shutil.rmtree(args.work, ignore_errors=True)
    report = run(args.work, gpu_setup(), calibration=args.calibration, calibration_images=args.calibration_images,
                 runs=args.runs, machine=machine)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"report: {args.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
