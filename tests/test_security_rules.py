"""Rules of SECURITY.md that the code itself must keep, checked on every source file:
model files are read with `torch.load(..., weights_only=True)`, YAML only through safe
loaders, no pickle, no `eval`/`exec`; and servers listen on loopback unless told otherwise."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.core.config import ApiConfig, MetricsConfig

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "engines", "stages", "synth", "bench")


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _name(node: ast.expr) -> str:
    """`torch.load` for the call target `torch.load`, '' for anything not a dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _keyword(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def violations(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in ("torch.load", "torch.jit.load") and _keyword(node, "weights_only") is not True:
            found.append(f"line {node.lineno}: {name} without weights_only=True")
        elif name in ("yaml.load", "yaml.full_load", "yaml.unsafe_load", "yaml.load_all", "yaml.unsafe_load_all"):
            found.append(f"line {node.lineno}: {name} (use yaml.safe_load or pipeline.core.yaml_files)")
        elif name in ("pickle.load", "pickle.loads"):
            found.append(f"line {node.lineno}: {name}")
        elif name in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") is True:
            found.append(f"line {node.lineno}: np.load with allow_pickle=True")
        elif name in ("eval", "exec"):
            found.append(f"line {node.lineno}: {name}()")
    return found


def test_no_unsafe_loading_anywhere():
    problems = {str(path.relative_to(ROOT)): found for path in _sources() if (found := violations(ast.parse(path.read_text())))}
    assert problems == {}


@pytest.mark.parametrize("code, problem", [
    ("torch.load(p)", "without weights_only=True"),
    ("torch.load(p, weights_only=False)", "without weights_only=True"),
    ("yaml.load(text, Loader=yaml.Loader)", "yaml.load"),
    ("pickle.loads(b)", "pickle.loads"),
    ("np.load(p, allow_pickle=True)", "allow_pickle=True"),
    ("eval(s)", "eval()"),
])
def test_the_rules_catch_what_they_name(code, problem):
    assert any(problem in v for v in violations(ast.parse(code)))
    assert violations(ast.parse("torch.load(p, map_location='cpu', weights_only=True); yaml.safe_load(t)")) == []


def test_servers_listen_on_loopback_by_default():
    assert MetricsConfig().address == "127.0.0.1"
    assert ApiConfig().address == "127.0.0.1"
