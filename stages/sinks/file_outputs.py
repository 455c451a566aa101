"""Where a file's results go, and how they get there without ever looking complete early.

For an input with relative path `day1/cam2.mp4` the outputs are `OUT/day1/cam2.mp4.jsonl`
(or `.coco.json`), with tracking on `OUT/day1/cam2.mp4.events.jsonl` (track, zone and line
events) and, with --video, `OUT/day1/cam2.mp4.annotated.mp4`; the input's own
extension stays in the name so `a.mp4` and `a.mkv` never collide. Each output is written
under `OUT/.partial/` first and renamed into place (same file system, so the rename is
atomic): a killed run leaves only whole outputs, and stale partial files are removed at
the next start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from pipeline.core.errors import SinkError
from pipeline.core.files import sync_folder, write_atomic

PARTIAL_DIR = ".partial"
SUFFIXES = {"jsonl": ".jsonl", "coco": ".coco.json", "video": ".annotated.mp4", "events": ".events.jsonl"}


def output_names(rel: str, kinds: list[str]) -> dict[str, str]:
    """Output kind -> path relative to the output folder."""
    return {kind: rel + SUFFIXES[kind] for kind in kinds}


def output_path(out_dir: Path, name: str) -> Path:
    """`out_dir / name`, refused (SinkError) unless it stays inside `out_dir`: no absolute
    name, no '..', and no symlinked folder on the way that leads elsewhere. Names come from
    input paths and, with Ray, from other machines: neither may write outside --out."""
    relative = PurePosixPath(name)
    if not name or relative.is_absolute() or ".." in relative.parts or "\0" in name:
        raise SinkError(f"output name {name!r} is not a path inside {out_dir}")
    target = out_dir / relative
    # the folder that will hold it must resolve inside out_dir (a symlink there could lead
    # anywhere); the file itself is replaced by rename, which never follows a symlink
    parent = target.parent.resolve()
    if not parent.is_relative_to(out_dir.resolve()):
        raise SinkError(f"output {name!r} would be written to {parent}, outside {out_dir} (a symlinked folder)")
    return target


def publish(out_dir: Path, outputs: dict[str, Path | bytes]) -> None:
    """Move staged outputs (a file under OUT/.partial, or bytes from a remote worker)
    to their final names, each atomically."""
    for name, content in outputs.items():
        target = output_path(out_dir, name)
        if isinstance(content, bytes):
            write_atomic(target, content)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(content, "rb+") as file:
                os.fsync(file.fileno())  # the data is on disk before the name says it is done
            os.replace(content, target)
            sync_folder(target.parent)


def clear_partial(out_dir: Path) -> Path:
    """An empty staging folder inside `out_dir` (left-overs of a killed run removed)."""
    staging = out_dir / PARTIAL_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging
