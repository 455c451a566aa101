"""COCO assembly: image entries, instance annotations with RLE masks, the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from synth.categories import CATEGORIES
from synth.scene import Instance


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a frame-sized bool/uint8 mask, JSON-ready (counts as str)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def encode_instance(instance: Instance, height: int, width: int) -> dict[str, Any]:
    """Same result as `encode_mask(instance.full_mask(...))`, without building and
    scanning a frame-sized mask per instance (that dominated GT cost at 720p).

    COCO RLE runs go down the columns (Fortran order) and start with a run of
    zeros; only the bbox columns contain ones, the columns left and right of it
    are folded into the first and last zero runs.
    """
    x, y, w, h = instance.bbox
    columns = np.zeros((w, height), np.uint8)  # one row per image column
    columns[:, y:y + h] = instance.mask.T
    flat = columns.ravel()
    bounds = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs.insert(0, 0)
    runs[0] += x * height
    after = (width - x - w) * height
    if not flat[-1]:
        runs[-1] += after
    elif after:
        runs.append(after)
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def annotation(instance: Instance, ann_id: int, image_id: int, height: int, width: int) -> dict[str, Any]:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": instance.category_id,
        "bbox": [int(v) for v in instance.bbox],
        "area": instance.area,
        "segmentation": encode_instance(instance, height, width),
        "iscrowd": 0,
        "track_id": instance.track_id,
        "occluded": instance.occluded,
        **({} if instance.amodal_bbox is None else {"amodal_bbox": [int(v) for v in instance.amodal_bbox]}),
    }


class CocoWriter:
    """Collects images and annotations; annotation ids are unique across the file."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    def add(self, image: dict[str, Any], instances: list[Instance]) -> None:
        """Add one image entry (needs id, width, height) and its instances."""
        self.images.append(image)
        for instance in instances:
            self.annotations.append(annotation(instance, len(self.annotations) + 1, image["id"],
                                               image["height"], image["width"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": self.info,
            "licenses": [],
            "categories": [dict(c) for c in CATEGORIES],
            "images": self.images,
            "annotations": self.annotations,
        }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Compact JSON; key order and float formatting are stable, so equal data gives equal bytes."""
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
