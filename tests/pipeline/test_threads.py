"""Idle worker threads sleep under the `detstream` command (pipeline/core/threads.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from engines.onnxruntime_backend import session_options

PROBE = (
    "import sys\n"
    "from pipeline.cli import main\n"
    "try:\n    main(['synth', '--help'])\n"
    "except SystemExit:\n    pass\n"
    "import os\nprint(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)\n"
)


def probe(env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_command_makes_openmp_workers_sleep_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert probe(env) == "PASSIVE False"


def test_an_explicit_wait_policy_is_kept():
    assert probe({**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE False"


def test_onnxruntime_pool_threads_do_not_spin():
    assert session_options(None).get_session_config_entry("session.intra_op.allow_spinning") == "0"
