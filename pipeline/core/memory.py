"""Large freed buffers go back to the OS (glibc's malloc, Linux), so RSS stays flat.

glibc serves a block over its mmap threshold (128 KiB at start) with mmap and unmaps it
on free, but each such free *raises* the threshold to the block's size (up to 32 MiB).
From then on blocks of that size (a batch tensor: 4 x 3 x 320 x 576 float32 = 8.8 MB; a
1080p RGB frame, 6 MB) come from the malloc arena of the thread that asks, and stay
resident once freed; every stage thread has its own arena, so each keeps its own. The
soak (docs/soak.md) saw detstream's RSS climb in 8.8 MB steps by 50-100 MB within
minutes; with the threshold fixed the same run stayed flat and 80-150 MB lower.
tests/pipeline/test_memory.py shows it on a small workload: six threads allocating and
freeing such blocks keep about 100 MB more resident without the fix, about 1 MB with it.

Setting the threshold (any value) turns the raising off. 1 MiB keeps small and medium
allocations on the fast heap path and maps only big buffers, whose page faults cost far
less than a detector call. The `detstream` command calls this first thing; on a C library
without `mallopt` (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 1 << 20


def release_large_blocks() -> bool:
    """Fix glibc's mmap threshold at 1 MiB; False where there is no `mallopt` to call."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
