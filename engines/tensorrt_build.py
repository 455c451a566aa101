"""Build TensorRT plans for an engine package: one plan per ONNX part, in PACKAGE/trt/.

Works with TensorRT 10 and 11. Networks are strongly typed: precision comes from the ONNX
types, never from builder flags (TensorRT 11 removed FP16/INT8): an fp16 build first
converts the ONNX parts to fp16 (`engines.fp16`, a maintained converter), and a package
exported as fp16 or int8 (explicit Q/DQ nodes) is built as its ONNX says. Each part gets one optimization profile
over its dynamic first axis (images for the dense part, RoIs for the heads); tactic
timings persist in a timing cache file so rebuilds are fast. The result is a metadata
record (`tensorrt` in package.json) that the backend checks before loading a plan.

`tensorrt` is imported inside functions: this module imports on machines without it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch

from engines.fp16 import convert_fp16
from engines.onnx_lint import lint
from engines.package import METADATA, Package, sha256
from pipeline.core.errors import ModelError

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger("detstream.tensorrt")

PARTS = ("dense", "box_head", "mask_head")
ROIS_OPT = 128  # typical RoIs per head call (proposals of one or two images)
# Live runs batch one or two frames (one camera, or two sharing the detector): TensorRT
# picks its tactics for the opt shape, so that is what the dense profile is tuned for.
LIVE_BATCH = 2
INSTALL_HINT = "install with pip install 'detstream[tensorrt]' on an NVIDIA machine"


def import_tensorrt() -> ModuleType:
    """The `tensorrt` module and a CUDA device, or one clear error saying what is missing."""
    try:
        import tensorrt
    except ImportError as exc:
        raise ModelError(f"TensorRT is not installed ({exc}): {INSTALL_HINT}") from exc
    if not torch.cuda.is_available():
        raise ModelError("TensorRT needs an NVIDIA GPU with CUDA, and torch sees none on this machine")
    return tensorrt


@functools.cache
def trt_logger() -> trt.ILogger:
    """The process's one TensorRT logger: TensorRT keeps the first logger it is given for
    the whole process, so builders and runtimes made later must share it."""
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


def cuda_major(trt_module: ModuleType) -> str:
    """The CUDA major version TensorRT was built for ("12", "13"). TensorRT 10 ships for
    CUDA 12 and 13 under one version string, and a plan of one does not load in the other.
    pip wheels say it in their distribution name (tensorrt-cu12-bindings...); a TensorRT
    installed otherwise is assumed to match the CUDA torch was built with."""
    for dist in metadata.distributions():
        found = re.fullmatch(r"tensorrt[-_]cu(\d+)(?:[-_].*)?", (dist.metadata["Name"] or "").lower())
        if found and dist.version == getattr(trt_module, "__version__", None):
            return found.group(1)
    return (torch.version.cuda or "?").split(".")[0]


def machine_record(trt_module: ModuleType, device: torch.device | int | None = None) -> dict[str, str]:
    """What a plan is tied to: the TensorRT release, its CUDA major, the GPU generation."""
    major, minor = torch.cuda.get_device_capability(device)
    return {"version": trt_module.__version__, "cuda": cuda_major(trt_module),
            "gpu": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}


def build_plans(
    package: Package,
    fp16: bool = False,
    max_batch: int | None = None,
    timing_cache: Path | None = None,
    tf32: bool = True,
) -> dict[str, Any]:
    """Build PACKAGE/trt/PART.PRECISION.plan for each ONNX part; return the `tensorrt` record.

    `max_batch` defaults to the package's batch range; `timing_cache` to PACKAGE/trt/timing.cache.
    `tf32=False` keeps fp32 convolutions and matmuls in full fp32 (TensorRT's default
    uses TF32 on Ampere and later: ~1e-3 relative error, faster).
    """
    trt = import_tensorrt()
    exported = package.meta.get("precision", "fp32")  # fp16 / int8 packages carry their types in the ONNX
    if fp16 and exported != "fp32":
        raise ModelError(f"package {package.root} is already {exported}: build it without --fp16")
    precision = "fp16" if fp16 else exported
    if max_batch is None:
        max_batch = int(package.meta["batch"]["max"])
    if max_batch < 1:
        raise ModelError(f"max batch {max_batch}: the dense plan needs room for at least one image")
    rois = (int(package.meta["rois"]["min"]), min(ROIS_OPT, int(package.meta["rois"]["max"])),
            int(package.meta["rois"]["max"]))
    # first-axis (min, opt, max) of each part's one optimization profile
    ranges = {"dense": (int(package.meta["batch"]["min"]), min(LIVE_BATCH, max_batch), max_batch),
              "box_head": rois, "mask_head": rois}
    out = package.root / "trt"
    out.mkdir(exist_ok=True)
    cache_path = timing_cache or out / "timing.cache"
    logger = trt_logger()
    trt.init_libnvinfer_plugins(logger, "")  # before parsing: RoiAlign and others are plugins
    plans = {}
    for part in (p for p in PARTS if package.has(p)):
        onnx_path = package.file(part)  # checksum verified
        for finding in lint(onnx_path):  # the parser decides; the lint explains early
            log.warning("%s", finding)
        if fp16:
            onnx_path = convert_fp16(onnx_path, out / f"{part}.fp16.onnx")
        plan = out / f"{part}.{precision}.plan"
        input_size = package.info.input_size if part == "dense" else None
        _build(logger, onnx_path, plan, ranges[part], input_size, cache_path, tf32)
        plans[part] = {"path": plan.relative_to(package.root).as_posix(), "sha256": sha256(plan)}
    return {
        **machine_record(trt),
        "precision": precision,
        "tf32": tf32,
        "input_size": list(package.info.input_size),
        "batch": dict(zip(("min", "opt", "max"), ranges["dense"])),
        "rois": dict(zip(("min", "opt", "max"), rois)),
        "plans": plans,
    }


def _build(
    logger: trt.ILogger,
    onnx_path: Path,
    plan: Path,
    first_axis: tuple[int, int, int],
    input_size: tuple[int, int] | None,
    cache_path: Path,
    tf32: bool,
) -> None:
    import tensorrt as trt  # present: build_plans checked

    try:
        builder: trt.Builder = trt.Builder(logger)
    except TypeError as exc:  # the bindings' way of saying the library could not start on this GPU
        raise ModelError(f"TensorRT could not start on this GPU ({exc}): check the NVIDIA driver and CUDA") from exc
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = []
        for i in range(parser.num_errors):
            error: trt.ParserError = parser.get_error(i)
            errors.append(f"node {error.node()} {error.node_name()!r} ({error.node_operator()}): {error.desc()}")
        raise ModelError(f"TensorRT cannot parse {onnx_path.name}: " + "; ".join(errors))
    config = builder.create_builder_config()
    if not tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor: trt.ITensor = network.get_input(i)
        rest = tuple(tensor.shape)[1:]
        if any(d < 0 for d in rest):
            raise ModelError(f"{onnx_path.name}: input {tensor.name} {tuple(tensor.shape)} may vary only in its first axis")
        if input_size is not None and tuple(rest[-2:]) != tuple(input_size):
            raise ModelError(f"{onnx_path.name}: input {tensor.name} is {rest[-2:]}, the package says {input_size}")
        low, opt, high = ((n, *rest) for n in first_axis)
        profile.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(profile)
    _use_timing_cache(config, cache_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f"TensorRT could not build {onnx_path.name} (see the TensorRT log above)")
    plan.write_bytes(bytes(serialized))
    # write the cache back after every part: tactics measured so far survive a failure later
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))


def _use_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    # a cache from another GPU or TensorRT version is refused, not merged: start a new one
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("timing cache %s does not fit this GPU / TensorRT: starting a new one", path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def record_build(package: Package, record: dict[str, Any]) -> Package:
    """Store the build record under `tensorrt` in package.json (other entries untouched)."""
    meta = {**package.meta, "tensorrt": record}
    (package.root / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
    return Package(package.root, meta)
