"""Ground-truth tracks of one video from a COCO file, as `detstream synth video` writes it.

Rules:
- The video's frames are the images named `VIDEO#N` (pipeline/core/coco_files.py), N the
  frame index in decode order; every such image is a frame, with or without objects.
- Each of their annotations needs an int `track_id` (one identity per object for the whole
  video) and a COCO `bbox` [x, y, w, h]; `occluded` (fraction hidden by others or the frame
  border, 0..1) is optional and 0 when absent; so is `amodal_bbox` [x, y, w, h], the whole
  object's box with its hidden parts (synth writes it), which line counts use
  (pipeline/track_eval/lines.py). Labels are the categories' names, which is
  how they meet the model's class names.
- Problems are collected and raised as one DatasetError naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.coco_files import read_json, video_frame
from pipeline.core.errors import DatasetError
from pipeline.track_eval.referee import TruthBox


@dataclass(frozen=True)
class GroundTruth:
    path: Path
    video: str  # the video name of the images (`VIDEO` of `VIDEO#N`)
    frames: dict[int, list[TruthBox]]  # frame index -> objects in view (every frame of the video)
    pts: dict[int, float]  # frame index -> stream time (seconds), where the image gives one
    classes: tuple[str, ...]  # the categories' names
    size: tuple[int, int] | None  # width, height of the video's first image, where it says


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _box(annotation: dict[str, Any], key: str = "bbox") -> tuple[float, float, float, float] | None:
    bbox = annotation.get(key)
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_number, bbox)) and bbox[2] >= 0 and bbox[3] >= 0):
        return None
    x, y, w, h = (float(v) for v in bbox)
    return (x, y, x + w, y + h)


def load_truth(path: Path, video: str) -> GroundTruth:
    """The ground-truth tracks of `video` (its file name) in the COCO file `path`."""
    data = read_json(path)
    names = {c.get("id"): c.get("name") for c in data["categories"] if isinstance(c, dict)}
    image_frames: dict[Any, int] = {}
    pts: dict[int, float] = {}
    videos: set[str] = set()
    size: tuple[int, int] | None = None
    for image in data["images"]:
        named = video_frame(image.get("file_name", "")) if isinstance(image, dict) else None
        if named is None:
            continue
        videos.add(named[0])
        if named[0] == video:
            image_frames[image.get("id")] = named[1]
            if _number(image.get("pts")):
                pts[named[1]] = float(image["pts"])
            if size is None and isinstance(image.get("width"), int) and isinstance(image.get("height"), int):
                size = (image["width"], image["height"])
    if not image_frames:
        listed = ", ".join(sorted(videos)) or "no video frames (images named 'VIDEO#N', as detstream synth video writes)"
        raise DatasetError(path, [f"has no frames of {video}: it lists {listed}"])
    frames: dict[int, list[TruthBox]] = {index: [] for index in image_frames.values()}
    problems: list[str] = []
    without_track = 0
    annotations = [a for a in data["annotations"] if isinstance(a, dict) and a.get("image_id") in image_frames]
    for ann in annotations:
        where = f"annotation {ann.get('id')!r}"
        track_id, box, occluded = ann.get("track_id"), _box(ann), ann.get("occluded", 0.0)
        if not isinstance(track_id, int) or isinstance(track_id, bool):
            without_track += 1
            continue
        if box is None:
            problems.append(f"{where}: bbox {ann.get('bbox')!r} is not [x, y, w, h]")
        elif not isinstance(names.get(ann.get("category_id")), str):
            problems.append(f"{where}: category_id {ann.get('category_id')!r} is not among the categories")
        elif not (_number(occluded) and 0 <= occluded <= 1):
            problems.append(f"{where}: occluded {occluded!r} is not a fraction in [0, 1]")
        elif "amodal_bbox" in ann and _box(ann, "amodal_bbox") is None:
            problems.append(f"{where}: amodal_bbox {ann['amodal_bbox']!r} is not [x, y, w, h]")
        else:
            label = names[ann["category_id"]]
            frames[image_frames[ann["image_id"]]].append(
                TruthBox(track_id, label, box, float(occluded), _box(ann, "amodal_bbox"))
            )
    if without_track:
        problems.insert(0, f"{without_track} of {len(annotations)} annotations of {video} have no int track_id "
                           "(tracking ground truth names each object's identity, as detstream synth video writes)")
    if problems:
        raise DatasetError(path, problems)
    for index, objects in frames.items():
        ids = [o.track_id for o in objects]
        if len(set(ids)) != len(ids):
            problems.append(f"frame {index} of {video} has track ids {sorted(ids)}: each may appear once per frame")
    if problems:
        raise DatasetError(path, problems)
    classes = tuple(name for name in names.values() if isinstance(name, str))
    return GroundTruth(Path(path), video, frames, pts, classes, size)
