"""The exported parts pass the TensorRT ONNX lint, and the lint catches what TensorRT refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engines.export import export_package
from engines.onnx_lint import lint


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    roots = {}
    for name in ("fasterrcnn_compact", "maskrcnn_compact", "maskrcnn_compact_px"):
        roots[name] = export_package(f"arch:{name}", tmp_path_factory.mktemp(name) / "package").root
    return roots


def test_exported_parts_are_clean(packages):
    parts = sorted(p for root in packages.values() for p in root.glob("*.onnx"))
    names = ["box_head.onnx", "dense.onnx"] + ["box_head.onnx", "dense.onnx", "mask_head.onnx"] * 2
    assert [p.name for p in parts] == names
    for part in parts:
        assert lint(part) == [], part


# ---- tiny graphs holding one thing TensorRT refuses (or warns about) each ----------------

def _model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _float(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def unique() -> onnx.ModelProto:
    return _model([helper.make_node("Unique", ["x"], ["y"], name="unique")], [_float("x", [8])], [_float("y", None)])


def resize_cubic() -> onnx.ModelProto:
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="cubic")
    return _model([node], [_float("x", [1, 1, 4, 4])], [_float("y", [1, 1, 8, 8])], [scales])


def topk_large() -> onnx.ModelProto:
    k = numpy_helper.from_array(np.array([5000], np.int64), "k")
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="topk")
    outputs = [_float("values", [1, 5000]), helper.make_tensor_value_info("indices", TensorProto.INT64, [1, 5000])]
    return _model([node], [_float("x", [1, 10000])], outputs, [k])


def topk_unsorted() -> onnx.ModelProto:
    k = numpy_helper.from_array(np.array([10], np.int64), "k")
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="topk", sorted=0)
    outputs = [_float("values", [1, 10]), helper.make_tensor_value_info("indices", TensorProto.INT64, [1, 10])]
    return _model([node], [_float("x", [1, 100])], outputs, [k])


def growing_loop() -> onnx.ModelProto:
    """state = concat(state, state) three times: the carried shape changes every iteration."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Concat", ["state_in", "state_in"], ["state_out"], axis=0, name="grow")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), _float("state_in", None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), _float("state_out", None)],
    )
    trips = numpy_helper.from_array(np.array(3, np.int64), "trips")
    go = numpy_helper.from_array(np.array(True), "go")
    loop = helper.make_node("Loop", ["trips", "go", "x"], ["y"], body=body, name="loop")
    return _model([loop], [_float("x", [2])], [_float("y", None)], [trips, go])


def unique_inside_if() -> onnx.ModelProto:
    """Subgraphs are linted too."""
    def branch(name: str, op: str) -> onnx.GraphProto:
        return helper.make_graph([helper.make_node(op, ["x"], [f"{name}_y"])], name, [], [_float(f"{name}_y", None)])

    node = helper.make_node("If", ["c"], ["y"], then_branch=branch("then", "Unique"), else_branch=branch("else", "Identity"))
    return _model([node], [helper.make_tensor_value_info("c", TensorProto.BOOL, []), _float("x", [4])], [_float("y", None)])


def efficient_nms_plugin() -> onnx.ModelProto:
    node = helper.make_node("EfficientNMS_TRT", ["boxes", "scores"], ["count"], name="nms")
    inputs = [_float("boxes", [1, 100, 4]), _float("scores", [1, 100, 3])]
    return _model([node], inputs, [helper.make_tensor_value_info("count", TensorProto.INT32, [1, 1])])


def nms() -> onnx.ModelProto:
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["keep"], name="nms")
    inputs = [_float("boxes", [1, 100, 4]), _float("scores", [1, 1, 100])]
    return _model([node], inputs, [helper.make_tensor_value_info("keep", TensorProto.INT64, [None, 3])])


def double_input() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [4])
    y = helper.make_tensor_value_info("y", TensorProto.DOUBLE, [4])
    return _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x], [y])


def int32_dequantize() -> onnx.ModelProto:
    """A quantized bias (int32 DequantizeLinear), which TensorRT does not take."""
    bias = numpy_helper.from_array(np.array([7, -3], np.int32), "bias_q")
    scale = numpy_helper.from_array(np.array(0.01, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(0, np.int32), "zero")
    nodes = [helper.make_node("DequantizeLinear", ["bias_q", "scale", "zero"], ["bias"], name="dq_bias"),
             helper.make_node("Add", ["x", "bias"], ["y"], name="add")]
    return _model(nodes, [_float("x", [2])], [_float("y", [2])], [bias, scale, zero])


def int8_qdq() -> onnx.ModelProto:
    """8-bit Q/DQ around a Relu: clean (the int8 tensors belong to the Q/DQ pair)."""
    scale = numpy_helper.from_array(np.array(0.01, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(0, np.int8), "zero")
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "scale", "zero"], ["xd"], name="dq"),
             helper.make_node("Relu", ["xd"], ["y"], name="relu")]
    return _model(nodes, [_float("x", [2])], [_float("y", [2])], [scale, zero])


def test_int8_qdq_pairs_are_clean(tmp_path):
    onnx.save(int8_qdq(), str(tmp_path / "qdq.onnx"))
    assert lint(tmp_path / "qdq.onnx") == []


CASES = {
    "int32 DequantizeLinear": (int32_dequantize, "error: graph node 'dq_bias' (DequantizeLinear): dequantizes INT32"),
    "unsupported op": (unique, "error: graph node 'unique' (Unique): not supported"),
    "Resize cubic": (resize_cubic, "error: graph node 'up' (Resize): mode 'cubic' is not supported"),
    "TopK K=5000": (topk_large, "error: graph node 'topk' (TopK): K = 5000 must be less than 3840"),
    "TopK unsorted": (topk_unsorted, "error: graph node 'topk' (TopK): sorted must be 1"),
    "growing Loop": (growing_loop, "error: graph node 'loop' (Loop): carried value 'state_in' grows every iteration (Concat)"),
    "op inside If": (unique_inside_if, "(If).then_branch node 'then_y' (Unique): not supported"),
    "deprecated plugin": (efficient_nms_plugin, "error: graph node 'nms' (EfficientNMS_TRT): deprecated TensorRT plugin"),
    "data-dependent": (nms, "warning: graph node 'nms' (NonMaxSuppression): data-dependent output size"),
    "float64": (double_input, "error: graph input 'x' has type DOUBLE"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lint_reports(case, tmp_path):
    make, expected = CASES[case]
    path = tmp_path / "model.onnx"
    onnx.save(make(), str(path))
    findings = lint(path)
    assert any(expected in f for f in findings), findings
    assert all(f.startswith("model.onnx: ") for f in findings)
