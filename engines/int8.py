"""INT8 engine packages with explicit Q/DQ nodes, from ONNX Runtime's static quantization
calibrated on real frames.

TensorRT 11 has no INT8 builder flag or calibrator: a strongly typed network is
quantized exactly where its ONNX has QuantizeLinear / DequantizeLinear pairs, so the
int8 package is one set of ONNX files that ONNX Runtime runs on the CPU and TensorRT 10
and 11 build as explicitly quantized plans. Rules:
- calibration data goes through our own input path: images are letterboxed and
  normalized by `engines.inputs.Normalizer`, as the preprocess stage does; the heads are
  calibrated on RoI features pooled from the fp32 package's own features and proposals
  (box head: the best `ROIS_PER_IMAGE` proposals of each image; mask head: its
  candidates), so every part sees what it will see at run time;
- weights per output channel, activations per tensor; both symmetric int8 (zero point
  0), which is what TensorRT accepts, and what ONNX Runtime's CPU provider runs (S8S8);
  biases stay float (TensorRT has no int32 Q/DQ; it folds them itself);
- only Conv, ConvTranspose, Gemm and MatMul are quantized; numerically sensitive layers
  stay float (`FLOAT_NODES`): the first convolution (raw normalized pixels), the RPN's
  objectness and box-delta convolutions (proposals hinge on their exact values) and
  every predictor layer of the heads (class scores, box regression, mask logits);
- percentile calibration (99.99 % of each activation's absolute values): MinMax lets a
  few extreme activations set the range and costs resolution everywhere else. Measured
  on the embedded models (32 calibration images of the validation seed, the first 60
  images of the test seed, ONNX Runtime on the CPU), box AP fp32 -> int8: faster 0.673 ->
  0.639 with MinMax, 0.674 with percentile 99.99; mask model 0.717 -> 0.712 box and
  0.428 -> 0.422 mask AP with percentile 99.99 (99.999: 0.695 / 0.414). The loss was in
  the dense part each time; the heads in int8 cost nothing measurable.

Two flavours of every ONNX part come from the same calibration images:
- `dense`, `box_head`, `mask_head`: the rules above, for TensorRT (symmetric int8
  activations are all it takes);
- `dense_cpu`, `box_head_cpu`, `mask_head_cpu` (`cpu_part`), which the ONNX Runtime
  backend runs instead: ONNX Runtime's fast x86 int8 kernels take uint8 activations
  (U8S8), their zero point placed by calibration, which also lets a ReLU vanish into the
  convolution before it; and every op ONNX Runtime has an int8 kernel for is quantized
  (Add, Mul, GlobalAveragePool, ...) so chains of int8 layers are not cut by
  dequantize / quantize pairs. The faster model's dense part on this CPU (`make int8`,
  2026-12-07, batch 1, ONNX Runtime's kernel time): fp32 14.0 ms, the TensorRT flavour
  24.6 ms, this one 12.9 ms (docs/tensorrt.md "int8 (explicit Q/DQ)").
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from engines.fp16 import ONNX_PARTS, check_loads
from engines.inputs import Normalizer
from engines.package import Package, cpu_part, write_package
from engines.pixel_masks import IMAGE_KEY
from pipeline.core.errors import ModelError

ROIS_PER_IMAGE = 64
QUANTIZED_OPS = ["Conv", "ConvTranspose", "Gemm", "MatMul"]
FLOAT_NODES = ("/rpn_head/cls_logits", "/rpn_head/bbox_pred", "/predictor/")
FLAVOURS = ("tensorrt", "cpu")
log = logging.getLogger(__name__)

CHUNK = 64  # calibration inputs per ONNX Runtime run (RoIs for the heads, 1 image for dense)
STRIDE = 8  # calibration runs whose activations are held at once
PERCENTILE = 99.99


def calibration_inputs(package: Package, images: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Each ONNX part's inputs on `images` (RGB uint8), computed by the fp32 package on ONNX Runtime."""
    from engines.onnxruntime_backend import OnnxRuntimeEngine  # the fp32 reference computes them

    info = package.info
    engine = OnnxRuntimeEngine(package, info.score_threshold)
    heads = engine.skeleton.roi_heads
    normalize = Normalizer(info)
    found: dict[str, list[np.ndarray]] = {"dense": [], "box_head": [], "mask_head": []}
    with torch.inference_mode():
        for image in images:
            batch, geometry = normalize([image])
            sizes = [g.resized_size for g in geometry]
            features, _, _ = engine.parts.dense(batch)
            proposals = [p[:ROIS_PER_IMAGE] for p in engine.proposals(batch, sizes)]
            found["dense"].append(batch.numpy())
            found["box_head"].append(heads.box_roi_pool(features, proposals, sizes).numpy())
            if info.has_masks:
                boxes = [o.boxes[:ROIS_PER_IMAGE] for o in engine.infer(batch, sizes)]
                if sum(len(b) for b in boxes):
                    found["mask_head"].append(heads.mask_roi_pool({**features, IMAGE_KEY: batch}, boxes, sizes).numpy())
    # dense: one image per run; heads: RoIs in runs of one size
    return {part: arrays if part == "dense" else _chunks(arrays) for part, arrays in found.items() if arrays}


