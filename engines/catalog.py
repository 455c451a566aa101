"""The models detstream can run here, for `detstream models`: one record per model.

Three kinds: the embedded models (shipped in engines/embedded/), torchvision's COCO R-CNNs
(`torchvision:NAME`: in the torch hub cache or not yet) and the engine packages in the
package cache (exported by `engine: auto`, engines/package_cache.py). Listing reads
metadata only: no weights are loaded and nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from engines.base import PLACEHOLDER_CLASSES, ModelInfo
from engines.model_file import embedded_models, read_info
from engines.models import TWO_STAGE, architecture
from engines.package import Package, is_package, read_package
from engines.package_cache import packages_folder
from engines.torchvision_models import MODELS, PREFIX, cache_file, coco_weights, describe
from pipeline.core.errors import ModelError

# what runs a model file: PyTorch, or ONNX Runtime on its package from the cache
MODEL_FILE_BACKENDS = ("torch", "onnxruntime")


@dataclass(frozen=True)
class Entry:
    kind: str  # embedded, torchvision or package
    spec: str  # what --model takes
    architecture: str
    input_size: tuple[int, int]
    classes: tuple[str, ...]  # what it can detect (placeholders left out)
    masks: bool
    backends: tuple[str, ...]  # which backends can run it here
    ready: bool  # runs offline now (False: torchvision weights not in the cache yet)
    file: str  # the weights file, or the package folder
    size_mb: float  # of `file`; for missing torchvision weights, the download size
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def catalog() -> list[Entry]:
    return [*_embedded(), *_torchvision(), *_packages()]


def _entry(kind: str, spec: str, info: ModelInfo, backends: tuple[str, ...], ready: bool, file: Path,
           size_mb: float, note: str = "") -> Entry:
    classes = tuple(name for name in info.class_names if name not in PLACEHOLDER_CLASSES)
    return Entry(kind, spec, info.architecture, tuple(info.input_size), classes, info.has_masks, backends, ready,
                 str(file), round(size_mb, 1), note)


def _embedded() -> list[Entry]:
    return [
        _entry("embedded", f"embedded:{name}", info, _model_file_backends(info), True, path, path.stat().st_size / 1e6)
        for name, path in embedded_models().items()
        for info in [read_info(f"embedded:{name}")]
    ]


def _model_file_backends(info: ModelInfo) -> tuple[str, ...]:
    """Only the R-CNN family's two-stage detectors export to ONNX; the others run on PyTorch."""
    return MODEL_FILE_BACKENDS if architecture(info.architecture).kind == TWO_STAGE else ("torch",)


def _torchvision() -> list[Entry]:
    entries = []
    for name in MODELS:
        spec = PREFIX + name
        file = cache_file(coco_weights(name))
        cached = file.is_file()
        size = file.stat().st_size / 1e6 if cached else float(coco_weights(name).meta.get("_file_size", 0.0))
        note = "" if cached else f"not in the torch hub cache: downloaded on first use ({size:.0f} MB) from {coco_weights(name).url}"
        entries.append(_entry("torchvision", spec, describe(spec), MODEL_FILE_BACKENDS, cached, file, size, note))
    return entries


def _packages() -> list[Entry]:
    folder = packages_folder()
    entries = []
    for root in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not is_package(root):  # locks, a killed export's leftovers
            continue
        try:
            package = read_package(root)
        except ModelError:
            continue  # listed by nobody: a damaged entry fails with its own error when used
        entries.append(_entry("package", str(root), package.info, _package_backends(package), True, root,
                              _folder_mb(root), f"exported from {package.meta.get('cache', {}).get('spec', '?')}"))
    return entries


def _package_backends(package: Package) -> tuple[str, ...]:
    return ("onnxruntime", "torch", *(("tensorrt",) if "tensorrt" in package.meta else ()))


def _folder_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
