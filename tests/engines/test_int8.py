"""`detstream export --int8 --calibration COCO.json` (engines/int8.py): a Q/DQ package from
ONNX Runtime's static quantization, calibrated on a tiny real set through our own
preprocessing, that ONNX Runtime runs on CPU and the TensorRT build takes as int8."""

from __future__ import annotations

import argparse

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from engines.coco_images import dataset_images
from engines.drift import measure_drift
from engines.export_cli import add_parser
from engines.int8 import export_int8
from engines.onnx_lint import lint
from engines.package import Package, read_package
from pipeline.core.errors import ConfigError, ModelError
from synth.dataset import write_dataset


def _export(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["export", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_dataset(root / "calibration", seed=2, count=3, width=640, height=360)  # the validation seed
    write_dataset(root / "held-out", seed=44, count=3, width=640, height=360)
    return root


@pytest.fixture(scope="module")
def int8(data) -> Package:
    out = data / "int8"
    assert _export("--model", "embedded:faster-compact-synth", "--out", str(out), "--int8",
                   "--calibration", str(data / "calibration" / "annotations.json"), "--calibration-images", "3") == 0
    return read_package(out)


def _nodes(package: Package, part: str) -> list[onnx.NodeProto]:
    return list(onnx.load(str(package.file(part))).graph.node)


def test_the_package_is_explicitly_quantized_where_it_pays(int8):
    assert int8.meta["precision"] == "int8"
    calibration = int8.meta["calibration"]
    assert calibration["images"] == 3 and calibration["source"].endswith("annotations.json")
    assert calibration["method"] == "percentile 99.99"
    for part in ("dense", "box_head"):
        model = onnx.load(str(int8.file(part)))
        initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        producers = {o: n for n in model.graph.node for o in n.output}
        weighted = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
        quantized = {n.name for n in weighted if n.input[1] in producers and producers[n.input[1]].op_type == "DequantizeLinear"}
        float_kept = {n.name for n in weighted} - quantized
        assert quantized and float_kept, part
        # the sensitive layers stay float: first convolution, RPN outputs, predictors
        assert all("/rpn_head/cls_logits" in n or "/rpn_head/bbox_pred" in n or "/predictor/" in n
                   or n == weighted[0].name for n in float_kept), float_kept
        assert any("/predictor/" in n for n in float_kept) or part == "dense"
        for node in model.graph.node:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                zero = initializers[node.input[2]]
                assert zero.dtype == np.int8 and not zero.any()  # symmetric int8: what TensorRT takes
        # weights per output channel: one scale per channel
        dq = producers[next(n for n in weighted if n.name in quantized).input[1]]
        assert initializers[dq.input[1]].ndim == 1 and initializers[dq.input[1]].size > 1
        assert [f for f in lint(int8.file(part)) if "error" in f] == []  # TensorRT's parser takes it


def test_onnx_runtime_runs_the_cpu_flavour(int8, data):
    """The CPU flavour: uint8 activations (ONNX Runtime's fast x86 kernels), more op types
    quantized than the TensorRT flavour, and it is what the ONNX Runtime backend runs."""
    import onnxruntime as ort
    import torch

    from engines.inputs import Normalizer
    from engines.onnxruntime_backend import OnnxRuntimeParts

    for part in ("dense", "box_head"):
        assert int8.has(part + "_cpu") and int8.cpu_file(part) != int8.file(part)
        cpu, tensorrt = (onnx.load(str(path)) for path in (int8.cpu_file(part), int8.file(part)))
        initializers = {t.name: numpy_helper.to_array(t) for t in cpu.graph.initializer}
        quantize = [n for n in cpu.graph.node if n.op_type == "QuantizeLinear"]
        assert quantize and all(initializers[n.input[2]].dtype == np.uint8 for n in quantize), part
        weights = [initializers[n.input[0]] for n in cpu.graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in initializers and initializers[n.input[0]].ndim > 1]
        assert weights and all(w.dtype == np.int8 for w in weights), part  # weights stay signed: U8S8
        if part == "dense":  # more than the weighted layers: squeeze-excitation's pooling and scaling too
            def int8_inputs(model: onnx.ModelProto) -> set[str]:
                fed = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
                return {n.op_type for n in model.graph.node if set(n.input) & fed}

            assert {"GlobalAveragePool", "Mul"} <= int8_inputs(cpu) - int8_inputs(tensorrt)
    image = dataset_images(data / "held-out" / "annotations.json", 1)
    batch, _ = Normalizer(int8.info)(image)
    features, _, _ = OnnxRuntimeParts(int8).dense(batch)
    for path, same in ((int8.cpu_file("dense"), True), (int8.file("dense"), False)):
        expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": batch.numpy()})
        assert torch.equal(next(iter(features.values())), torch.from_numpy(expected[0])) == same, path


def test_onnxruntime_runs_it_close_to_fp32(int8, data, tmp_path):
    from engines.export import export_package

    fp32 = export_package("embedded:faster-compact-synth", tmp_path / "fp32")
    report = measure_drift(fp32, int8, dataset_images(data / "held-out" / "annotations.json", 3))
    found = report["detections"]
    assert found["reference"] >= 3 and found["paired"] >= 0.7 * found["reference"], report
    assert found["box_px_mean"] < 5.0, report
    with pytest.raises(ModelError, match="is int8: quantize an fp32 package"):
        export_int8(int8, tmp_path / "twice", [np.zeros((360, 640, 3), np.uint8)])


def test_the_tensorrt_build_takes_it_as_int8(int8, tmp_path, monkeypatch):
    import shutil

    from engines.tensorrt_build import build_plans
    from trt_stubs import fake_tensorrt, pretend_gpu

    pretend_gpu(monkeypatch, fake_tensorrt())
    root = tmp_path / "package"
    shutil.copytree(int8.root, root)
    record = build_plans(read_package(root), max_batch=2)
    assert record["precision"] == "int8" and all(e["path"].endswith(".int8.plan") for e in record["plans"].values())
    with pytest.raises(ModelError, match="is already int8: build it without --fp16"):
        build_plans(read_package(root), fp16=True)


def test_int8_needs_calibration_images(tmp_path):
    with pytest.raises(ConfigError, match="--calibration COCO.json"):
        _export("--model", "embedded:faster-compact-synth", "--out", str(tmp_path / "p"), "--int8")
    with pytest.raises(ConfigError, match="--fp16 or --int8, not both"):
        _export("--model", "x", "--out", str(tmp_path / "p"), "--int8", "--fp16", "--calibration", "c.json")


def test_head_calibration_runs_have_one_shape():
    """ONNX Runtime's histogram calibration stacks the outputs of a stride: runs of two
    shapes made it fail on the mask head."""
    from engines.int8 import CHUNK, _chunks

    rois = [np.zeros((n, 8, 7, 7), np.float32) for n in (64, 50, 36)]  # 150 RoIs
    assert [len(c) for c in _chunks(rois)] == [CHUNK, CHUNK]
    assert [len(c) for c in _chunks([np.zeros((30, 8, 7, 7), np.float32)])] == [30]
