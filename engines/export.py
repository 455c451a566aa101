"""Export a trained model to an engine package of ONNX parts (see `engines.package`).

The split follows the design guide: a dense engine (backbone + FPN + RPN head, dynamic
batch), a box-head engine and a mask-head engine (dynamic number of RoIs); the
data-dependent steps between them stay in torch (`engines.two_stage`). Full-graph exports
of torchvision R-CNNs cannot batch and put data-dependent NMS inside the engine. Legacy
TorchScript exporter (`dynamo=False`), opset 17. Only two-stage models export: region and
one-stage models (engines/models.py kinds) run on PyTorch, and asking to export one is a
ModelError.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from engines.base import ModelInfo
from engines.model_file import load_model, save_model
from engines.models import TWO_STAGE, architecture
from engines.package import Package, write_package
from pipeline.core.errors import ModelError

OPSET = 17
MAX_ROIS = 1000  # the RoI range the engines are built and tested for (TensorRT profiles)
MAX_BATCH = 8  # the batch range TensorRT profiles are built for by default (ONNX Runtime takes any)


class Dense(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.rpn_head = model.rpn.head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = list(self.backbone(images).values())
        objectness, deltas = self.rpn_head(features)
        return (*features, *objectness, *deltas)


class BoxHead(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.head = model.roi_heads.box_head
        self.predictor = model.roi_heads.box_predictor

    def forward(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictor(self.head(roi_features))


class MaskHead(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.head = model.roi_heads.mask_head
        self.predictor = model.roi_heads.mask_predictor

    def forward(self, roi_features: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.head(roi_features))


def _export(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, outputs: list[str], dynamic: str) -> None:
    with warnings.catch_warnings():
        # the legacy exporter is deprecated but chosen on purpose (module docstring):
        # users should not see a warning about a decision that is not theirs to make
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
        torch.onnx.export(
            module.eval(),
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[input_name],
            output_names=outputs,
            dynamic_axes={input_name: {0: dynamic}, **{name: {0: dynamic} for name in outputs}},
        )
    import onnx  # here, not at the top: every `engine: auto` load imports this module (~0.6 s)

    onnx.checker.check_model(str(path))


def export_package(
    model_spec: str,
    out: Path,
    max_batch: int = MAX_BATCH,
    weights: str | None = None,
    input_size: tuple[int, int] | None = None,
) -> Package:
    """Export `model_spec` (with `weights` and `input_size` as `load_model` takes them):
    the package's input size is fixed here."""
    model, info = load_model(model_spec, weights, input_size)
    return export_model(model, info, out, max_batch, source=model_spec)


def export_model(model: nn.Module, info: ModelInfo, out: Path, max_batch: int = MAX_BATCH, source: str = "",
                 extra_meta: dict[str, Any] | None = None) -> Package:
    """Export a loaded model into the folder `out`; `extra_meta` goes into package.json too."""
    kind = architecture(info.architecture).kind
    if kind != TWO_STAGE:
        raise ModelError(f"{source or info.name}: a {info.architecture} model ({kind}) has no ONNX export; "
                         "it runs on PyTorch (--engine torch or auto)")
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    height, width = info.input_size
    images = torch.zeros(2, 3, height, width)
    with torch.no_grad():
        feature_names = list(model.backbone(images).keys())
    levels = len(feature_names)
    dense_outputs = [f"feature_{n}" for n in feature_names]
    dense_outputs += [f"objectness_{i}" for i in range(levels)] + [f"deltas_{i}" for i in range(levels)]
    _export(Dense(model), images, out / "dense.onnx", "images", dense_outputs, "batch")
    channels = model.backbone.out_channels
    box_size = model.roi_heads.box_roi_pool.output_size
    _export(BoxHead(model), torch.zeros(4, channels, *box_size), out / "box_head.onnx", "roi_features",
            ["class_logits", "box_regression"], "rois")
    files = {"dense": "dense.onnx", "box_head": "box_head.onnx"}
    if info.has_masks:
        mask_pool = model.roi_heads.mask_roi_pool
        mask_channels = getattr(mask_pool, "out_channels", channels)  # pixel-reading pools add channels
        _export(MaskHead(model), torch.zeros(4, mask_channels, *mask_pool.output_size), out / "mask_head.onnx", "roi_features",
                ["mask_logits"], "rois")
        files["mask_head"] = "mask_head.onnx"
    save_model(out / "model.pt", model, info)  # the PyTorch reference travels with the package
    files["torch"] = "model.pt"
    import onnx  # for its version (not at the top: see _export)

    meta = {
        "info": info.to_dict(),
        "feature_names": feature_names,
        "batch": {"min": 1, "max": max_batch},
        "rois": {"min": 1, "max": MAX_ROIS},
        "precision": "fp32",
        "opset": OPSET,
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__},
        "source": source,
        **(extra_meta or {}),
    }
    return write_package(out, meta, files)
