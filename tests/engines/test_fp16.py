"""FP16 ONNX through the maintained converter (engines/fp16.py): float32 interface, the
graph constructs a hand-written pass missed, the package parts numerically, and the
drift measurement against fp32 on CPU."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from engines.export import export_package
from engines.fp16 import FP32_OPS, convert_fp16, export_fp16
from engines.package import read_package
from pipeline.core.errors import ModelError


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _tricky_model(path) -> None:
    """Constant value_floats, a ConstantOfShape fill value, Resize scales computed from the
    input's shape (they must stay float32) and a Softmax (kept float32)."""
    const = helper.make_tensor
    nodes = [
        helper.make_node("Constant", [], ["gains"], value_floats=[0.5, 2.0]),
        helper.make_node("Constant", [], ["gain_shape"], value=const("s", TensorProto.INT64, [4], [1, 2, 1, 1])),
        helper.make_node("Reshape", ["gains", "gain_shape"], ["gain"]),
        helper.make_node("Mul", ["x", "gain"], ["scaled"]),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["fill"], value=const("v", TensorProto.FLOAT, [1], [0.25])),
        helper.make_node("Add", ["scaled", "fill"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "weight"], ["back"]),
        helper.make_node("Constant", [], ["starts"], value=const("a", TensorProto.INT64, [1], [2])),
        helper.make_node("Constant", [], ["ends"], value=const("b", TensorProto.INT64, [1], [4])),
        helper.make_node("Slice", ["shape", "starts", "ends"], ["hw"]),
        helper.make_node("Cast", ["hw"], ["hw_float"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["target"], value=const("t", TensorProto.FLOAT, [2], [8.0, 8.0])),
        helper.make_node("Div", ["target", "hw_float"], ["hw_scales"]),
        helper.make_node("Constant", [], ["ones"], value=const("o", TensorProto.FLOAT, [2], [1.0, 1.0])),
        helper.make_node("Concat", ["ones", "hw_scales"], ["scales"], axis=0),
        helper.make_node("Resize", ["back", "", "scales"], ["resized"], mode="nearest"),
        helper.make_node("Softmax", ["resized"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tricky",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, 8, 8])],
        initializer=[const("weight", TensorProto.FLOAT, [1], [3.0])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_the_converter_handles_what_the_hand_written_pass_missed(tmp_path):
    _tricky_model(tmp_path / "fp32.onnx")
    half = convert_fp16(tmp_path / "fp32.onnx", tmp_path / "fp16.onnx")
    model = onnx.load(str(half))
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [TensorProto.FLOAT]
    # the model computes in fp16 (some weight or constant became fp16), Softmax / Resize stay fp32
    halves = [t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT16]
    halves += [n for n in model.graph.node if n.op_type == "Constant" and any(
        a.t.data_type == TensorProto.FLOAT16 for a in n.attribute)]
    assert halves
    x = {"x": np.random.default_rng(0).standard_normal((3, 2, 4, 4)).astype(np.float32)}
    full_out, half_out = _session(tmp_path / "fp32.onnx").run(None, x)[0], _session(half).run(None, x)[0]
    assert half_out.shape == full_out.shape == (3, 2, 8, 8)
    np.testing.assert_allclose(half_out, full_out, atol=5e-3)
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    producers = {o: n for n in model.graph.node for o in n.output}
    assert producers[softmax.input[0]].op_type in ("Cast", "Resize")  # fed float32, as FP32_OPS says
    assert "Softmax" in FP32_OPS


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return export_package("embedded:mask-compact-synth", tmp_path_factory.mktemp("mask") / "package")


def test_package_parts_keep_float32_io_and_agree(package, tmp_path):
    half = export_fp16(package, tmp_path / "half")
    assert half.meta["precision"] == "fp16" and read_package(half.root).meta["files"].keys() == package.meta["files"].keys()
    rng = np.random.default_rng(0)
    for part in ("dense", "box_head", "mask_head"):
        full_session, half_session = _session(package.file(part)), _session(half.file(part))
        assert [(i.name, i.type) for i in half_session.get_inputs()] == [(i.name, i.type) for i in full_session.get_inputs()]
        assert [(o.name, o.type) for o in half_session.get_outputs()] == [(o.name, o.type) for o in full_session.get_outputs()]
        shape = [dim if isinstance(dim, int) else 2 for dim in full_session.get_inputs()[0].shape]
        x = {full_session.get_inputs()[0].name: rng.standard_normal(shape).astype(np.float32)}
        for full, half_out in zip(full_session.run(None, x), half_session.run(None, x), strict=True):
            scale = float(np.abs(full).max()) or 1.0
            assert float(np.abs(full - half_out).max()) <= 2e-2 * scale, part
    with pytest.raises(ModelError, match="is fp16: convert an fp32 package"):
        export_fp16(half, tmp_path / "twice")


def test_a_broken_model_is_a_model_error(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="bad.onnx: fp16 conversion failed"):
        convert_fp16(tmp_path / "bad.onnx", tmp_path / "out.onnx")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from synth.dataset import write_dataset

    root = tmp_path_factory.mktemp("images")
    write_dataset(root, seed=44, count=4, width=640, height=360)
    return root / "annotations.json"


def test_drift_against_fp32_is_measured_and_within_the_fp16_tolerance(package, images, tmp_path):
    from engines.coco_images import dataset_images
    from engines.drift import main, measure_drift
    from engines.parity import Tolerance

    half = export_fp16(package, tmp_path / "half")
    report = measure_drift(package, half, dataset_images(images, 4))
    assert report["precision"] == "fp16" and report["images"] == 4
    assert 0 < max(report["dense_max_relative_error"].values()) < 0.05  # fp16 moved it, a little
    found = report["detections"]
    assert found["reference"] >= 4 and found["paired"] >= found["reference"] - 1
    assert 0 < found["box_px_max"] <= 2.0 and found["mask_iou_min"] >= 0.9
    assert report["within_tolerance"], report["problems"]
    # the same drift judged at fp32's exactness fails: the verdict can say no
    exact = measure_drift(package, half, dataset_images(images, 4), Tolerance(1e-6, 1e-7, 1.0))
    assert not exact["within_tolerance"] and exact["problems"]
    out = tmp_path / "drift.json"
    assert main([str(package.root), str(half.root), "--images", str(images), "--count", "2", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["images"] == 2
