"""Tiny COCO datasets on disk: blob images from `support` with exact annotations.

Category ids are deliberately not 1..K and listed out of order, so tests see the
mapping to contiguous labels and back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from support import blob_scene, render_blobs

# blob class id (support.BLOB_CLASSES index) -> COCO category id
CATEGORY_ID = {1: 5, 2: 10, 3: 20}
CATEGORIES = [{"id": 20, "name": "blue"}, {"id": 5, "name": "red"}, {"id": 10, "name": "green"}]


def rect_mask(box: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = 1
    return mask


def segmentation(kind: str, box: tuple[int, int, int, int], height: int, width: int) -> Any:
    """A rectangle as a polygon, a compressed RLE or an uncompressed RLE."""
    x1, y1, x2, y2 = box
    if kind == "polygon":
        return [[x1, y1, x2, y1, x2, y2, x1, y2]]
    mask = rect_mask(box, height, width)
    if kind == "rle":
        rle = mask_utils.encode(np.asfortranarray(mask))
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    if kind == "rle-list":
        return {"size": [height, width], "counts": uncompressed_counts(mask)}
    raise ValueError(kind)


def uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with zeros."""
    flat = mask.flatten(order="F")
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    counts.append(run)
    return counts


def blob_dataset(
    root: Path,
    count: int = 6,
    width: int = 240,
    height: int = 160,
    kinds: tuple[str, ...] = ("polygon",),
    ext: str = "png",
    images_beside: bool = False,
) -> Path:
    """`count` blob images and their annotations; returns the JSON path.

    Segmentation kinds cycle over the annotations (`kinds=()` gives boxes only). Images
    go to `root/images/` unless `images_beside`.
    """
    image_dir = root if images_beside else root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        name = f"frame_{i:03d}.{ext}"
        cv2.imwrite(str(image_dir / name), cv2.cvtColor(render_blobs(i, width, height), cv2.COLOR_RGB2BGR))
        images.append({"id": 100 + i, "file_name": name, "width": width, "height": height})
        for blob in blob_scene(i, width, height):
            x1, y1, x2, y2 = blob.box
            ann = {
                "id": len(annotations) + 1,
                "image_id": 100 + i,
                "category_id": CATEGORY_ID[blob.class_id],
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
            }
            if kinds:
                ann["segmentation"] = segmentation(kinds[len(annotations) % len(kinds)], blob.box, height, width)
            annotations.append(ann)
    path = root / "annotations.json"
    write_json(path, {"images": images, "annotations": annotations, "categories": CATEGORIES})
    return path


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


def edit(path: Path, change: Callable[[dict], None]) -> Path:
    """Load the JSON at `path`, let `change` modify it, write it back."""
    data = json.loads(path.read_text())
    change(data)
    write_json(path, data)
    return path
