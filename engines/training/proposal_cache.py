"""Selective search proposals of a COCO dataset, computed once and kept on disk.

Rules:
- One folder per (search settings, image list): `ROOT/<json stem>-<key>/`, where the key
  hashes the settings that change the boxes (mode, max_side, top_n, min_side; not the
  thread count) and a fingerprint of the image list (id, file name, size in the JSON and
  size on disk of every image). Other settings or changed images give another folder, so
  a stale cache is never read; labels may change without recomputing anything.
- In the folder: `settings.json` (what the key stands for, for people) and one
  `<image id>.npy` per image: N x 4 float32 xyxy boxes in the stored image's pixels, in
  selective search's ranking order. Each file is written atomically (pipeline.core.files),
  so an interrupted run leaves only whole files and the next run computes the rest.
- Images are decoded in this process (the dataset knows videos and checks sizes) and
  searched in `workers` processes, each with one OpenCV thread (processes, not threads,
  are what scale here: the search holds the GIL for part of its work).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engines.selective_search import SelectiveSearch
from engines.training.annotations import image_file
from pipeline.core.errors import ConfigError, DatasetError, DetstreamError
from pipeline.core.files import cache_folder, write_atomic

if TYPE_CHECKING:
    from engines.training.data import CocoDataset

# the settings that decide the boxes; `threads` only decides the speed
KEYED_SETTINGS = ("mode", "max_side", "top_n", "min_side")


def image_list_fingerprint(dataset: CocoDataset) -> str:
    """Short sha256 of every image's id, file name, JSON size and file size (stat only)."""
    digest = hashlib.sha256()
    for record in sorted(dataset.records, key=lambda r: r.id):
        path = image_file(dataset.images_dir, record.file_name)
        size = path.stat().st_size if path is not None else -1
        digest.update(f"{record.id}\0{record.file_name}\0{record.width}x{record.height}\0{size}\n".encode())
    return digest.hexdigest()[:16]


def default_root() -> Path:
    """Where proposal caches live unless a folder is given: `$DETSTREAM_CACHE/proposals`."""
    return cache_folder() / "proposals"


@dataclass(frozen=True)
class ProposalCache:
    """The proposal folder of one dataset under one search setting."""

    folder: Path
    search: SelectiveSearch

    @classmethod
    def of(cls, dataset: CocoDataset, search: SelectiveSearch, root: Path | None = None) -> ProposalCache:
        settings = {name: getattr(search, name) for name in KEYED_SETTINGS}
        record = {"settings": settings, "images": image_list_fingerprint(dataset), "format": 1}
        key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
        folder = Path(root or default_root()) / f"{dataset.path.stem}-{key}"
        return cls(folder, search)

    def path(self, image_id: int) -> Path:
        return self.folder / f"{image_id}.npy"

    def missing(self, dataset: CocoDataset) -> list[int]:
        """Indices of the dataset's images without a proposal file."""
        return [i for i, r in enumerate(dataset.records) if not self.path(r.id).is_file()]

    def load(self, image_id: int) -> np.ndarray:
        """N x 4 float32 boxes of one image; a clear error when it was never computed."""
        path = self.path(image_id)
        try:
            boxes = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise DatasetError(
                path.parent, [f"image id {image_id}: no proposals in {path} (run `detstream proposals cache`)"]
            ) from None
        return boxes.astype(np.float32, copy=False).reshape(-1, 4)

    def compute(self, dataset: CocoDataset, workers: int = 1, console: Console | None = None) -> int:
        """Search every image that has no file yet; returns how many were computed."""
        if workers < 1:
            raise ConfigError(f"proposal workers = {workers}: expected an integer >= 1", "workers")
        todo = self.missing(dataset)
        if not todo:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = {"search": {k: getattr(self.search, k) for k in KEYED_SETTINGS}, "annotations": str(dataset.path),
                    "images_dir": str(dataset.images_dir), "images": len(dataset)}
        write_atomic(self.folder / "settings.json", (json.dumps(settings, indent=2) + "\n").encode())
        # one OpenCV thread per worker process: processes share the cores, not threads
        search = replace(self.search, threads=1) if workers > 1 else self.search
        with _progress(console or Console(stderr=True), len(todo)) as advance:
            if workers == 1:
                for index in todo:
                    self._save(dataset, index, search(dataset.read_image(index)))
                    advance()
            else:
                self._compute_parallel(dataset, todo, search, workers, advance)
        return len(todo)

    def _compute_parallel(
        self, dataset: CocoDataset, todo: list[int], search: SelectiveSearch, workers: int, advance: Callable[[], None]
    ) -> None:
        # spawn, not fork: the parent may hold torch and OpenMP threads, which fork does not copy safely
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            pending: dict[Future, int] = {}
            queue = iter(todo)
            while True:
                # a bounded number of decoded images in flight: memory stays flat
                while len(pending) < 2 * workers and (index := next(queue, None)) is not None:
                    pending[pool.submit(search, dataset.read_image(index))] = index
                if not pending:
                    return
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = pending.pop(future)
                    try:
                        boxes = future.result()
                    except BrokenProcessPool as exc:  # killed (out of memory?) or could not start
                        raise DetstreamError(f"a selective search process died on image id "
                                             f"{dataset.records[index].id}: {exc}") from exc
                    self._save(dataset, index, boxes)
                    advance()

    def _save(self, dataset: CocoDataset, index: int, boxes: np.ndarray) -> None:
        path = self.path(dataset.records[index].id)
        write_atomic(path, lambda file: np.save(file, np.ascontiguousarray(boxes, np.float32), allow_pickle=False))


class _progress:
    """A rich bar on a terminal; one closing line otherwise (background runs, CI logs)."""

    def __init__(self, console: Console, total: int) -> None:
        self.console, self.total, self.done = console, total, 0
        self.bar = Progress(TextColumn("proposals"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=not console.is_terminal)
        self.task = self.bar.add_task("proposals", total=total)

    def __enter__(self) -> Callable[[], None]:
        self.bar.__enter__()
        return self.advance

    def advance(self) -> None:
        self.done += 1
        self.bar.advance(self.task)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)
        if not self.console.is_terminal:
            self.console.print(f"proposals: {self.done} of {self.total} images searched", highlight=False)
