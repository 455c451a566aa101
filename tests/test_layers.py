"""The import layers of docs/architecture.md, checked by import-linter (contracts in
pyproject.toml): the real tree keeps them, and a tree with one upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "stages", "engines", "synth", "bench")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(executable), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def copy_tree(target: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    for package in PACKAGES:
        if (ROOT / package).is_dir():
            shutil.copytree(ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))


def test_the_tree_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    copy_tree(tmp_path)
    # the bottom layer reaching up into the stages: the mistake the contracts exist for
    (tmp_path / "pipeline" / "core" / "leak.py").write_text("from stages.base import Stage\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "pipeline.core.leak -> stages.base" in result.stdout


def test_a_runtime_import_of_training_breaks_its_contract(tmp_path):
    copy_tree(tmp_path)
    (tmp_path / "stages" / "leak.py").write_text("import engines.training.train\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "running a model never needs the training package BROKEN" in result.stdout


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_between_files_or_folders():
    import grimp  # import-linter's own import graph

    graph = grimp.build_graph(*(p for p in PACKAGES if (ROOT / p).is_dir()))
    files = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}

    def folder(module: str) -> str:
        return module if graph.find_children(module) else module.rpartition(".")[0] or module

    folders: dict[str, set[str]] = {}
    for module, imported in files.items():
        folders.setdefault(folder(module), set()).update(folder(m) for m in imported if folder(m) != folder(module))
    assert _cycles(files) == []
    assert _cycles(folders) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail
