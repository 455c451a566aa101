"""The record of finished files that makes `detstream batch` resumable.

`OUT/manifest.jsonl` holds one line per file whose outputs are complete: its relative
path, size and mtime, the model checksum, the settings fingerprint and the outputs. A
line is appended (flushed and fsynced) only after the outputs were renamed into place,
so a killed run never lists a file it did not finish; a torn last line is ignored. At
the end of a run the file is rewritten sorted by path, so the same collection gives the
same manifest however the files were scheduled (local or Ray).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.core.files import write_atomic
from pipeline.batch.collection import FileStat

log = logging.getLogger("detstream")
MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # the file's rel
    size: int | None
    mtime_ns: int | None
    model: str  # model checksum
    settings: str  # BatchSettings.fingerprint()
    outputs: list[str]  # relative to the output folder
    frames: int
    detections: int

    def matches(self, stat: FileStat, model: str, settings: str) -> bool:
        return (self.size, self.mtime_ns, self.model, self.settings) == (stat.size, stat.mtime_ns, model, settings)


class Manifest:
    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / MANIFEST_NAME
        self.out_dir = out_dir
        self.entries: dict[str, ManifestEntry] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            try:
                entry = ManifestEntry(**json.loads(line))
            except (ValueError, TypeError):
                # a run killed mid-append leaves a torn last line: that file is redone
                log.warning("%s line %d is not a complete record: ignored", self.path, number)
                continue
            self.entries[entry.path] = entry  # a later line supersedes an earlier one

    def finished(self, rel: str, stat: FileStat, model: str, settings: str) -> ManifestEntry | None:
        """The entry of `rel` if its results are there and still valid, else None."""
        entry = self.entries.get(rel)
        if entry is None or not entry.matches(stat, model, settings):
            return None
        if not all((self.out_dir / name).is_file() for name in entry.outputs):
            return None  # someone deleted an output: make it again
        return entry

    def record(self, entry: ManifestEntry) -> None:
        self.entries[entry.path] = entry
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(asdict(entry), separators=(",", ":")) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def compact(self) -> None:
        """Rewrite sorted by path, one line per file."""
        lines = [json.dumps(asdict(self.entries[k]), separators=(",", ":")) for k in sorted(self.entries)]
        write_atomic(self.path, "".join(line + "\n" for line in lines).encode())


def model_checksum(spec: str, weights: str | None = None) -> str:
    """SHA-256 of what decides the model's output: the file, a package's metadata
    (which holds the SHA-256 of each of its files), or for `torchvision:NAME` its weights
    file (`weights`, else the hub cache's; torchvision names it after its content, so the
    name stands for a file not downloaded yet)."""
    if spec.startswith("arch:"):
        return "arch:" + spec.removeprefix("arch:")  # untrained: no weights to hash
    # torch loads only when a model is named
    from engines.model_file import resolve
    from engines.torchvision_models import is_torchvision_spec, weights_file

    path = Path(spec)
    if is_torchvision_spec(spec):
        path = weights_file(spec, weights)
        if not path.is_file():  # not downloaded yet, or a missing --weights the load reports
            return f"{spec}:{path.name}"
    elif path.is_dir():
        path = path / "package.json"
    else:
        path = resolve(spec)
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
