"""glibc keeps freed large blocks resident once its mmap threshold has risen; the `detstream`
command fixes the threshold (pipeline/core/memory.py). Each workload runs in a fresh
interpreter: the threshold is process state."""

from __future__ import annotations

import subprocess
import sys

import pytest

# six threads, like the pipeline's stages, each allocating and freeing batch-sized blocks
WORKLOAD = """
import sys, threading
from pathlib import Path
import numpy as np
{setup}

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def work():
    for i in range(40):
        batch = np.ones((4, 3, 320, 576), np.float32)  # 8.8 MB, a batch tensor
        other = np.ones((250_000 * (1 + i % 3),), np.float64)  # 2-6 MB, frames of other sizes
        kept.append(np.ones(100))  # small objects that outlive them
        del batch, other

kept = []
start = rss_mb()
for _ in range(5):
    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
print(rss_mb() - start)
"""


def rise_mb(setup: str) -> float:
    code = WORKLOAD.format(setup=setup)
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_freed_batch_tensors_leave_rss_with_the_threshold_fixed():
    fixed = rise_mb("from pipeline.core.memory import release_large_blocks; assert release_large_blocks()")
    assert fixed < 20, f"RSS rose {fixed:.0f} MB with the threshold fixed"


def test_without_it_glibc_keeps_them():
    """The defect itself, so this test notices if a C library stops doing it (then the fix
    may go): tens of MB stay resident."""
    assert rise_mb("") > 40


def test_the_detstream_command_fixes_it_first_thing(monkeypatch):
    import pipeline.cli as cli

    called = []
    monkeypatch.setattr(cli, "release_large_blocks", lambda: called.append(True) or True)
    with pytest.raises(SystemExit):  # --help exits through argparse, after the set-up
        cli.main(["--help"])
    assert called == [True]
