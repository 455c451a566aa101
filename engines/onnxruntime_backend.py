"""ONNX Runtime backend, the default on CPU: the package's ONNX parts in ORT sessions,
the shared two-stage glue in torch between them."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from engines.models import build_model
from engines.package import Package
from engines.two_stage import TwoStageEngine


def session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # One intra-op pool sized to the machine: decode, preprocess and the sinks are mostly
    # waiting on their queues while the detector runs, and a second (inter-op) pool would
    # only fight the first for the same cores.
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    # idle pool threads sleep instead of spinning: other stages need the cores (pipeline/core/threads.py)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxRuntimeParts:
    def __init__(self, package: Package, threads: int | None = None, cpu_flavour: bool = True) -> None:
        """`cpu_flavour`: run an int8 package's CPU flavour of each part (engines/int8.py);
        False runs the files TensorRT builds (a reference for its plans)."""
        options = session_options(threads)
        self.feature_names = package.feature_names
        file = package.cpu_file if cpu_flavour else package.file
        self.dense_session = self._session(file("dense"), options)
        self.box_session = self._session(file("box_head"), options)
        self.mask_session = self._session(file("mask_head"), options) if package.has("mask_head") else None

    @staticmethod
    def _session(path: Path, options: ort.SessionOptions) -> ort.InferenceSession:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def dense(self, images: torch.Tensor) -> tuple[OrderedDict[str, torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        outputs = [torch.from_numpy(o) for o in self.dense_session.run(None, {"images": _numpy(images)})]
        levels = len(self.feature_names)
        features = OrderedDict(zip(self.feature_names, outputs[:levels]))
        return features, outputs[levels : 2 * levels], outputs[2 * levels :]

    def box_head(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, regression = self.box_session.run(None, {"roi_features": _numpy(roi_features)})
        return torch.from_numpy(logits), torch.from_numpy(regression)

    def mask_head(self, roi_features: torch.Tensor) -> torch.Tensor:
        assert self.mask_session is not None
        (logits,) = self.mask_session.run(None, {"roi_features": _numpy(roi_features)})
        return torch.from_numpy(logits)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().float().numpy())


class OnnxRuntimeEngine(TwoStageEngine):
    backend = "ONNX Runtime"
    device = "cpu"  # CPUExecutionProvider

    def __init__(
        self, package: Package, score_floor: float, threads: int | None = None, mask_floor: float | None = None,
        cpu_flavour: bool = True,
    ) -> None:
        self.threads = threads or os.cpu_count() or 1  # as session_options sizes the pool
        info = package.info
        # the skeleton supplies only parameter-free modules (anchors, coders, RoIAlign)
        skeleton = build_model(info.architecture, len(info.class_names))
        super().__init__(skeleton, OnnxRuntimeParts(package, threads, cpu_flavour), info, score_floor, mask_floor)
