"""TensorRT backend: the package's plans (built by `detstream build-engine`) on one CUDA
stream, the shared two-stage glue in torch on the same stream between them.

A plan only runs on the TensorRT version and GPU generation it was built for, so the
package's `tensorrt` record is checked first and a mismatch is reported as such (with the
command that fixes it) rather than as a deserialization failure. Tensors stay on the GPU
as torch tensors; TensorRT reads and writes them through their addresses
(`set_tensor_address` + `execute_async_v3`), so no copies go through the host.

`tensorrt` is imported inside functions: this module imports on machines without it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch

from engines.base import Engine
from engines.models import build_model
from engines.package import Package, sha256
from engines.tensorrt_build import gpu_record, import_tensorrt
from engines.two_stage import TwoStageEngine
from pipeline.core.errors import ModelError
from pipeline.core.types import RawOutput

if TYPE_CHECKING:
    import tensorrt as trt

REBUILD = "rebuild with detstream build-engine --package {root}"


def _release(version: str) -> str:
    """major.minor.patch: plans are portable across builds of one release, not across releases."""
    return ".".join(version.split(".")[:3])


def check_record(record: dict[str, Any] | None, root: str, trt_version: str, capability: str,
                 gpu: str, input_size: tuple[int, int]) -> None:
    """Refuse plans built for another TensorRT release, GPU generation or input size."""
    hint = REBUILD.format(root=root)
    if not record:
        raise ModelError(f"package {root} has no TensorRT plans: {hint}")
    built = f"TensorRT {_release(record['version'])} on sm_{record['compute_capability'].replace('.', '')}"
    here = f"TensorRT {_release(trt_version)} on sm_{capability.replace('.', '')} ({gpu})"
    if _release(record["version"]) != _release(trt_version) or record["compute_capability"] != capability:
        raise ModelError(f"plan built for {built} ({record['gpu']}), this machine has {here}: {hint}")
    if tuple(record["input_size"]) != tuple(input_size):
        raise ModelError(f"plans built for input size {tuple(record['input_size'])}, "
                         f"the package now says {tuple(input_size)}: {hint}")


class _Plan:
    """One deserialized plan and its execution context, run over torch CUDA tensors."""

    def __init__(self, runtime: trt.Runtime, data: bytes, name: str, device: torch.device) -> None:
        import tensorrt as trt

        engine: trt.ICudaEngine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise ModelError(f"TensorRT could not load the {name} plan (see the TensorRT log above)")
        self.name = name
        self.device = device
        self.engine = engine  # the context needs its engine alive
        self.context = engine.create_execution_context()
        dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
                  trt.DataType.BF16: torch.bfloat16, trt.DataType.INT32: torch.int32,
                  trt.DataType.INT64: torch.int64, trt.DataType.BOOL: torch.bool}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: dtypes[engine.get_tensor_dtype(n)] for n in names}
        # largest first axis the profile allows: bigger inputs run in chunks
        self.limit = int(engine.get_tensor_profile_shape(self.inputs[0], 0)[2][0])

    def __call__(self, x: torch.Tensor, stream: torch.cuda.Stream) -> dict[str, torch.Tensor]:
        caller = torch.cuda.current_stream(self.device)  # `stream` itself inside TensorRTEngine.infer
        stream.wait_stream(caller)  # x may still be in the making on the caller's stream
        with torch.cuda.stream(stream):
            chunks = [self._run(part, stream) for part in x.split(self.limit)]
            outputs = {n: torch.cat([c[n] for c in chunks]) if len(chunks) > 1 else chunks[0][n] for n in self.outputs}
        if caller != stream:  # called on its own (tests, benchmarks): hand the outputs over
            caller.wait_stream(stream)
            for tensor in outputs.values():
                tensor.record_stream(caller)
        return outputs

    def _run(self, x: torch.Tensor, stream: torch.cuda.Stream) -> dict[str, torch.Tensor]:
        context: trt.IExecutionContext = self.context
        (name,) = self.inputs
        x = x.to(self.device, self.dtypes[name]).contiguous()
        if not context.set_input_shape(name, tuple(x.shape)):
            raise ModelError(f"{self.name} plan: input {name} of shape {tuple(x.shape)} is outside "
                             f"its optimization profile")
        context.set_tensor_address(name, x.data_ptr())
        outputs = {}
        for out in self.outputs:
            tensor = torch.empty(tuple(context.get_tensor_shape(out)), dtype=self.dtypes[out], device=self.device)
            context.set_tensor_address(out, tensor.data_ptr())
            outputs[out] = tensor
        if not context.execute_async_v3(stream.cuda_stream):
            raise ModelError(f"TensorRT failed to run the {self.name} plan (see the TensorRT log above)")
        # the glue runs in float32 whatever precision the plan computes in
        return {n: t.float() if t.is_floating_point() else t for n, t in outputs.items()}


class TensorRTParts:
    """The `Parts` of a package from its TensorRT plans."""

    def __init__(self, package: Package, device: torch.device, stream: torch.cuda.Stream) -> None:
        import tensorrt as trt

        record = package.meta.get("tensorrt")
        gpu = gpu_record(device)
        check_record(record, str(package.root), trt.__version__, gpu["compute_capability"], gpu["gpu"],
                     package.info.input_size)
        assert record is not None
        self.stream = stream
        self.feature_names = package.feature_names
        self.num_classes = len(package.info.class_names)
        missing = [p for p in ("dense", "box_head", "mask_head") if package.has(p) and p not in record["plans"]]
        if missing:
            raise ModelError(f"package {package.root} has no TensorRT plan for {', '.join(missing)}: "
                             + REBUILD.format(root=package.root))
        self.logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(self.logger, "")  # plans may reference plugins (RoiAlign)
        try:
            self.runtime = trt.Runtime(self.logger)  # kept: engines must not outlive their runtime
        except TypeError as exc:  # the bindings' way of saying the library could not start
            raise ModelError(f"TensorRT could not start on this GPU ({exc}): check the NVIDIA driver and CUDA") from exc
        self.plans = {part: _Plan(self.runtime, _plan_bytes(package, part, entry), part, device)
                      for part, entry in record["plans"].items()}

    def dense(self, images: torch.Tensor) -> tuple[OrderedDict[str, torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        out = self.plans["dense"](images, self.stream)
        levels = range(len(self.feature_names))
        features = OrderedDict((n, out[f"feature_{n}"]) for n in self.feature_names)
        return features, [out[f"objectness_{i}"] for i in levels], [out[f"deltas_{i}"] for i in levels]

    def box_head(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not len(roi_features):  # profiles start at one RoI
            empty = roi_features.new_zeros((0, self.num_classes))
            return empty, roi_features.new_zeros((0, 4 * self.num_classes))
        out = self.plans["box_head"](roi_features, self.stream)
        return out["class_logits"], out["box_regression"]

    def mask_head(self, roi_features: torch.Tensor) -> torch.Tensor:
        return self.plans["mask_head"](roi_features, self.stream)["mask_logits"]


def _plan_bytes(package: Package, part: str, entry: dict[str, str]) -> bytes:
    path = package.inside(entry["path"])
    hint = REBUILD.format(root=package.root)
    if not path.is_file():
        raise ModelError(f"package {package.root}: TensorRT plan {entry['path']} is missing: {hint}")
    if sha256(path) != entry["sha256"]:
        raise ModelError(f"package {package.root}: {entry['path']} does not match its checksum: {hint}")
    return path.read_bytes()


class TensorRTEngine(TwoStageEngine):
    backend = "TensorRT"

    def __init__(
        self, package: Package, score_floor: float, device: str = "cuda", mask_floor: float | None = None
    ) -> None:
        import_tensorrt()  # one clear error when TensorRT or CUDA is missing
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ModelError(f"the tensorrt backend runs on a CUDA device, not {device!r}: use --device cuda")
        info = package.info
        with torch.cuda.device(self.device):
            # one stream for TensorRT and the torch glue: their work is ordered without events
            self.stream = torch.cuda.Stream(self.device)
            parts = TensorRTParts(package, self.device, self.stream)
        # parameter-free modules only (anchors, coders, RoIAlign): they follow their inputs' device
        skeleton = build_model(info.architecture, len(info.class_names))
        super().__init__(skeleton, parts, info, score_floor, mask_floor)

    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[RawOutput]:  # type: ignore[override]
        with torch.cuda.device(self.device):
            # images may come from another stream (preprocess): wait for them
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                outputs = super().infer(images.to(self.device, non_blocking=True), image_sizes)
            # results leave for other threads and streams: hand them over complete
            self.stream.synchronize()
        return outputs


def tensorrt_engine(
    package: Package, device: str, floor: float, threads: int | None, mask_floor: float | None = None
) -> Engine:
    """`PACKAGE_BACKENDS` factory (same signature as the other backends)."""
    return TensorRTEngine(package, floor, device=device, mask_floor=mask_floor)
