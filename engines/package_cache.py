"""Engine packages exported once per model into the cache, so that `engine: auto` runs a
model file on ONNX Runtime without a `detstream export` step.

Rules:
- Where: `cache_folder()/packages/NAME-KEY/`, a plain engine package (engines/package.py);
  `cache_folder()` is `$DETSTREAM_CACHE`, else `$XDG_CACHE_HOME/detstream`, else
  `~/.cache/detstream` (pipeline/core/files.py).
- Key: SHA-256 of everything the export depends on: the loaded weights (each tensor of
  the state dict by name, dtype, shape and bytes), the `ModelInfo` (input size, classes,
  normalization...), the export settings (max batch), detstream's and torch's versions,
  and the exporter's own source (a development checkout changes it without a version
  bump). Hashing the loaded weights rather than a file keeps this module blind to the
  kind of spec (a path, `embedded:`, a checkpoint, `arch:`, `torchvision:`): all it needs
  is `load_model(spec)`. A changed model file gets a new entry; untrained `arch:` models
  are seeded, so they are the same weights, and the same entry, every time.
- Atomic: the export fills a hidden temporary folder next to the entry, renamed into
  place when complete, so a folder under an entry's name is always a whole package.
- Two processes at once: one lock file per entry (`NAME-KEY.lock`, `fcntl.flock`) is held
  around the export; the second process waits, then uses the first one's package. The
  leftovers of a killed export are deleted under that lock, never used.
- Entries are never rewritten; `detstream build-engine --package ENTRY` may add TensorRT
  plans to one. Clearing the cache is deleting the folder (docs/engines.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from engines import export
from engines.base import ModelInfo
from engines.package import Package, is_package, read_package
from pipeline.core.files import cache_folder, remove_leftovers, write_folder_atomic

log = logging.getLogger("detstream")

KEY_FORMAT = "detstream.package-cache/v1"  # bump when what goes into the key changes


def packages_folder() -> Path:
    return cache_folder() / "packages"


def detstream_version() -> str:
    try:
        return importlib.metadata.version("detstream")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


def cache_key(model: torch.nn.Module, info: ModelInfo, max_batch: int = export.MAX_BATCH) -> str:
    """SHA-256 (hex) of the weights and of everything else the exported package depends on."""
    digest = hashlib.sha256()
    settings = {
        "format": KEY_FORMAT,
        "info": info.to_dict(),
        "max_batch": max_batch,
        "detstream": detstream_version(),
        "torch": torch.__version__,
        "exporter": hashlib.sha256(Path(export.__file__).read_bytes()).hexdigest(),
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"\n{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def entry_folder(key: str, info: ModelInfo) -> Path:
    """A cache entry: the model's name (for people listing the folder), then its key."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", info.name).strip(".-")[:60] or "model"
    return packages_folder() / f"{name}-{key[:20]}"


def cached_package(spec: str, model: torch.nn.Module, info: ModelInfo, max_batch: int = export.MAX_BATCH) -> Package:
    """The cached package of `model` (loaded from `spec`), exported now if there is none."""
    key = cache_key(model, info, max_batch)
    target = entry_folder(key, info)
    if is_package(target):  # only whole packages ever appear under an entry's name
        return read_package(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock"), spec):
        if not is_package(target):  # else another process exported it while we waited
            remove_leftovers(target)  # a killed export's temporary folder
            log.info("exporting %s to an ONNX Runtime package once (cache: %s)", spec, target)
            started = time.monotonic()
            record = {"cache": {"key": key, "spec": spec, "detstream": detstream_version()}}
            write_folder_atomic(target, lambda folder: export.export_model(model, info, folder, max_batch, spec, record))
            log.info("exported %s in %.1f s; later runs load it from the cache", spec, time.monotonic() - started)
    return read_package(target)


@contextmanager
def _locked(path: Path, spec: str) -> Iterator[None]:
    """Hold an exclusive lock on `path`; the kernel releases it if the process dies."""
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process exporting %s (lock: %s)", spec, path)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock
