"""A still-image COCO dataset: each image an independent random scene moment.

Images are JPEG, quality 95 with 4:4:4 chroma: real training sets are JPEG, the
files are ~5x smaller than PNG (sensor noise compresses badly losslessly),
and at this quality with full-resolution chroma the error is a few grey levels,
far below what moves an edge, so masks and boxes stay exact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from synth.coco import CocoWriter, write_json
from synth.scene import GENERATOR_VERSION, Scene

SCENE_SECONDS = 30.0  # each image shows a random moment of a clip this long


def check_dataset_args(count: int, width: int, height: int, max_objects: int) -> None:
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if width < 32 or height < 32:
        raise ValueError(f"image size must be at least 32x32, got {width}x{height}")
    if not 1 <= max_objects <= 50:
        raise ValueError(f"max_objects must be in 1..50, got {max_objects}")


def empty_indices(seed: int, count: int, fraction: float) -> set[int]:
    """Which images get no objects at all: about `fraction`, at least one when count >= 2."""
    n = max(1, round(count * fraction)) if count >= 2 else 0
    return {int(i) for i in np.random.default_rng(seed).choice(count, n, replace=False)}


def render_image(seed: int, index: int, width: int, height: int, max_objects: int,
                 empty: bool) -> tuple[np.ndarray, list, float]:
    """Image `index` of the dataset: (RGB image, instances, scene time). Independent of
    the other images, so any one can be regenerated alone."""
    rng = np.random.default_rng([seed, index])
    objects = 0 if empty else int(rng.integers(1, max_objects + 1))
    scene = Scene(rng, width, height, objects=objects, duration=SCENE_SECONDS)
    t = float(rng.uniform(0.0, SCENE_SECONDS))
    image, instances = scene.render(t)
    return image, instances, t


def write_dataset(out_dir: str | Path, *, seed: int, count: int, width: int = 640, height: int = 360,
                  max_objects: int = 8, empty_fraction: float = 0.03, quality: int = 95,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write out_dir/images/000000.jpg... and out_dir/annotations.json; return the COCO dict.

    `file_name` is relative to out_dir/images. `progress(done, total)` is called per image.
    """
    check_dataset_args(count, width, height, max_objects)
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    writer = CocoWriter({
        "description": "detstream synthetic scenes",
        "generator": "synth.dataset",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "args": {"count": count, "width": width, "height": height, "max_objects": max_objects,
                 "empty_fraction": empty_fraction, "quality": quality},
    })
    empty = empty_indices(seed, count, empty_fraction)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    for index in range(count):
        image, instances, t = render_image(seed, index, width, height, max_objects, index in empty)
        name = f"{index:06d}.jpg"
        if not cv2.imwrite(str(images_dir / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {images_dir / name}")
        writer.add({"id": index + 1, "file_name": name, "width": width, "height": height,
                    "scene_time": round(t, 3)}, instances)
        if progress is not None:
            progress(index + 1, count)
    coco = writer.to_dict()
    write_json(out_dir / "annotations.json", coco)
    return coco
