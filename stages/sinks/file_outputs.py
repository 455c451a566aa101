"""Where a file's results go, and how they get there without ever looking complete early.

For an input with relative path `day1/cam2.mp4` the outputs are `OUT/day1/cam2.mp4.jsonl`
(or `.coco.json`) and, with --video, `OUT/day1/cam2.mp4.annotated.mp4`; the input's own
extension stays in the name so `a.mp4` and `a.mkv` never collide. Each output is written
under `OUT/.partial/` first and renamed into place (same file system, so the rename is
atomic): a killed run leaves only whole outputs, and stale partial files are removed at
the next start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PARTIAL_DIR = ".partial"
SUFFIXES = {"jsonl": ".jsonl", "coco": ".coco.json", "video": ".annotated.mp4"}
# mkstemp makes owner-only files; outputs get the usual permissions (read once, at import)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def output_names(rel: str, kinds: list[str]) -> dict[str, str]:
    """Output kind -> path relative to the output folder."""
    return {kind: rel + SUFFIXES[kind] for kind in kinds}


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o666 & ~_UMASK)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def publish(out_dir: Path, outputs: dict[str, Path | bytes]) -> None:
    """Move staged outputs (a file under OUT/.partial, or bytes from a remote worker)
    to their final names, each atomically."""
    for name, content in outputs.items():
        target = out_dir / name
        if isinstance(content, bytes):
            write_atomic(target, content)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(content, "rb+") as file:
                os.fsync(file.fileno())  # the data is on disk before the name says it is done
            os.replace(content, target)


def clear_partial(out_dir: Path) -> Path:
    """An empty staging folder inside `out_dir` (left-overs of a killed run removed)."""
    staging = out_dir / PARTIAL_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging
