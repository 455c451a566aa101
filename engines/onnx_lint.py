"""Check an ONNX graph against what the TensorRT ONNX parser accepts, without TensorRT.

No machine here has TensorRT, so this is how an exported package is checked for it: every
node (including the bodies of If / Loop / Scan) against the parser's supported-operator
list and the restrictions that matter for R-CNN graphs. Findings are one line each,
starting with `error:` (the parser or builder would refuse it) or `warning:` (it builds,
but not the way this project wants: data-dependent outputs, plugins).

    python -m engines.onnx_lint PACKAGE/dense.onnx ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

# The operators the parser imports. Source: onnx/onnx-tensorrt, docs/operators.md, branch
# 10.1-GA (June 2024: TensorRT 10, opsets 9 to 20). Later releases may add operators, so
# this is a floor: an op missing here may work on a newer TensorRT, never the reverse.
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand
EyeLike Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GroupNormalization GRU
HardSigmoid HardSwish Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN
LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization
LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg
NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1
ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan
Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice
Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())
OPSETS = range(9, 21)  # ai.onnx opsets the TensorRT 10 parser reads

# Plugins NVIDIA deprecated; the design guide forbids building on them.
DEPRECATED_PLUGINS = frozenset({"EfficientNMS_TRT", "EfficientNMS_ONNX_TRT", "PyramidROIAlign_TRT"})
# Ops whose output size depends on the data: TensorRT needs an IOutputAllocator for them
# and they made full R-CNN graphs slower than PyTorch (NVIDIA/TensorRT #4248, #4120).
DATA_DEPENDENT = frozenset({"NonMaxSuppression", "NonZero"})

# Element types the parser accepts (UINT8 only for network inputs/outputs; 8-bit types
# only through Q/DQ quantization: QuantizeLinear outputs, DequantizeLinear inputs and
# their zero points, as int8 packages (engines/int8.py) have them).
TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.INT32,
         TensorProto.INT64, TensorProto.BOOL}
IO_TYPES = TYPES | {TensorProto.UINT8}
QDQ_TYPES = TYPES | {TensorProto.INT8}

RESIZE_MODES = {"nearest", "linear"}
RESIZE_TRANSFORMS = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}
TOPK_MAX = 3840  # K must be below this


def lint(path: Path | str) -> list[str]:
    """Findings for the ONNX file at `path`, `error: ...` or `warning: ...`; [] is clean."""
    model = onnx.load(str(path))
    findings = [f"{Path(path).name}: {line}" for line in _lint_model(model)]
    return findings


def _lint_model(model: onnx.ModelProto) -> list[str]:
    findings: list[str] = []
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version not in OPSETS:
            findings.append(f"warning: opset {opset.version} is outside the {OPSETS.start}-{OPSETS.stop - 1} "
                            "the TensorRT 10 parser was documented for")
    try:  # intermediate types come from shape inference; a graph it cannot type is still linted
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 (onnx raises several types; the lint goes on without)
        pass
    _lint_graph(model.graph, "graph", findings)
    return findings


def _lint_graph(graph: onnx.GraphProto, where: str, findings: list[str]) -> None:
    quantized = {n.output[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    quantized |= {name for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                  for name in n.input[2:3]}  # zero points
    quantized |= {n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    for value in graph.input:
        _check_type(value, IO_TYPES, f"{where} input", findings)
    for value in graph.output:
        _check_type(value, IO_TYPES, f"{where} output", findings)
    for value in graph.value_info:
        _check_type(value, QDQ_TYPES if value.name in quantized else TYPES, f"{where} tensor", findings)
    for tensor in graph.initializer:
        if tensor.data_type not in (QDQ_TYPES if tensor.name in quantized else TYPES):
            findings.append(f"error: {where} initializer {tensor.name!r} has type "
                            f"{TensorProto.DataType.Name(tensor.data_type)}, which TensorRT does not take")
    constants = _constants(graph)
    for node in graph.node:
        label = f"{where} node {node.name or node.output[0]!r} ({node.op_type})"
        findings.extend(f"{severity}: {label}: {text}" for severity, text in _lint_node(node, constants))
        for attr in node.attribute:  # If / Loop / Scan bodies are linted like the main graph
            if attr.type == AttributeProto.GRAPH:
                _lint_graph(attr.g, f"{label}.{attr.name}", findings)
            elif attr.type == AttributeProto.GRAPHS:
                for i, sub in enumerate(attr.graphs):
                    _lint_graph(sub, f"{label}.{attr.name}[{i}]", findings)


def _check_type(value: onnx.ValueInfoProto, allowed: set[int], where: str, findings: list[str]) -> None:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        if kind is not None:  # sequences, maps, optionals: the parser has no such values
            findings.append(f"error: {where} {value.name!r} is a {kind.removesuffix('_type')}, not a tensor")
        return
    elem = value.type.tensor_type.elem_type
    if elem != TensorProto.UNDEFINED and elem not in allowed:
        findings.append(f"error: {where} {value.name!r} has type {TensorProto.DataType.Name(elem)}, "
                        "which TensorRT does not take")


def _constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Values known before run time: initializers and Constant node outputs."""
    known = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    known[node.output[0]] = attr.t
    return known


