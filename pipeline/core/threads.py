"""Idle worker threads must sleep, not spin: the pipeline shares its cores among stages.

torch's OpenMP workers (libgomp) and ONNX Runtime's intra-op pool spin-wait after each
parallel region by default, which is right for one library owning the machine and wrong
here: decode, preprocess, the detector's torch steps between ONNX parts, postprocess and
the sinks run in other threads on the same cores, and a spinning pool takes their CPU.
Measured 2026-12-01 on the 2-core machine, demo video, batch 2 (`detstream run`, one run
each way, alternating): ONNX Runtime package 10.0 s -> 7.0 s with OMP_WAIT_POLICY=PASSIVE
-> 5.0 s with ONNX Runtime's spinning off too; PyTorch 13.8 s -> 10.1 s.

libgomp reads OMP_WAIT_POLICY once, when torch is imported, so `sleep_idle_threads()`
must run before that: the `detstream` command calls it first thing, and so does the
benchmark package. An explicit OMP_WAIT_POLICY in the environment is kept.
"""

from __future__ import annotations

import os
import sys


def sleep_idle_threads() -> bool:
    """Make torch's OpenMP workers sleep when idle; False if torch was imported already."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return "torch" not in sys.modules
