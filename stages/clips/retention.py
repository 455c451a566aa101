"""Retention of the clip folder: by age and by total size, the oldest files first.

Rules:
- Only files detstream wrote are ever deleted: in a source's sub-folder, named like
  a clip (`20250301T101500.250Z-1a2b3c4d.mp4`) or one of its snapshots
  (`...-t7.jpg`, `...-t7-crop.jpg`), and temporary files (`.NAME.*.tmp`) of writes that
  did not finish, once untouched for STALE_TEMP_S (a clip being written is appended to
  every fraction of a second). Anything else in the folder is left alone, but its size
  counts.
- Age: a file whose modification time is older than `max_age_s` goes. Size: while the
  folder's total exceeds `max_bytes`, the oldest file (by modification time, then name)
  goes, the newest clip included if it alone is over the limit (a warning says so).
- Applied when the run starts, after every clip is written, and every APPLY_EVERY_S.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from pipeline.core.clips_config import RetentionConfig

log = logging.getLogger("detstream")

STALE_TEMP_S = 3600.0
APPLY_EVERY_S = 60.0
OURS = re.compile(r"\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}(-t\d+(-crop)?\.jpg|\.mp4)")
TEMP = re.compile(r"\..+\.tmp")


def _files(folder: Path) -> list[tuple[float, str, int, Path, bool]]:
    """(mtime, name, size, path, deletable) of every file one level below `folder`'s sub-folders and in it."""
    found = []
    for directory in (folder, *(p for p in _entries(folder) if p.is_dir(follow_symlinks=False))):
        for entry in _entries(Path(directory)):
            if not entry.is_file(follow_symlinks=False):
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted meanwhile
            ours = directory != folder and bool(OURS.fullmatch(entry.name))
            found.append((stat.st_mtime, entry.name, stat.st_size, Path(entry.path), ours))
    return found


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


class Retention:
    def __init__(self, folder: Path, config: RetentionConfig) -> None:
        self.folder = folder
        self.config = config
        self.deleted = 0  # files, over the run
        self.applied_at = 0.0  # monotonic

    def apply(self, now: float | None = None) -> list[Path]:
        """Delete what the rules say must go; the paths deleted."""
        now = time.time() if now is None else now
        self.applied_at = time.monotonic()
        files = sorted(_files(self.folder))
        gone: list[Path] = []
        kept = []
        max_age = self.config.max_age_s
        for mtime, name, size, path, ours in files:
            stale_temp = TEMP.fullmatch(name) is not None and now - mtime > STALE_TEMP_S
            if (ours and max_age is not None and now - mtime > max_age) or stale_temp:
                gone.append(path)
            else:
                kept.append((mtime, name, size, path, ours))
        limit = self.config.max_bytes
        total = sum(size for _, _, size, _, _ in kept)
        if limit is not None and total > limit:
            for _, name, size, path, ours in list(kept):
                if total <= limit:
                    break
                if ours:
                    if size > limit:
                        log.warning("clips: %s alone (%d bytes) exceeds retention.max_bytes (%d): deleted", name, size, limit)
                    gone.append(path)
                    total -= size
        for path in gone:
            path.unlink(missing_ok=True)
        self.deleted += len(gone)
        return gone