def _chunks(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """RoIs in runs of one shape (ONNX Runtime's histogram collector stacks a stride's
    outputs): CHUNK each, the remainder dropped when there is at least one full chunk."""
    joined = np.concatenate(arrays)
    size = min(CHUNK, len(joined))
    return [np.ascontiguousarray(joined[i : i + size]) for i in range(0, len(joined) - size + 1, size)]


def quantize_part(src: Path, dst: Path, inputs: list[np.ndarray], flavour: str = "tensorrt") -> Path:
    """A Q/DQ int8 copy of the ONNX part `src` at `dst`, calibrated on `inputs`, in one
    of `FLAVOURS` (module docstring)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    graph = onnx.load(str(src), load_external_data=False).graph
    (name,) = [i.name for i in graph.input]
    weighted = [n for n in graph.node if n.op_type in QUANTIZED_OPS]
    keep_float = [n.name for n in weighted if any(pattern in n.name for pattern in FLOAT_NODES)]
    if weighted and weighted[0].name.startswith("/backbone/"):
        keep_float.append(weighted[0].name)  # the first convolution of the dense part

    class Reader(CalibrationDataReader):
        """`inputs` in strides: ONNX Runtime keeps every activation of a stride in memory
        (about 100 MB per image for the dense part) and merges between strides."""

        def __init__(self) -> None:
            self.position, self.end = 0, len(inputs)

        def __len__(self) -> int:
            return len(inputs)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.position, self.end = start_index, end_index

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.position >= self.end:
                return None
            self.position += 1
            return {name: inputs[self.position - 1]}

    # strides must divide the count. (CalibMaxIntermediateOutputs, the other way to bound
    # memory, silently drops every full batch of outputs in onnxruntime 1.32.)
    stride = max(d for d in range(1, STRIDE + 1) if len(inputs) % d == 0)
    if flavour not in FLAVOURS:
        raise ValueError(f"int8 flavour {flavour!r}: one of {FLAVOURS}")
    tensorrt = flavour == "tensorrt"

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram collector prints progress lines
            quantize_static(
                str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8 if tensorrt else QuantType.QUInt8, weight_type=QuantType.QInt8,
                op_types_to_quantize=QUANTIZED_OPS if tensorrt else None,  # None: every op ORT quantizes
                nodes_to_exclude=keep_float, calibrate_method=CalibrationMethod.Percentile,
                # biases stay float: TensorRT dequantizes 8-bit values only (engines.onnx_lint)
                # CalibStridedMinMax strides any calibrator; the histograms merge between strides
                extra_options={"ActivationSymmetric": tensorrt, "WeightSymmetric": True, "QuantizeBias": False,
                               "CalibStridedMinMax": stride, "CalibPercentile": PERCENTILE},
            )
    except Exception as exc:  # ORT's quantizer raises many types; the reason is one line
        raise ModelError(f"{src.name}: int8 quantization ({flavour}) failed ({type(exc).__name__}: {exc})") from exc
    check_loads(dst)
    return dst


def export_int8(package: Package, out: Path, images: list[np.ndarray], source: str = "") -> Package:
    """A copy of the fp32 `package` in `out` (may be the package itself) whose ONNX parts
    are Q/DQ int8, calibrated on `images`, in both flavours (module docstring); precision
    "int8", the calibration recorded."""
    if package.meta.get("precision", "fp32") != "fp32":
        raise ModelError(f"package {package.root} is {package.meta['precision']}: quantize an fp32 package")
    if not images:
        raise ModelError("int8 calibration needs at least one image")
    inputs = calibration_inputs(package, images)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, entry in package.meta["files"].items():
        source_file, target = package.file(part), out / entry["path"]
        if part in ONNX_PARTS:
            if part not in inputs:
                raise ModelError(f"int8 calibration: no {part} inputs on these {len(images)} images (no detections?)")
            started = time.monotonic()  # a dense part takes a minute or two per flavour on 2 cores
            log.info("int8: calibrating %s on %d inputs, two flavours (TensorRT, CPU)", part, len(inputs[part]))
            cpu_name = Path(entry["path"]).with_suffix(".cpu.onnx").name
            quantize_part(source_file, out / cpu_name, inputs[part], "cpu")
            files[cpu_part(part)] = cpu_name
            staged = out / f".{entry['path']}.int8.tmp"  # quantize_static reads src while writing dst
            os.replace(quantize_part(source_file, staged, inputs[part]), target)
            log.info("int8: %s done in %.0f s", part, time.monotonic() - started)
        elif source_file.resolve() != target.resolve():
            shutil.copy(source_file, target)
        files[part] = entry["path"]
    meta = {k: v for k, v in package.meta.items() if k not in ("format", "files", "tensorrt")}
    meta.update(precision="int8", calibration={"images": len(images), "source": source,
                                               "rois_per_image": ROIS_PER_IMAGE, "method": f"percentile {PERCENTILE}"})
    return write_package(out, meta, files)
