"""FP16 ONNX parts through a maintained converter: ONNX Runtime's own
`onnxruntime.transformers.float16` (Microsoft's continuation of onnxconverter-common's,
shipped with the onnxruntime we already depend on). onnxconverter-common 1.16.0 itself
crashes on our graphs (`remove_unnecessary_cast_node`: a Cast pair feeding two nodes).

TensorRT 11 has no FP16 builder flag: a strongly typed network computes in the types of
its ONNX, so fp16 plans start from fp16 ONNX (TensorRT 10's `build-engine --fp16` takes
the same path). Rules:
- inputs and outputs stay float32 (`keep_io_types`), so every backend feeds and reads
  every precision the same way;
- numerically sensitive ops stay float32 (`FP32_OPS`), with Casts around them: the
  converter's own list (ops without fp16 kernels, shape computations such as Range,
  TopK) plus reductions, exponentials, logarithms and normalizations, whose sums
  overflow fp16 (max 65504) or lose its 11-bit mantissa;
- the converter, not our code, walks the graph: Constant values, ConstantOfShape
  defaults, Resize scales (kept float32 by the converter), initializers and subgraphs
  are its job; values beyond fp16 are clamped to its range;
- Constants written as `value_float(s)` are rewritten as `value` tensors first (same
  values): the converter converts tensors only, and left such a Constant float32 while
  retyping its output fp16;
- the converter appends its input Casts after the nodes that read them, which ONNX
  Runtime tolerates and ONNX (and TensorRT's parser) do not: nodes are put back in
  topological order, then the result is checked by ONNX's checker and loaded by ONNX
  Runtime before it is kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx

from engines.package import Package, write_package
from pipeline.core.errors import ModelError

ONNX_PARTS = ("dense", "box_head", "mask_head")
FP32_OPS = (
    "GlobalAveragePool", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp",
    "Softmax", "LogSoftmax", "Exp", "Log", "Pow", "Sqrt", "Reciprocal", "Erf",
    "BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
)


def convert_fp16(src: Path, dst: Path) -> Path:
    """An fp16 copy of the ONNX model `src` at `dst` (float32 inputs and outputs)."""
    from onnxruntime.transformers import float16  # only converting needs it

    try:
        model = onnx.load(str(src))
        _constants_as_tensors(model.graph)
        half = float16.convert_float_to_float16(
            model, keep_io_types=True, op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *FP32_OPS])
        _sort_nodes(half.graph)
        onnx.checker.check_model(half, full_check=True)
    except Exception as exc:  # the converter and checker raise many types; the reason is one line
        raise ModelError(f"{src.name}: fp16 conversion failed ({type(exc).__name__}: {exc}); build in fp32") from exc
    onnx.save(half, str(dst))
    check_loads(dst)
    return dst


def _constants_as_tensors(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        for i, attr in enumerate(node.attribute):
            if attr.name in ("value_float", "value_floats"):
                values = [attr.f] if attr.name == "value_float" else list(attr.floats)
                dims = [] if attr.name == "value_float" else [len(values)]
                tensor = onnx.helper.make_tensor(node.output[0], onnx.TensorProto.FLOAT, dims, values)
                node.attribute[i].CopyFrom(onnx.helper.make_attribute("value", tensor))


def _sort_nodes(graph: onnx.GraphProto) -> None:
    """Reorder `graph.node` so each node follows the producers of its inputs (stable:
    nodes already in order keep it)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(name in known for name in n.input)]
        if not ready:
            raise ModelError(f"graph {graph.name}: a cycle or an input nobody produces: {pending[0].input}")
        for node in ready:
            known.update(node.output)
        ordered += ready
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def check_loads(path: Path) -> None:
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail / InvalidGraph types
        raise ModelError(f"{path.name}: ONNX Runtime cannot load the fp16 model ({exc})") from exc


def export_fp16(package: Package, out: Path) -> Package:
    """A copy of `package` in `out` whose ONNX parts compute in fp16 (precision "fp16");
    the PyTorch reference `model.pt` is copied as is. TensorRT builds it as it is."""
    if package.meta.get("precision", "fp32") != "fp32":
        raise ModelError(f"package {package.root} is {package.meta['precision']}: convert an fp32 package")
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, entry in package.meta["files"].items():
        source = package.file(part)  # checksum verified
        if part in ONNX_PARTS:
            convert_fp16(source, out / entry["path"])
        elif source.resolve() != (out / entry["path"]).resolve():
            shutil.copy(source, out / entry["path"])
        files[part] = entry["path"]
    meta = {k: v for k, v in package.meta.items() if k not in ("format", "files", "tensorrt")}
    meta["precision"] = "fp16"
    return write_package(out, meta, files)
