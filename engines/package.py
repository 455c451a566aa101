"""Engine packages: one folder per model holding its compiled parts and one metadata file.

    PACKAGE/package.json   metadata: ModelInfo, feature names, batch and RoI ranges,
                           precision, tool versions, file checksums
    PACKAGE/model.pt       the source model (weights + info): the PyTorch reference
    PACKAGE/dense.onnx     backbone + FPN + RPN head, dynamic batch
    PACKAGE/box_head.onnx  box head + predictor, dynamic number of RoIs
    PACKAGE/mask_head.onnx mask head + predictor (Mask R-CNN only)
    PACKAGE/trt/*.plan     TensorRT plans, when built on a GPU machine
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
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
        path = self.root / entry["path"]
        if not path.is_file():
            raise ModelError(f"package {self.root}: {entry['path']} is missing")
        if sha256(path) != entry["sha256"]:
            raise ModelError(f"package {self.root}: {entry['path']} does not match its checksum (damaged or replaced)")
        return path

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
    try:
        meta = json.loads((root / METADATA).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{root / METADATA}: not readable package metadata: {exc}") from exc
    if meta.get("format") != PACKAGE_FORMAT:
        raise ModelError(f"{root}: not a detstream engine package (format {meta.get('format')!r})")
    return Package(root, meta)


def write_package(root: Path, meta: dict[str, Any], files: dict[str, str]) -> Package:
    """Write package.json for the parts in `files` (part -> file name inside root)."""
    meta = {
        "format": PACKAGE_FORMAT,
        **meta,
        "files": {part: {"path": name, "sha256": sha256(root / name)} for part, name in files.items()},
    }
    (root / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
    return Package(root, meta)
