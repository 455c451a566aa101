"""The real TensorRT Python API, without a GPU or TensorRT's libraries.

NVIDIA's `tensorrt-cuXX-bindings` wheels (on PyPI, ~1.2 MB) hold the real pybind11 module
`tensorrt_bindings`. It links three libraries (libnvinfer, libnvonnxparser,
libnvinfer_plugin) and imports only nine C functions from them; the C++ API is reached
through virtual interfaces those functions return. A stub defining the nine functions
(returning NULL / 0) under the three library names lets the module import, and then every
class, enum, method and typed docstring signature of that release can be read. Creating
an object fails exactly as on a machine without CUDA ("factory function returned nullptr").

Each release is imported in its own subprocess (one module name per process) and dumped
as JSON: `Api` answers questions about that dump.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# major -> (wheel on PyPI, version): the two releases the project supports
RELEASES = {10: ("tensorrt-cu12-bindings", "10.13.3.9"), 11: ("tensorrt-cu13-bindings", "11.4.0.106")}
LIBRARIES = ("nvinfer", "nvonnxparser", "nvinfer_plugin")

STUB_C = r"""
/* The C entry points tensorrt_bindings imports from TensorRT's libraries. Factories
   return NULL: the module imports, and constructing anything fails as without a GPU. */
#include <stddef.h>
void *createInferBuilder_INTERNAL(void *logger, int version) { return NULL; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { return NULL; }
void *createInferRuntime_INTERNAL(void *logger, int version) { return NULL; }
void *getBuilderPluginRegistry(int capability) { return NULL; }
void *getPluginRegistry(void) { return NULL; }
int initLibNvInferPlugins(void *logger, const char *name_space) { return 0; }
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { return NULL; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { return NULL; }
int getNvOnnxParserVersion(void) { return 0; }
"""

# Runs in the subprocess: describe the module two levels deep (module -> class -> member,
# plus nested classes such as ILogger.Severity) with raw docstrings.
DUMP = r"""
import json, sys
import tensorrt_bindings as trt

def describe(obj, depth):
    if isinstance(obj, type):
        init = obj.__dict__.get("__init__")
        node = {"kind": "class", "doc": getattr(init, "__doc__", None) or ""}
        if depth < 3:
            node["members"] = {n: describe(v, depth + 1) for n, v in vars_of(obj).items()}
        return node
    if isinstance(obj, property):
        return {"kind": "property", "writable": obj.fset is not None}
    if callable(obj):
        return {"kind": "callable", "doc": obj.__doc__ or ""}
    return {"kind": "value", "type": type(obj).__name__}

def vars_of(cls):
    out = {}
    for name in dir(cls):
        if name.startswith("__"):
            continue
        for base in cls.__mro__:  # the raw attribute, so properties stay properties
            if name in base.__dict__:
                out[name] = base.__dict__[name]
                break
        else:
            out[name] = getattr(cls, name)
    return out

api = {n: describe(getattr(trt, n), 1) for n in dir(trt) if not n.startswith("__")}
api["__version__"] = {"kind": "value", "type": "str"}
try:
    trt.Builder(trt.Logger())
    probe = "constructed"
except TypeError as exc:
    probe = str(exc)
json.dump({"version": trt.__version__, "api": api, "builder_probe": probe}, sys.stdout)
"""


def cache_dir() -> Path:
    """Where the wheels are kept between runs (override: DETSTREAM_TRT_WHEELS)."""
    if "DETSTREAM_TRT_WHEELS" in os.environ:
        return Path(os.environ["DETSTREAM_TRT_WHEELS"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "detstream" / "trt-wheels"


def wheel(major: int, cache: Path) -> Path:
    """The bindings wheel of `major` for this Python, downloaded once with pip."""
    name, version = RELEASES[major]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    pattern = f"{name.replace('-', '_')}-{version}-{tag}-*.whl"
    found = sorted(cache.glob(pattern))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:  # a half download never looks cached
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", tmp,
             f"{name}=={version}"],
            capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pip download {name}=={version} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        (downloaded,) = Path(tmp).glob(pattern)
        shutil.move(str(downloaded), cache / downloaded.name)
    return cache / downloaded.name


def install(major: int, cache: Path, root: Path) -> tuple[Path, Path]:
    """Unzip the wheel and build the stub libraries under root; (site dir, lib dir)."""
    site, lib = root / f"site{major}", root / f"lib{major}"
    with zipfile.ZipFile(wheel(major, cache)) as archive:
        archive.extractall(site)
    lib.mkdir(parents=True, exist_ok=True)
    source = root / "trt_stub.c"
    source.write_text(STUB_C)
    for name in LIBRARIES:
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib / f"lib{name}.so.{major}"), str(source)],
                       check=True, capture_output=True, text=True)
    return site, lib


def dump(site: Path, lib: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(site), "LD_LIBRARY_PATH": str(lib)}
    result = subprocess.run([sys.executable, "-c", DUMP], capture_output=True, text=True, env=env, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"importing tensorrt_bindings from {site} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


# ---- the dumped API ------------------------------------------------------------------

_PREFIX = re.compile(r"^tensorrt_bindings\.tensorrt\.")


@dataclass(frozen=True)
class Param:
    name: str
    has_default: bool


@dataclass(frozen=True)
class Signature:
    params: tuple[Param, ...]  # without self
    returns: str  # as written, module prefix removed

    def accepts(self, positional: int | None, keywords: set[str]) -> bool:
        """positional=None: unknown count (*args at the call site)."""
        if any(p.name.startswith("*") for p in self.params):
            return True
        names = [p.name for p in self.params]
        count = positional if positional is not None else 0
        if count > len(names) or not keywords <= set(names[count:]):
            return False
        if positional is None:
            return True
        return all(p.has_default or i < count or p.name in keywords for i, p in enumerate(self.params))


def signatures(doc: str, name: str, method: bool) -> list[Signature]:
    """pybind11 docstring signatures: `name(self: T, a: int, b: X = <...>) -> R` lines."""
    lines = doc.splitlines()
    pattern = re.compile(rf"^(?:\d+\. )?{re.escape(name)}\((.*)\) -> (.*)$")
    # an overloaded function starts with a generic `name(*args, **kwargs)` line: skip it
    found = [m for line in lines if (m := pattern.match(line.strip())) and m.group(1) != "*args, **kwargs"]
    result = []
    for m in found:
        params = [_param(text) for text in _split(m.group(1))]
        if method and params and params[0].name == "self":
            params = params[1:]
        result.append(Signature(tuple(params), _PREFIX.sub("", m.group(2).strip())))
    return result


def _param(text: str) -> Param:
    head, _, default = text.partition(" = ")
    return Param(head.split(":")[0].strip(), bool(default))


def _split(text: str) -> list[str]:
    """Split a parameter list on top-level commas (types hold [..], (..), <..>)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[(<{"
        depth -= char in "])>}"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


class Api:
    """One release's API: members by path, signatures, return types."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.version: str = data["version"]
        self.builder_probe: str = data["builder_probe"]
        self.root = {"kind": "module", "members": data["api"]}

    def node(self, path: tuple[str, ...]) -> dict[str, Any] | None:
        node: dict[str, Any] | None = self.root
        for name in path:
            if node is None or "members" not in node:
                return None
            node = node["members"].get(name)
        return node

    def class_path(self, text: str) -> tuple[str, ...] | None:
        """`IBuilderConfig` or `ILogger.Severity` (a docstring type) as a class path, if one."""
        path = tuple(_PREFIX.sub("", text).split("."))
        node = self.node(path)
        return path if node is not None and node["kind"] == "class" else None

    def signatures_of(self, path: tuple[str, ...]) -> list[Signature]:
        node = self.node(path)
        if node is None:
            return []
        if node["kind"] == "class":
            return signatures(node["doc"], "__init__", method=True)
        return signatures(node.get("doc", ""), path[-1], method=len(path) > 1)


# ---- a stand-in for `tensorrt`, to run the project's TensorRT code on a CPU -----------------

ALIGNMENT = 256  # what TensorRT demands of every tensor address and of scratch memory


class StandInError(AssertionError):
    """The code under test used the stand-in in a way real TensorRT refuses or gets wrong."""


def fake_tensorrt(version: str = "10.13.3.9", io_dtype: str = "float32") -> Any:
    """A module with just the TensorRT calls `engines.tensorrt_build` / `tensorrt_backend`
    make (their names and signatures are checked against the real bindings by
    test_tensorrt_api). The parser reads the ONNX inputs and refuses ops outside the
    lint's list; a "plan" is JSON naming the ONNX file and the profile asked for.

    Running a plan (`execute_async_v3`) reads the inputs at the addresses bound, runs the
    ONNX part in ONNX Runtime and writes the outputs at theirs, after checking what real
    TensorRT requires: every input shape set and inside the profile, every address bound
    since the last run and 256-byte aligned (a refused bind leaves the old address, as in
    TensorRT: using it raises here), user-managed scratch memory set, aligned and large
    enough. Tensors are read and written in the dtype the engine reports: `io_dtype`
    "float16" makes every float tensor half, so a caller that ignores
    `get_tensor_dtype` reads garbage."""
    import ctypes
    import types

    import numpy as np
    import onnx
    import onnxruntime as ort

    from engines.onnx_lint import SUPPORTED_OPS

    trt = types.SimpleNamespace(__version__=version, init_libnvinfer_plugins=lambda logger, namespace: True)
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
    trt.BuilderFlag = types.SimpleNamespace(TF32="TF32")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="input", OUTPUT="output")
    trt.DataType = types.SimpleNamespace(FLOAT=np.float32, HALF=np.float16, BF16="bf16", INT32=np.int32,
                                         INT64=np.int64, BOOL=np.bool_)
    trt.ExecutionContextAllocationStrategy = types.SimpleNamespace(STATIC=0, ON_PROFILE_CHANGE=1, USER_MANAGED=2)
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, min_severity=2: None})
    onnx_types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
                  "tensor(int32)": np.int32, "tensor(bool)": np.bool_}

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags, self.inputs, self.onnx = flags, [], None

        num_inputs = property(lambda self: len(self.inputs))
        get_input = lambda self, index: self.inputs[index]  # noqa: E731

    class ParserError:
        def __init__(self, index: int, node: onnx.NodeProto) -> None:
            self.desc = lambda: f"No importer registered for op: {node.op_type}"
            self.node, self.node_name, self.node_operator = (lambda: index), (lambda: node.name), (lambda: node.op_type)

    class OnnxParser:
        def __init__(self, network: Any, logger: Any) -> None:
            self.network, self.errors = network, []

        def parse_from_file(self, model: str) -> bool:
            graph = onnx.load(model).graph
            self.network.onnx = model
            self.errors = [ParserError(i, n) for i, n in enumerate(graph.node) if n.op_type not in SUPPORTED_OPS]
            for value in graph.input:
                shape = tuple(d.dim_value or -1 for d in value.type.tensor_type.shape.dim)
                self.network.inputs.append(types.SimpleNamespace(name=value.name, shape=shape))
            return not self.errors

        num_errors = property(lambda self: len(self.errors))
        get_error = lambda self, index: self.errors[index]  # noqa: E731

    class Config:
        def __init__(self) -> None:
            self.profiles, self.cleared, self.cache = [], [], None
            self.clear_flag = self.cleared.append
            self.add_optimization_profile = self.profiles.append

        def create_timing_cache(self, serialized_timing_cache: bytes) -> Any:
            data = bytes(serialized_timing_cache) or b"timing"
            return types.SimpleNamespace(serialize=lambda: data)

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

        def get_timing_cache(self) -> Any:
            return self.cache

    class Builder:
        def __init__(self, logger: Any) -> None:
            pass

        def create_network(self, flags: int = 0) -> Network:
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Any:
            shapes: dict[str, list] = {}
            return types.SimpleNamespace(shapes=shapes, set_shape=lambda name, *dims: shapes.update({name: [list(d) for d in dims]}))

        def build_serialized_network(self, network: Any, config: Config) -> bytes:
            record = {"onnx": network.onnx, "flags": network.flags, "cleared": config.cleared,
                      "profiles": [p.shapes for p in config.profiles]}
            return json.dumps(record).encode()

    def _check(condition: bool, message: str) -> None:
        if not condition:
            raise StandInError(message)

    class Context:
        def __init__(self, engine: Engine, strategy: int) -> None:
            self.engine, self.strategy, self.shapes, self.addresses = engine, strategy, {}, {}
            self.fresh: set[str] = set()  # bound since the last run
            self.memory: tuple[int, int] | None = None
            self.runs = 0

        def set_input_shape(self, name: str, shape: tuple) -> bool:
            low, _, high = self.engine.get_tensor_profile_shape(name, 0)
            if len(shape) != len(low) or not all(a <= b <= c for a, b, c in zip(low, shape, high)):
                return False  # TensorRT logs and keeps the previous shape
            self.shapes[name] = tuple(shape)
            return True

        def set_tensor_address(self, name: str, memory: int) -> bool:
            if memory % ALIGNMENT:
                return False  # TensorRT logs "misaligned" and keeps the previous address
            self.addresses[name] = memory
            self.fresh.add(name)
            return True

        def set_device_memory(self, memory: int, size: int) -> None:
            _check(memory % ALIGNMENT == 0, f"scratch memory {memory:#x} is not {ALIGNMENT}-byte aligned")
            _check(size >= self.engine.device_memory_size_v2,
                   f"scratch memory of {size} bytes, the plan needs {self.engine.device_memory_size_v2}")
            self.memory = (memory, size)

        def get_tensor_shape(self, name: str) -> tuple:
            if name in self.engine.inputs:
                return self.shapes.get(name, tuple(self.engine.shapes[name]))
            first = self.shapes[self.engine.inputs[0]][0]  # every output follows the input's first axis
            return tuple(first if isinstance(d, str) else d for d in self.engine.shapes[name])

        def execute_async_v3(self, stream_handle: int) -> bool:
            engine = self.engine
            if self.strategy == trt.ExecutionContextAllocationStrategy.USER_MANAGED:
                _check(self.memory is not None, "user-managed context run without set_device_memory")
            for name in engine.inputs:
                _check(name in self.shapes, f"input {name}: no shape set")
            for name in engine.inputs + engine.outputs:
                _check(name in self.fresh, f"{name}: not bound for this run (a refused bind keeps a stale address)")
                _check(self.addresses[name] % ALIGNMENT == 0, f"{name}: address not {ALIGNMENT}-byte aligned")
            self.fresh = set()
            feeds = {n: _read(self.addresses[n], self.shapes[n], engine.dtypes[n]) for n in engine.inputs}
            # ONNX Runtime takes the ONNX file's own types; the engine's I/O types may differ (io_dtype)
            feeds = {n: v.astype(engine.onnx_types[n]) for n, v in feeds.items()}
            for name, value in zip(engine.outputs, engine.session.run(engine.outputs, feeds)):
                _check(tuple(value.shape) == self.get_tensor_shape(name),
                       f"output {name}: {value.shape} computed, {self.get_tensor_shape(name)} announced")
                value = np.ascontiguousarray(value, engine.dtypes[name])
                ctypes.memmove(self.addresses[name], value.ctypes.data, value.nbytes)
            self.runs += 1
            return True

    class Engine:
        def __init__(self, data: bytes) -> None:
            record = json.loads(bytes(data))
            self.session = ort.InferenceSession(record["onnx"], providers=["CPUExecutionProvider"])
            self.profile = record["profiles"][0]
            values = self.session.get_inputs() + self.session.get_outputs()
            self.inputs = [v.name for v in self.session.get_inputs()]
            self.outputs = [v.name for v in self.session.get_outputs()]
            self.shapes = {v.name: v.shape for v in values}
            self.onnx_types = {v.name: onnx_types[v.type] for v in values}
            # what the plan reports and reads / writes: float tensors in io_dtype
            io = trt.DataType.HALF if io_dtype == "float16" else trt.DataType.FLOAT
            self.dtypes = {n: io if t is np.float32 else t for n, t in self.onnx_types.items()}
            self.num_io_tensors = len(self.shapes)
            # scratch a plan would need: the largest input the profile allows, in bytes
            self.device_memory_size_v2 = int(np.prod(self.profile[self.inputs[0]][2])) * 4
            self.contexts: list[Context] = []

        def get_tensor_name(self, index: int) -> str:
            return list(self.shapes)[index]

        def get_tensor_mode(self, name: str) -> str:
            return trt.TensorIOMode.INPUT if name in self.inputs else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> Any:
            return self.dtypes[name]

        def get_tensor_shape(self, name: str) -> tuple:
            return tuple(d if isinstance(d, int) else -1 for d in self.shapes[name])

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list:
            return self.profile[name]

        def create_execution_context(self, strategy: int = 0) -> Context:
            self.contexts.append(Context(self, strategy))
            return self.contexts[-1]

    def _read(address: int, shape: tuple, dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape))
        buffer = (ctypes.c_byte * (count * dtype.itemsize)).from_address(address)
        return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape).copy()

    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    trt.Runtime = type("Runtime", (), {"__init__": lambda self, logger: None,
                                       "deserialize_cuda_engine": lambda self, serialized_engine: Engine(serialized_engine)})
    return trt


class HostStream:
    """What the backend asks of a torch CUDA stream, for tensors that stay on the CPU."""

    cuda_stream = 0

    def __init__(self, device: object = None) -> None:
        pass

    def wait_stream(self, other: object) -> None:
        pass

    def synchronize(self) -> None:
        pass


def pretend_gpu(monkeypatch: Any, trt: Any, capability: tuple[int, int] = (8, 6)) -> HostStream:
    """`tensorrt` replaced by the stand-in `trt`, torch told there is a GPU of
    `capability` whose streams are the host's (tensors stay on the CPU)."""
    import contextlib

    import torch

    stream = HostStream()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "Stream", HostStream)
    return stream