def _lint_node(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[tuple[str, str]]:
    op = node.op_type
    if op in DEPRECATED_PLUGINS:
        return [("error", "deprecated TensorRT plugin; keep NMS / RoI pooling outside the engine")]
    if node.domain not in ("", "ai.onnx"):
        return [("error", f"custom domain {node.domain!r}: the parser needs a plugin for it")]
    if op not in SUPPORTED_OPS:
        return [("error", "not supported by the TensorRT ONNX parser (onnx-tensorrt operators.md)")]
    if op in DATA_DEPENDENT:
        return [("warning", "data-dependent output size: needs an IOutputAllocator and is slow in TensorRT; "
                            "keep it outside the engine")]
    check = _RESTRICTIONS.get(op)
    return check(node, constants) if check else []


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _resize(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[tuple[str, str]]:
    attrs = _attrs(node)
    found = []
    rules = [("mode", "nearest", RESIZE_MODES), ("coordinate_transformation_mode", "half_pixel", RESIZE_TRANSFORMS),
             ("nearest_mode", "round_prefer_floor", RESIZE_NEAREST), ("keep_aspect_ratio_policy", "stretch", {"stretch"})]
    for name, default, allowed in rules:
        value = _text(attrs.get(name, default))
        if value not in allowed:
            found.append(("error", f"{name} {value!r} is not supported (allowed: {', '.join(sorted(allowed))})"))
    if attrs.get("antialias", 0):
        found.append(("error", "antialiasing is not supported"))
    has_scales = len(node.input) > 2 and node.input[2] != ""
    if has_scales and "axes" in attrs and list(attrs["axes"]) != list(range(len(attrs["axes"]))):  # type: ignore[arg-type]
        found.append(("error", "with a scales input, axes must be 0..rank-1 in order"))
    return found


def _topk(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[tuple[str, str]]:
    found = []
    if _attrs(node).get("sorted", 1) != 1:
        found.append(("error", "sorted must be 1"))
    k = constants.get(node.input[1]) if len(node.input) > 1 else None
    if k is None:
        found.append(("warning", f"K is computed at run time; TensorRT needs K < {TOPK_MAX}"))
    elif int(numpy_helper.to_array(k).max()) >= TOPK_MAX:
        found.append(("error", f"K = {int(numpy_helper.to_array(k).max())} must be less than {TOPK_MAX}"))
    return found


def _loop(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[tuple[str, str]]:
    body = next(a.g for a in node.attribute if a.name == "body")
    carried = len(node.input) - 2  # inputs: max trip count, condition, carried values
    found = []
    producers = {out: n for n in body.node for out in n.output}
    # body inputs: iteration, condition, carried...; outputs: condition, carried..., scans...
    for state_in, state_out in zip(body.input[2:], body.output[1 : 1 + carried]):
        producer = producers.get(state_out.name)
        if producer is not None and producer.op_type in ("Concat", "Pad", "Tile") and state_in.name in producer.input:
            found.append(("error", f"carried value {state_in.name!r} grows every iteration ({producer.op_type}); "
                                   "TensorRT needs the same shape across iterations"))
    has_scans = len(body.output) > 1 + carried
    if has_scans and (node.input[0] == "" or node.input[0] not in constants):
        found.append(("error", "scan outputs with a trip count known only at run time: "
                               "TensorRT needs a fixed scan output length"))
    return found


def _if(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[tuple[str, str]]:
    branches = {a.name: a.g for a in node.attribute if a.name in ("then_branch", "else_branch")}
    then, other = branches.get("then_branch"), branches.get("else_branch")
    if then is None or other is None:
        return []
    found = []
    for a, b in zip(then.output, other.output):
        if a.name == b.name:
            found.append(("error", f"both branches name their output {a.name!r}; TensorRT needs different names"))
        ranks = [len(v.type.tensor_type.shape.dim) for v in (a, b) if v.type.tensor_type.HasField("shape")]
        if len(ranks) == 2 and ranks[0] != ranks[1]:
            found.append(("error", f"branch outputs {a.name!r} and {b.name!r} differ in rank ({ranks[0]} vs {ranks[1]})"))
    return found


def _scatter_nd(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[tuple[str, str]]:
    reduction = _text(_attrs(node).get("reduction", "none"))
    return [] if reduction == "none" else [("error", f"reduction {reduction!r} is not supported")]


def _pad(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[tuple[str, str]]:
    if len(node.input) > 3 and node.input[3] and node.input[3] not in constants:
        return [("error", "axes must be an initializer")]
    return []


def _dequantize(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[tuple[str, str]]:
    # TensorRT's Q/DQ layers are 8-bit (and FP8/INT4); an int32 DequantizeLinear is a
    # quantized bias, which TensorRT does not take: biases stay float
    quantized = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else constants.get(node.input[0])
    if quantized is not None and quantized.data_type not in (TensorProto.INT8, TensorProto.UINT8):
        return [("error", f"dequantizes {TensorProto.DataType.Name(quantized.data_type)}: TensorRT takes 8-bit Q/DQ "
                          "only (keep biases float)")]
    return []


_RESTRICTIONS = {"Resize": _resize, "DequantizeLinear": _dequantize, "TopK": _topk, "Loop": _loop, "If": _if, "ScatterND": _scatter_nd, "Pad": _pad}


def main(argv: list[str]) -> int:
    status = 0
    for path in argv:
        findings = lint(path)
        print("\n".join(findings) if findings else f"{path}: ok")
        status |= any(f.split(": ", 2)[1] == "error" for f in findings)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
