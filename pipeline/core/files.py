"""Atomic file writes: a file is either its old whole self or its new whole self.

`write_atomic` writes to a temporary file in the target's folder (same file system, so
the rename is atomic), fsyncs it, renames it over the target and fsyncs the folder, so
after a crash or power loss the name points at complete data, never at a torn file.
On any failure the temporary file is removed and the target is left as it was. New
files get the usual permissions (0666 minus the umask), not mkstemp's owner-only 0600,
unless the caller gives a `mode` (0o600 for a file holding credentials: set before the
first byte is written, so the secret is never readable by others, not even briefly).

`AtomicFile` is the same for a file written over time, by name, by another library
(PyAV writing a clip as its packets come): a temporary path in the target's folder now,
`commit()` (fsync, rename, fsync the folder) when complete, `discard()` otherwise.
`write_atomic` is one AtomicFile written at once.

`write_folder_atomic` does the same for a folder of files (an exported engine package):
filled under a temporary name next to the target, renamed into place only when complete,
so a folder under the target's name is always whole; a killed writer leaves only a
hidden `.NAME.*.tmp` folder, which `remove_leftovers` deletes.

`cache_folder()` is where detstream keeps files between runs: `$DETSTREAM_CACHE`, else
`$XDG_CACHE_HOME/detstream`, else `~/.cache/detstream`.
"""

from __future__ import annotations

import os
import shutil
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


class AtomicFile:
    """A file that appears under `path` whole or not at all. Write `temp` (a hidden
    `.NAME.*.tmp` next to `path`, created empty with the final permissions: 0666 minus the
    umask, or `mode`), then `commit()`; `discard()` (or leaving a `with` block by an
    exception) removes it and leaves `path` as it was."""

    def __init__(self, path: Path, mode: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        self.temp = Path(temp)
        try:
            os.fchmod(fd, 0o666 & ~_UMASK if mode is None else mode)
        except BaseException:
            self.temp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)

    def commit(self) -> None:
        """Put the temporary file in place: its data on disk before the name points at it."""
        try:
            fd = os.open(self.temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.temp, self.path)
        except BaseException:
            self.discard()
            raise
        sync_folder(self.path.parent)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], object], mode: int | None = None) -> None:
    """Replace `path` with `data`: bytes, or a callback that writes into the open file
    (for large payloads such as `torch.save`, which need not be held in memory twice).
    `mode`: the file's permissions (default: 0666 minus the umask)."""
    with AtomicFile(path, mode) as target, open(target.temp, "wb") as file:
        if isinstance(data, bytes):
            file.write(data)
        else:
            data(file)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename into it survives a power loss."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_folder_atomic(target: Path, fill: Callable[[Path], object]) -> None:
    """Create the folder `target` (which must not exist) with what `fill(folder)` writes
    into a temporary folder next to it; on any failure nothing appears under `target`.
    Concurrent writers of one target must hold a lock (the loser's rename would fail)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        os.chmod(temp, 0o777 & ~_UMASK)  # mkdtemp makes it owner-only
        fill(temp)
        for path in temp.rglob("*"):  # data on disk before the name points at it
            if path.is_file():
                with path.open("rb") as file:
                    os.fsync(file.fileno())
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    sync_folder(target.parent)


def remove_leftovers(target: Path) -> None:
    """Delete the temporary folders that killed `write_folder_atomic` calls left for
    `target`. Only while holding the writers' lock: a live writer's folder looks the same."""
    for leftover in Path(target).parent.glob(f".{Path(target).name}.*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


def cache_folder() -> Path:
    """Where detstream keeps files between runs (exported packages, the Redis spool)."""
    if os.environ.get("DETSTREAM_CACHE"):
        return Path(os.environ["DETSTREAM_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "detstream"
