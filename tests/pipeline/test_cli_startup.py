"""`detstream` start-up: building the parser and running a client command import no heavy library.

Each case runs in a fresh interpreter (this test process has torch loaded already):
import `pipeline.cli`, call `main(ARGS)`, then list which heavy modules got imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "cv2", "onnxruntime", "matplotlib")
COMMANDS = ("run", "profile", "sources", "consume", "batch", "synth", "train", "eval", "eval-track", "models", "export", "build-engine", "proposals")

PROBE = """
import contextlib, io, json, sys
import pipeline.cli
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    try:
        code = pipeline.cli.main(json.loads(sys.argv[1]))
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "output": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def probe(args: list[str]) -> dict:
    """Exit code, captured output and imported modules of `detstream ARGS` in a new interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in HEAVY]


@pytest.mark.parametrize(
    "args",
    [["--help"], ["synth", "video", "--help"], ["synth", "dataset", "--help"], ["sources", "list", "--help"]]
    + [[c, "--help"] for c in COMMANDS],
    ids=" ".join,
)
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    result = probe(args)
    assert result["code"] == 0
    assert "usage: detstream" in result["output"]
    assert heavy(result["modules"]) == []


def test_every_command_is_probed() -> None:
    """A new sub-command joins COMMANDS, so its --help is checked too."""
    result = probe(["--help"])
    listed = result["output"].split("{", 1)[1].split("}", 1)[0].split(",")
    assert sorted(listed) == sorted(COMMANDS)


def test_consume_runs_without_torch() -> None:
    """A Redis client command, run to its (start-up) error: no model library loads on the way."""
    # port 1: nothing listens there, so the command fails at once with its one-line error
    result = probe(["consume", "--redis", "redis://127.0.0.1:1/0?timeout=2", "--group", "g", "--consumer", "c"])
    assert result["code"] == 2
    assert "cannot connect" in result["output"]
    assert heavy(result["modules"]) == []


def test_sources_runs_without_torch() -> None:
    """The control API's client, run to its connection error: no model library, no server library."""
    result = probe(["sources", "list", "--api", "http://127.0.0.1:1"])
    assert result["code"] == 2
    assert "cannot connect to the API at http://127.0.0.1:1" in result["output"]
    assert heavy(result["modules"]) == [] and "werkzeug" not in result["modules"]
