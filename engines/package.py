"""Engine packages: one folder per model holding its compiled parts and one metadata file.

    PACKAGE/package.json   metadata: ModelInfo, feature names, batch and RoI ranges,
                           precision, tool versions, file checksums
    PACKAGE/model.pt       the source model (weights + info): the PyTorch reference
    PACKAGE/dense.onnx     backbone + FPN + RPN head, dynamic batch
    PACKAGE/box_head.onnx  box head + predictor, dynamic number of RoIs
    PACKAGE/mask_head.onnx mask head + predictor (Mask R-CNN only)
    PACKAGE/*.cpu.onnx     int8 packages only: the parts quantized for ONNX Runtime's
                           x86 kernels (engines/int8.py), which it runs instead
    PACKAGE/trt/*.plan     TensorRT plans, when built on a GPU machine
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from engines.base import ModelInfo
from pipeline.core.errors import ModelError

PACKAGE_FORMAT = "detstream.package/v1"
METADATA = "package.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cpu_part(part: str) -> str:
    """The name of `part`'s ONNX Runtime flavour, which int8 packages hold (engines/int8.py)."""
    return f"{part}_cpu"


def is_package(path: Path) -> bool:
    return path.is_dir() and (path / METADATA).is_file()


@dataclass(frozen=True)
class Package:
    root: Path
    meta: dict[str, Any]

    @property
    def info(self) -> ModelInfo:
        return ModelInfo.from_dict(self.meta["info"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    def file(self, part: str) -> Path:
        """Path of a part (`dense`, `box_head`, `mask_head`, `torch`), checksum verified."""
        entry = self.meta["files"].get(part)
        if entry is None:
            raise ModelError(f"package {self.root} has no {part} file")
        path = self.inside(entry["path"])
        if not path.is_file():
            raise ModelError(f"package {self.root}: {entry['path']} is missing")
        if sha256(path) != entry["sha256"]:
            raise ModelError(f"package {self.root}: {entry['path']} does not match its checksum (damaged or replaced)")
        return path

    def cpu_file(self, part: str) -> Path:
        """The file ONNX Runtime runs for `part` on a CPU: its CPU flavour when the package
        has one (int8), else the part itself."""
        return self.file(cpu_part(part) if self.has(cpu_part(part)) else part)

    def inside(self, relative: str) -> Path:
        """`relative` (a path the metadata names) under the root; an absolute path, `..` or a
        symlink leading out of the package is a ModelError (a package must not make us read
        or checksum other files)."""
        path = PurePosixPath(relative)
        if not relative or path.is_absolute() or ".." in path.parts or "\\" in relative:
            raise ModelError(f"package {self.root}: {relative!r} is not a path inside the package")
        full = self.root / relative
        if full.exists() and not full.resolve().is_relative_to(self.root.resolve()):
            raise ModelError(f"package {self.root}: {relative} leads outside the package (a symlink)")
        return full

    def has(self, part: str) -> bool:
        return part in self.meta["files"]

    def input_shape(self, part: str) -> tuple[int | str, ...]:
        """The input shape of an ONNX part as exported, its dynamic first axis by name
        (`("rois", 76, 14, 14)`): what a caller must feed it, never assumed."""
        import onnx  # only for this question: loading a package for ONNX Runtime needs no onnx

        graph = onnx.load(str(self.file(part)), load_external_data=False).graph
        (value,) = graph.input
        return tuple(d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim)


def read_package(root: Path) -> Package:
    """The package at `root`, its metadata checked (a damaged or hostile package.json is
    one ModelError here, never a KeyError or a file outside the package later)."""
    try:
        meta = json.loads((root / METADATA).read_text())
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8
        raise ModelError(f"{root / METADATA}: not readable package metadata: {str(exc)[:200]}") from exc
    if not isinstance(meta, dict) or meta.get("format") != PACKAGE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelError(f"{root}: not a detstream engine package (format {str(found)[:80]!r})")
    problem = _metadata_problem(meta)
    if problem:
        raise ModelError(f"{root / METADATA}: {problem}")
    return Package(root, meta)


def _metadata_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with the fields every package has, or None."""
    info = meta.get("info")
    if not isinstance(info, dict):
        return "'info' is not an object"
    try:
        model = ModelInfo.from_dict(info)
    except (TypeError, ValueError) as exc:
        return f"'info' is not a model description: {str(exc)[:200]}"
    if not (isinstance(model.name, str) and isinstance(model.architecture, str)
            and len(model.class_names) >= 2 and all(isinstance(c, str) for c in model.class_names)
            and len(model.input_size) == 2 and all(isinstance(v, int) and v > 0 for v in model.input_size)):
        return "'info' needs a name, an architecture, class names and a positive [height, width] input size"
    names = meta.get("feature_names", [])
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return "'feature_names' is not a list of names"
    files = meta.get("files")
    if not isinstance(files, dict):
        return "'files' is not an object"
    for part, entry in files.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64):
            return f"files.{part} needs a 'path' and a 'sha256'"
    return None


def write_package(root: Path, meta: dict[str, Any], files: dict[str, str]) -> Package:
    """Write package.json for the parts in `files` (part -> file name inside root)."""
    meta = {
        "format": PACKAGE_FORMAT,
        **meta,
        "files": {part: {"path": name, "sha256": sha256(root / name)} for part, name in files.items()},
    }
    (root / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
    return Package(root, meta)
