"""COCO files: reading one with clear errors, and video frames named as COCO images.

`clip.mp4#N` is frame N of clip.mp4 (0-based, decode order).

`detstream synth video` names its ground truth's images so; `detstream eval` reads them
(engines/training) and `detstream batch --ground-truth` numbers its COCO results with
their ids (pipeline/batch), so the two agree on which image a frame is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.core.errors import DatasetError


def default_images_dir(annotations: Path) -> Path:
    """`images/` next to the JSON if it exists, else the JSON's own folder."""
    beside = annotations.parent / "images"
    return beside if beside.is_dir() else annotations.parent


def video_frame(file_name: str) -> tuple[str, int] | None:
    """`clip.mp4#12` -> ("clip.mp4", 12); None for any other name."""
    name, sep, index = file_name.rpartition("#")
    return (name, int(index)) if sep and name and index.isdigit() else None


def video_image_ids(path: Path) -> dict[str, dict[int, int]]:
    """The video frames a COCO file lists as images: video name -> {frame index: image id}."""
    path = Path(path)
    ids: dict[str, dict[int, int]] = {}
    for image in read_json(path)["images"]:
        name = image.get("file_name") if isinstance(image, dict) else None
        frame = video_frame(name) if isinstance(name, str) else None
        image_id = image.get("id") if frame is not None else None
        if frame is not None and isinstance(image_id, int) and not isinstance(image_id, bool):
            ids.setdefault(frame[0], {})[frame[1]] = image_id
    if not ids:
        raise DatasetError(path, ["lists no video frames (images named 'VIDEO#N', as detstream synth video writes)"])
    return ids


def read_json(path: Path) -> dict[str, Any]:
    """A COCO file as a dict with lists `images`, `categories`, `annotations`; else one DatasetError naming it."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise DatasetError(path, ["file not found"]) from None
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
        raise DatasetError(path, [f"not a readable JSON file: {str(exc)[:200]}"]) from exc
    if not isinstance(data, dict):
        raise DatasetError(path, ["expected a JSON object with images, annotations, categories"])
    missing = [key for key in ("images", "categories") if not isinstance(data.get(key), list)]
    if missing:
        raise DatasetError(path, [f"missing or non-list key {key!r}" for key in missing])
    if not isinstance(data.setdefault("annotations", []), list):
        raise DatasetError(path, ["'annotations' is not a list"])
    return data
