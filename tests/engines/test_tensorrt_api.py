"""Every TensorRT name and call our code uses exists, with the arguments we pass, in the
real Python bindings of TensorRT 10.13 and 11.4 (see `trt_stubs`: no GPU needed).

The project's TensorRT modules are read statically: chains on the `trt` module
(`trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED`) and members of TensorRT objects
(`context.execute_async_v3(...)`). An object's class comes from, in order: annotations
(`engine: trt.ICudaEngine`), constructors (`trt.Builder(logger)`), the return type in the
bindings' own docstring signatures (`builder.create_builder_config() -> IBuilderConfig`),
and, where none applies, the variable name (`NAME_TYPES`). Calls are checked against the
docstring signatures: positional count, keyword names, required parameters.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from trt_stubs import RELEASES, Api, cache_dir, dump, install

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("engines/tensorrt_build.py", "engines/tensorrt_backend.py")

# Variable name -> TensorRT class, for values whose class cannot be inferred (e.g.
# `OnnxParser.get_error` returns `nvonnxparser::IParserError`, a C++ name). In the modules
# above these names are kept for TensorRT objects only.
NAME_TYPES = {
    "builder": "Builder", "config": "IBuilderConfig", "context": "IExecutionContext",
    "network": "INetworkDefinition", "parser": "OnnxParser", "profile": "IOptimizationProfile",
    "runtime": "Runtime", "engine": "ICudaEngine", "logger": "ILogger", "error": "ParserError",
    "cache": "ITimingCache",
}

Type = tuple[str, ...]  # () is the trt module, ("Builder",) the class or an instance of it


@dataclass(frozen=True)
class Use:
    where: str
    owner: Type
    name: str
    call: tuple[int | None, frozenset[str]] | None = None  # positional count (None: *args), keywords
    store: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {'.'.join(('trt', *self.owner, self.name))}"


class Collector(ast.NodeVisitor):
    """The TensorRT uses of one module, classes inferred as the module docstring says."""

    def __init__(self, api: Api, filename: str) -> None:
        self.api = api
        self.filename = filename
        self.uses: list[Use] = []
        self.scopes: list[dict[str, Type | None]] = [{}]
        self.self_types: dict[str, Type] = {}  # self.X, across the methods of the module's classes
        self.returns: dict[str, Type] = {}  # functions annotated to return a TensorRT type

    def collect(self, tree: ast.Module) -> list[Use]:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and (kind := self.annotation(node.returns)):
                self.returns[node.name] = kind
        self.visit(tree)  # first pass learns self.X types assigned anywhere in a class
        self.uses = []
        self.visit(tree)
        return self.uses

    # -- types --------------------------------------------------------------------------
    def annotation(self, node: ast.expr | None) -> Type | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node = ast.parse(node.value, mode="eval").body
        if isinstance(node, ast.BinOp):  # trt.X | None
            return self.annotation(node.left) or self.annotation(node.right)
        kind = self.type_of(node) if isinstance(node, ast.Attribute) else None
        return kind if kind and self.api.class_path(".".join(kind)) else None

    def type_of(self, node: ast.expr | None) -> Type | None:
        if isinstance(node, ast.Name):
            if node.id == "trt":
                return ()
            for scope in reversed(self.scopes):
                if scope.get(node.id):
                    return scope[node.id]
            return (NAME_TYPES[node.id],) if node.id in NAME_TYPES else None
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return self.self_types.get(node.attr)
            owner = self.type_of(node.value)
            if owner is None:
                return None
            member = self.api.node((*owner, node.attr))
            return (*owner, node.attr) if member and member["kind"] == "class" else None
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in self.returns:
                return self.returns[node.func.id]
            callee = self.type_of(node.func) if not isinstance(node.func, ast.Attribute) else None
            if isinstance(node.func, ast.Attribute):
                owner = self.type_of(node.func.value)
                callee = None if owner is None else (*owner, node.func.attr)
            if callee is None or not callee:
                return None
            member = self.api.node(callee)
            if member and member["kind"] == "class":
                return callee  # a constructor
            for signature in self.api.signatures_of(callee):
                return self.api.class_path(signature.returns)
        return None

    def bind(self, target: ast.expr, kind: Type | None) -> None:
        if isinstance(target, ast.Name):
            self.scopes[-1][target.id] = kind
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            if kind:
                self.self_types[target.attr] = kind
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.bind(element, None)

    # -- scopes and bindings -------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        for arg in args:
            if arg.annotation is not None:
                self.visit(arg.annotation)
        self.scopes.append({arg.arg: self.annotation(arg.annotation) for arg in args})
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        kind = self.type_of(node.value)
        for target in node.targets:
            self.visit(target)
            self.bind(target, kind)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)
        self.bind(node.target, self.annotation(node.annotation) or self.type_of(node.value))

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self.bind(node.target, None)
        for statement in node.body + node.orelse:
            self.visit(statement)

    # -- uses ----------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute):
            self.visit_Attribute(node.func, call=node)
        else:
            self.visit(node.func)
        for arg in node.args:
            self.visit(arg)
        for keyword in node.keywords:
            self.visit(keyword.value)

    def visit_Attribute(self, node: ast.Attribute, call: ast.Call | None = None) -> None:
        is_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        owner = None if is_self else self.type_of(node.value)
        if owner is not None:
            signature = None
            if call is not None:
                positional = None if any(isinstance(a, ast.Starred) for a in call.args) else len(call.args)
                keywords = frozenset(k.arg for k in call.keywords if k.arg is not None)
                signature = (positional, keywords)
            where = f"{self.filename}:{node.lineno}"
            self.uses.append(Use(where, owner, node.attr, signature, isinstance(node.ctx, ast.Store)))
        if isinstance(node.value, ast.Attribute):
            self.visit_Attribute(node.value)
        else:
            self.visit(node.value)


def collect(source: str, filename: str, api: Api) -> list[Use]:
    return Collector(api, filename).collect(ast.parse(source))


def problems(uses: list[Use], api: Api) -> list[str]:
    """What the bindings of `api` do not have, for each use."""
    found = []
    for use in uses:
        path = (*use.owner, use.name)
        member = api.node(path)
        if member is None:
            found.append(f"{use}: missing in TensorRT {api.version}")
        elif use.store and not (member["kind"] == "property" and member["writable"]):
            found.append(f"{use}: cannot be assigned in TensorRT {api.version} ({member['kind']})")
        elif use.call is not None and member["kind"] in ("property", "value"):
            found.append(f"{use}: is a {member['kind']}, not callable, in TensorRT {api.version}")
        elif use.call is not None:
            positional, keywords = use.call
            options = api.signatures_of(path)
            if options and not any(s.accepts(positional, set(keywords)) for s in options):
                given = f"{positional} positional" + (f" + {', '.join(sorted(keywords))}=" if keywords else "")
                known = " | ".join("(" + ", ".join(p.name for p in s.params) + ")" for s in options)
                found.append(f"{use}({given}): no signature takes that in TensorRT {api.version}: {known}")
    return found


@pytest.fixture(scope="session", params=sorted(RELEASES), ids=lambda major: f"trt{major}")
def api(request, tmp_path_factory) -> Api:
    """The real bindings of one release, dumped from a subprocess. A failed download is a
    test failure, not a skip: this check is what stands in for a GPU machine in CI."""
    major = request.param
    site, lib = install(major, cache_dir(), tmp_path_factory.mktemp(f"trt{major}"))
    return Api(dump(site, lib))


@pytest.fixture(scope="module")
def project_uses(api) -> list[Use]:
    uses = []
    for module in MODULES:
        uses += collect((ROOT / module).read_text(), module, api)
    return uses


def test_the_real_bindings_load_through_the_stub(api):
    major = int(api.version.split(".")[0])
    assert api.version == RELEASES[major][1]
    # objects cannot be made, exactly as on a machine without CUDA: the stub is in use
    assert "nullptr" in api.builder_probe
    assert api.node(("IExecutionContext", "execute_async_v3"))["kind"] == "callable"
    assert (api.node(("BuilderFlag", "FP16")) is not None) == (major == 10)  # TensorRT 11 removed it


def test_project_uses_only_api_present_in_both_releases(api, project_uses):
    assert problems(project_uses, api) == []


def test_the_collector_sees_the_calls_that_matter(project_uses):
    """Guards against a vacuous pass: if inference lost track of an object, its calls
    would silently go unchecked."""
    seen = {(".".join(u.owner), u.name) for u in project_uses}
    expected = {
        ("", "init_libnvinfer_plugins"), ("NetworkDefinitionCreationFlag", "STRONGLY_TYPED"),
        ("Builder", "create_network"), ("Builder", "build_serialized_network"),
        ("Builder", "create_optimization_profile"), ("OnnxParser", "parse_from_file"),
        ("ParserError", "desc"), ("ParserError", "node"), ("IOptimizationProfile", "set_shape"),
        ("IBuilderConfig", "add_optimization_profile"), ("IBuilderConfig", "create_timing_cache"),
        ("IBuilderConfig", "set_timing_cache"), ("ITimingCache", "serialize"),
        ("Runtime", "deserialize_cuda_engine"), ("ICudaEngine", "create_execution_context"),
        ("ICudaEngine", "get_tensor_name"), ("IExecutionContext", "set_input_shape"),
        ("IExecutionContext", "set_tensor_address"), ("IExecutionContext", "get_tensor_shape"),
        ("IExecutionContext", "execute_async_v3"), ("IExecutionContext", "set_device_memory"),
        ("ExecutionContextAllocationStrategy", "USER_MANAGED"), ("ICudaEngine", "device_memory_size_v2"),
        ("ICudaEngine", "get_tensor_shape"), ("ICudaEngine", "get_tensor_dtype"),
    }
    assert expected - seen == set()


NEGATIVE = '''
import tensorrt as trt

def build(builder: trt.Builder, onnx: str) -> None:
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    parser = trt.OnnxParser(builder.create_network(0), trt.Logger())
    parser.parse_from_file(path=onnx)
    config.set_timing_cache(config.create_timing_cache(b""))

class Runner:
    def __init__(self, engine: trt.ICudaEngine) -> None:
        self.context = engine.create_execution_context()
        engine.num_io_tensors = 3

    def run(self, bindings: list[int], stream: int) -> None:
        self.context.execute_async_v2(bindings, stream)


def load(logger, data: bytes, context):
    runtime = trt.Runtime(logger, data)
    trt.init_libnvinfer_plugins(logger)
    context.execute_async_v3(stream=0)
'''


def test_calls_missing_in_a_release_are_reported(api):
    found = problems(collect(NEGATIVE, "negative.py", api), api)
    text = "\n".join(found)
    major = int(api.version.split(".")[0])
    # the FP16 builder flag exists in 10.x only: the check must catch it on 11
    assert ("trt.BuilderFlag.FP16: missing" in text) == (major == 11)
    assert "negative.py:17: trt.IExecutionContext.execute_async_v2: missing" in text  # gone in both
    assert "trt.OnnxParser.parse_from_file(0 positional + path=): no signature" in text  # keyword is `model`
    assert "trt.IBuilderConfig.set_timing_cache(1 positional)" in text  # ignore_mismatch is required
    assert "trt.ICudaEngine.num_io_tensors: cannot be assigned" in text
    assert "trt.Runtime(2 positional)" in text  # constructors are checked too
    assert "trt.init_libnvinfer_plugins(1 positional)" in text  # and module functions
    assert "trt.IExecutionContext.execute_async_v3(0 positional + stream=)" in text  # typed by NAME_TYPES
    assert len(found) == 7 + (major == 11), text
