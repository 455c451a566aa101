"""TensorRT backend: the package's plans (built by `detstream build-engine`) on one CUDA
stream, the shared two-stage glue in torch on the same stream between them.

Rules:
- A plan only runs on the TensorRT release, CUDA major and GPU generation it was built
  for, so the package's `tensorrt` record is checked first and a mismatch is reported as
  such (with the command that fixes it) rather than as a deserialization failure.
- Tensors stay on the GPU as torch tensors; TensorRT reads and writes them through their
  addresses (`set_tensor_address` + `execute_async_v3`), so no copies go through the
  host. Every address is 256-byte aligned (chunks of a batch are copied when they are
  not) and every refused bind is an error, never a stale address silently kept.
- The parts run one after another on one stream, so their execution contexts share one
  scratch buffer (user-managed device memory) sized for the largest, instead of each
  holding its own for its largest profile; `infer` is serialized by a lock.

`tensorrt` is imported inside functions: this module imports on machines without it.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch

from engines.base import Engine
from engines.models import build_model
from engines.package import Package, sha256
from engines.tensorrt_build import import_tensorrt, machine_record, trt_logger
from engines.two_stage import TwoStageEngine
from pipeline.core.errors import ModelError
from pipeline.core.types import RawOutput

if TYPE_CHECKING:
    import tensorrt as trt

REBUILD = "rebuild with detstream build-engine --package {root}"
# TensorRT requires every tensor address and its scratch memory on 256-byte boundaries
# (IExecutionContext.set_tensor_address / set_device_memory); a refused address leaves the
# previous, possibly freed, one bound.
ALIGNMENT = 256
# what build_plans records: a record without one of these comes from an older detstream
RECORD_KEYS = ("version", "cuda", "gpu", "compute_capability", "input_size", "plans")


def _release(version: str) -> str:
    """major.minor.patch: plans are portable across builds of one release, not across releases."""
    return ".".join(version.split(".")[:3])


def _where(record: dict[str, Any]) -> str:
    return (f"TensorRT {_release(record['version'])} (CUDA {record['cuda']}) on "
            f"sm_{record['compute_capability'].replace('.', '')} ({record['gpu']})")


def check_record(record: dict[str, Any] | None, root: str, here: dict[str, str], input_size: tuple[int, int]) -> None:
    """Refuse plans built for another TensorRT release, CUDA major, GPU generation or
    input size; `here` is this machine's `machine_record`."""
    hint = REBUILD.format(root=root)
    if not record:
        raise ModelError(f"package {root} has no TensorRT plans: {hint}")
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        raise ModelError(f"package {root}: its TensorRT record has no {', '.join(missing)} "
                         f"(written by an older detstream): {hint}")
    same = (_release(record["version"]) == _release(here["version"]) and str(record["cuda"]) == str(here["cuda"])
            and record["compute_capability"] == here["compute_capability"])
    if not same:
        raise ModelError(f"plan built for {_where(record)}, this machine has {_where(here)}: {hint}")
    if tuple(record["input_size"]) != tuple(input_size):
        raise ModelError(f"plans built for input size {tuple(record['input_size'])}, "
                         f"the package now says {tuple(input_size)}: {hint}")


def aligned_empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialized tensor starting on a 256-byte boundary. torch guarantees 64 bytes
    on the CPU and 512 for a fresh CUDA block, never for a view into one (chunks of a batch)."""
    size = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    raw = torch.empty(size + ALIGNMENT, dtype=torch.uint8, device=device)
    offset = -raw.data_ptr() % ALIGNMENT
    return raw[offset : offset + size].view(dtype).view(shape)


def aligned(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` (contiguous) itself when TensorRT may bind it, else an aligned copy."""
    if tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    return aligned_empty(tuple(tensor.shape), tensor.dtype, tensor.device).copy_(tensor)


