"""Read and check a COCO instances JSON before any training or evaluation starts.

Every check here is cheap (no image is decoded), so a broken dataset fails in seconds
with a message naming the file and the records at fault, instead of hours into a run.
Up to `MAX_REPORTED` (pipeline/core/errors.py) problems are collected into one error so a user fixes them in one
pass.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.core.errors import DatasetError
from pipeline.core.coco_files import default_images_dir, read_json, video_frame

BOX_TOLERANCE = 1.0  # pixels a box may reach beyond the image (rounding in annotation tools)


@dataclass(frozen=True)
class ImageRecord:
    id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class Instance:
    id: int
    image_id: int
    category_id: int
    box: tuple[float, float, float, float]  # xyxy, clipped to the image
    iscrowd: bool
    area: float
    segmentation: Any | None  # COCO polygon list or RLE dict, None when absent


@dataclass
class Annotations:
    """A checked COCO instances file.

    `coco` is the JSON with `area` and `iscrowd` filled in where they were missing, ready
    for pycocotools (COCOeval reads both on every ground-truth record).
    """

    path: Path
    images_dir: Path
    images: list[ImageRecord]
    instances: dict[int, list[Instance]]  # by image id, in file order
    categories: list[tuple[int, str]]  # (category id, name), sorted by id
    coco: dict[str, Any]

    @property
    def has_segmentation(self) -> bool:
        return all(i.segmentation is not None for group in self.instances.values() for i in group)


def image_file(images_dir: Path, file_name: str) -> Path | None:
    """The file that holds image `file_name`: the image itself, or the video of a
    `VIDEO#N` name (an existing file of that very name wins); None when neither exists."""
    path = images_dir / file_name
    if path.is_file():
        return path
    frame = video_frame(file_name)
    if frame is not None and (images_dir / frame[0]).is_file():
        return images_dir / frame[0]
    return None


def load_annotations(path: Path, images_dir: Path | None = None) -> Annotations:
    """Read and check `path`; raise one `DatasetError` listing the problems found."""
    path = Path(path)
    data = read_json(path)
    images_dir = default_images_dir(path) if images_dir is None else Path(images_dir)
    problems: list[str] = []
    categories = _check_categories(data["categories"], problems)
    images = _check_images(data["images"], images_dir, problems)
    listed = {i.get("id") for i in data["images"] if isinstance(i, dict) and _is_int(i.get("id"))}
    instances = _check_annotations(data["annotations"], images, listed, {c for c, _ in categories}, problems)
    if problems:
        raise DatasetError(path, problems)
    by_image: dict[int, list[Instance]] = {record.id: [] for record in images.values()}
    for instance in instances:
        by_image[instance.image_id].append(instance)
    return Annotations(path, images_dir, list(images.values()), by_image, categories, data)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_categories(raw: list[Any], problems: list[str]) -> list[tuple[int, str]]:
    seen: dict[int, str] = {}
    names: set[str] = set()
    for i, category in enumerate(raw):
        cid = category.get("id") if isinstance(category, dict) else None
        name = category.get("name") if isinstance(category, dict) else None
        if not _is_int(cid) or not isinstance(name, str) or not name:
            problems.append(f"categories[{i}]: needs an integer 'id' and a non-empty 'name'")
        elif cid in seen:
            problems.append(f"category id {cid}: duplicate id")
        elif name in names:
            # evaluation matches model classes to categories by name
            problems.append(f"category id {cid}: duplicate name {name!r}")
        else:
            seen[cid] = name
            names.add(name)
    if not raw:
        problems.append("no categories")
    return sorted(seen.items())


def _check_images(raw: list[Any], images_dir: Path, problems: list[str]) -> dict[int, ImageRecord]:
    images: dict[int, ImageRecord] = {}
    for i, image in enumerate(raw):
        if not isinstance(image, dict) or not _is_int(image.get("id")):
            problems.append(f"images[{i}]: needs an integer 'id'")
            continue
        iid = image["id"]
        name, width, height = image.get("file_name"), image.get("width"), image.get("height")
        if iid in images:
            problems.append(f"image id {iid}: duplicate id")
        elif not isinstance(name, str) or not _is_int(width) or not _is_int(height) or width <= 0 or height <= 0:
            problems.append(f"image id {iid}: needs 'file_name' and positive integer 'width', 'height'")
        elif image_file(images_dir, name) is None:
            problems.append(f"image id {iid}: file not found: {images_dir / name}")
        else:
            images[iid] = ImageRecord(iid, name, width, height)
    return images


def _check_annotations(
    raw: list[Any],
    images: dict[int, ImageRecord],
    listed: set[Any],
    category_ids: set[int],
    problems: list[str],
) -> list[Instance]:
    """Valid instances; `listed` holds every image id in the file, valid or not."""
    instances = []
    seen: set[int] = set()
    known = sorted(category_ids)
    for i, ann in enumerate(raw):
        if not isinstance(ann, dict) or not _is_int(ann.get("id")):
            problems.append(f"annotations[{i}]: needs an integer 'id'")
            continue
        where = f"annotation id {ann['id']} (image id {ann.get('image_id')})"
        if ann["id"] in seen:
            problems.append(f"{where}: duplicate id")
            continue
        seen.add(ann["id"])
        if not _is_int(ann.get("image_id")) or ann["image_id"] not in listed:
            problems.append(f"{where}: image id {ann.get('image_id')} is not in images")
            continue
        image = images.get(ann["image_id"])
        if image is None:  # the image itself was already reported (missing file, bad size)
            continue
        if not _is_int(ann.get("category_id")) or ann["category_id"] not in category_ids:
            problems.append(f"{where}: category_id {ann.get('category_id')} is not in categories {known}")
            continue
        reason = _box_problem(ann.get("bbox"), image) or _segmentation_problem(ann.get("segmentation"), image)
        if reason is None and ann.get("iscrowd", 0) not in (0, 1):
            reason = f"iscrowd must be 0 or 1, got {ann.get('iscrowd')!r}"
        if reason is None and "area" in ann and not (_is_number(ann["area"]) and ann["area"] >= 0):
            reason = f"area must be a number >= 0, got {ann['area']!r}"
        if reason is not None:
            problems.append(f"{where}: {reason}")
            continue
        instances.append(_instance(ann, image))
    return instances


def _box_problem(bbox: Any, image: ImageRecord) -> str | None:
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        return f"bbox must be 4 numbers [x, y, w, h], got {bbox!r}"
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return f"bbox {bbox} has non-positive size"
    t = BOX_TOLERANCE
    if x < -t or y < -t or x + w > image.width + t or y + h > image.height + t:
        return f"bbox {bbox} is outside the {image.width}x{image.height} image"
    return None


def _segmentation_problem(segmentation: Any, image: ImageRecord) -> str | None:
    if segmentation is None or segmentation == []:
        return None
    if isinstance(segmentation, list):
        for polygon in segmentation:
            if (
                not isinstance(polygon, list)
                or len(polygon) < 6
                or len(polygon) % 2
                or not all(_is_number(v) for v in polygon)
            ):
                return "segmentation polygon must be a list of >= 3 (x, y) number pairs"
        return None
    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if size != [image.height, image.width]:
            return f"segmentation RLE size {size!r} is not the image's [{image.height}, {image.width}]"
        return _rle_counts_problem(counts, image)
    return f"segmentation must be polygons or an RLE dict, got {type(segmentation).__name__}"


def _rle_counts_problem(counts: Any, image: ImageRecord) -> str | None:
    """What is wrong with an RLE's counts for `image`, or None. pycocotools raises
    OverflowError, UnicodeEncodeError or ValueError on bad counts (found by
    tests/fuzz/test_fuzz_coco.py), so they are checked here, before it sees them."""
    pixels = image.height * image.width
    if isinstance(counts, list):
        if all(_is_int(c) and c >= 0 for c in counts) and sum(counts) == pixels:
            return None
        return f"segmentation RLE 'counts' must be integers >= 0 that add up to {pixels} (height x width)"
    if not isinstance(counts, str):
        return "segmentation RLE 'counts' must be a string or a list of integers"
    try:
        mask_utils.decode({"size": [image.height, image.width], "counts": counts.encode("ascii")})
    except (UnicodeEncodeError, ValueError):
        return "segmentation RLE 'counts' is not a compressed RLE of the image's size"
    return None


def _instance(ann: dict[str, Any], image: ImageRecord) -> Instance:
    x, y, w, h = (float(v) for v in ann["bbox"])
    box = (max(0.0, x), max(0.0, y), min(float(image.width), x + w), min(float(image.height), y + h))
    segmentation = ann.get("segmentation") or None
    if "area" not in ann:
        ann["area"] = float(mask_utils.area(to_rle(segmentation, image))) if segmentation else w * h
    ann.setdefault("iscrowd", 0)
    return Instance(
        ann["id"], image.id, ann["category_id"], box, bool(ann["iscrowd"]), float(ann["area"]), segmentation
    )


def to_rle(segmentation: Any, image: ImageRecord) -> dict[str, Any]:
    """One compressed RLE for a polygon list, an uncompressed or a compressed RLE."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, image.height, image.width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, image.height, image.width)
    counts = segmentation["counts"]
    return {"size": segmentation["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_mask(segmentation: Any, image: ImageRecord) -> np.ndarray:
    """H x W uint8 0/1 mask of one annotation."""
    return mask_utils.decode(to_rle(segmentation, image)).astype(np.uint8)


def fingerprint(annotations: Path, images: Path | None = None) -> str:
    """Short sha256 of the JSON bytes plus each listed image's file name and size.

    Cheap (stat only, no image reads) yet changes when labels or image files change,
    so a model's metadata can say exactly which data it was trained on.
    """
    annotations = Path(annotations)
    raw = annotations.read_bytes()
    images_dir = default_images_dir(annotations) if images is None else Path(images)
    digest = hashlib.sha256(raw)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DatasetError(annotations, [f"not a readable JSON file: {str(exc)[:200]}"]) from exc
    listed = data.get("images", []) if isinstance(data, dict) else []
    for name in sorted(str(image.get("file_name")) for image in listed if isinstance(image, dict)):
        path = image_file(images_dir, name)
        size = path.stat().st_size if path is not None else -1
        digest.update(f"\0{name}\0{size}".encode())
    return digest.hexdigest()[:16]
