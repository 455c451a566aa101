"""Atomic file writes: a file is either its old whole self or its new whole self.

`write_atomic` writes to a temporary file in the target's folder (same file system, so
the rename is atomic), fsyncs it, renames it over the target and fsyncs the folder, so
after a crash or power loss the name points at complete data, never at a torn file.
On any failure the temporary file is removed and the target is left as it was. New
files get the usual permissions (0666 minus the umask), not mkstemp's owner-only 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    # reading the umask means setting it; done once, at import, before any thread writes
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Replace `path` with `data`: bytes, or a callback that writes into the open file
    (for large payloads such as `torch.save`, which need not be held in memory twice)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o666 & ~_UMASK)
            if isinstance(data, bytes):
                file.write(data)
            else:
                data(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename into it survives a power loss."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