class _Plan:
    """One deserialized plan and its execution context, run over torch CUDA tensors.

    The context gets its scratch memory from the caller (`share_memory`): the parts of
    one engine run one after another on one stream, so they can share one buffer
    instead of each holding activation memory for its largest profile.
    """

    def __init__(self, runtime: trt.Runtime, data: bytes, name: str, device: torch.device, hint: str) -> None:
        import tensorrt as trt

        engine: trt.ICudaEngine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise ModelError(f"TensorRT could not load the {name} plan (see the TensorRT log above): {hint}")
        self.name = name
        self.device = device
        self.engine = engine  # the context needs its engine alive
        self.context = engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        if self.context is None:
            raise ModelError(f"TensorRT could not create an execution context for the {name} plan (GPU memory?)")
        dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
                  trt.DataType.BF16: torch.bfloat16, trt.DataType.INT32: torch.int32,
                  trt.DataType.INT64: torch.int64, trt.DataType.BOOL: torch.bool}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: dtypes[engine.get_tensor_dtype(n)] for n in names}
        # every axis but the first (images, RoIs) is fixed at build: the shape each tensor has
        self.shapes = {n: tuple(engine.get_tensor_shape(n))[1:] for n in names}
        # largest first axis the profile allows: bigger inputs run in chunks
        self.limit = int(engine.get_tensor_profile_shape(self.inputs[0], 0)[2][0])
        self.memory_size = int(engine.device_memory_size_v2)

    def share_memory(self, memory: torch.Tensor) -> None:
        """Use `memory` (aligned, at least `memory_size` bytes) as the context's scratch."""
        self.context.set_device_memory(memory.data_ptr(), memory.numel())

    def __call__(self, x: torch.Tensor, stream: torch.cuda.Stream) -> dict[str, torch.Tensor]:
        (name,) = self.inputs
        if tuple(x.shape[1:]) != self.shapes[name]:  # before the profile: say what is wrong
            expected = " x ".join(map(str, ("N", *self.shapes[name])))
            raise ModelError(f"{self.name} plan: input {name} takes {expected}, got {' x '.join(map(str, x.shape))}")
        if not len(x):  # profiles start at one: nothing to run, empty outputs of the right shape
            return {n: torch.zeros((0, *self.shapes[n]), device=x.device) for n in self.outputs}
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
        # a chunk is a view into the batch: contiguous, but not always 256-byte aligned
        x = aligned(x.to(self.device, self.dtypes[name]).contiguous())
        if not context.set_input_shape(name, tuple(x.shape)):
            raise ModelError(f"{self.name} plan: input {name} of shape {tuple(x.shape)} is outside "
                             f"its optimization profile")
        self._bind(name, x)
        outputs = {}
        for out in self.outputs:
            shape = tuple(context.get_tensor_shape(out))
            if any(d < 0 for d in shape):
                raise ModelError(f"{self.name} plan: output {out} has a data-dependent shape {shape}; detstream's "
                                 "parts have none (was this package exported by detstream export?)")
            tensor = aligned_empty(shape, self.dtypes[out], self.device)
            self._bind(out, tensor)
            outputs[out] = tensor
        if not context.execute_async_v3(stream.cuda_stream):
            raise ModelError(f"TensorRT failed to run the {self.name} plan (see the TensorRT log above)")
        # the glue runs in float32 whatever precision the plan computes in
        return {n: t.float() if t.is_floating_point() else t for n, t in outputs.items()}

    def _bind(self, name: str, tensor: torch.Tensor) -> None:
        context: trt.IExecutionContext = self.context
        address = tensor.data_ptr()
        if not context.set_tensor_address(name, address):
            raise ModelError(f"{self.name} plan: TensorRT refused the address of {name} ({address:#x}, "
                             f"{address % ALIGNMENT} bytes past a {ALIGNMENT}-byte boundary)")


class TensorRTParts:
    """The `Parts` of a package from its TensorRT plans."""

    def __init__(self, package: Package, device: torch.device, stream: torch.cuda.Stream) -> None:
        import tensorrt as trt

        record = package.meta.get("tensorrt")
        check_record(record, str(package.root), machine_record(trt, device), package.info.input_size)
        assert record is not None
        hint = REBUILD.format(root=package.root)
        self.stream = stream
        self.feature_names = package.feature_names
        missing = [p for p in ("dense", "box_head", "mask_head") if package.has(p) and p not in record["plans"]]
        if missing:
            raise ModelError(f"package {package.root} has no TensorRT plan for {', '.join(missing)}: {hint}")
        logger = trt_logger()
        trt.init_libnvinfer_plugins(logger, "")  # plans may reference plugins (RoiAlign)
        try:
            self.runtime = trt.Runtime(logger)  # kept: engines must not outlive their runtime
        except TypeError as exc:  # the bindings' way of saying the library could not start
            raise ModelError(f"TensorRT could not start on this GPU ({exc}): check the NVIDIA driver and CUDA") from exc
        self.plans = {part: _Plan(self.runtime, _plan_bytes(package, part, entry), part, device, hint)
                      for part, entry in record["plans"].items()}
        # one scratch buffer for all parts: they run in sequence on one stream (module docstring)
        self.memory = aligned_empty((max(p.memory_size for p in self.plans.values()),), torch.uint8, device)
        for plan in self.plans.values():
            plan.share_memory(self.memory)

    def dense(self, images: torch.Tensor) -> tuple[OrderedDict[str, torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        out = self.plans["dense"](images, self.stream)
        levels = range(len(self.feature_names))
        features = OrderedDict((n, out[f"feature_{n}"]) for n in self.feature_names)
        return features, [out[f"objectness_{i}"] for i in levels], [out[f"deltas_{i}"] for i in levels]

    def box_head(self, roi_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.plans["box_head"](roi_features, self.stream)
        return out["class_logits"], out["box_regression"]

    def mask_head(self, roi_features: torch.Tensor) -> torch.Tensor:
        return self.plans["mask_head"](roi_features, self.stream)["mask_logits"]


def _plan_bytes(package: Package, part: str, entry: dict[str, str]) -> bytes:
    hint = REBUILD.format(root=package.root)
    if "path" not in entry or "sha256" not in entry:
        raise ModelError(f"package {package.root}: the TensorRT record of {part} names no plan file: {hint}")
    path = package.inside(entry["path"])
    if not path.is_file():
        raise ModelError(f"package {package.root}: TensorRT plan {entry['path']} is missing: {hint}")
    if sha256(path) != entry["sha256"]:
        raise ModelError(f"package {package.root}: {entry['path']} does not match its checksum: {hint}")
    return path.read_bytes()


class TensorRTEngine(TwoStageEngine):
    """The TensorRT backend. `infer` calls are serialized by a lock: the parts share one
    stream, one execution context each and one scratch buffer, none of which two threads
    may use at once. For concurrent GPU work, load one engine per thread."""

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
        self.lock = threading.Lock()
        # parameter-free modules only (anchors, coders, RoIAlign): they follow their inputs' device
        skeleton = build_model(info.architecture, len(info.class_names))
        super().__init__(skeleton, parts, info, score_floor, mask_floor)

    def infer(self, images: torch.Tensor, image_sizes: list[tuple[int, int]]) -> list[RawOutput]:  # type: ignore[override]
        with self.lock, torch.cuda.device(self.device):
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
