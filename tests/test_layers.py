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
