"""Images of a COCO file as the engines take them (RGB uint8), for the tools that need real
frames but no annotations: int8 calibration and precision drift. Training and
evaluation read datasets through engines/training (annotations checked, video frames
decoded); this reads image files only, evenly spread over the file's list."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.coco_files import default_images_dir, read_json, video_frame
from pipeline.core.errors import DatasetError

# EXIF orientation ignored, as evaluation reads images (COCO boxes refer to stored pixels)
READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def dataset_images(annotations: Path, count: int) -> list[np.ndarray]:
    """`count` images of the COCO file `annotations` (all if fewer), evenly spread over its list."""
    annotations = Path(annotations)
    records = read_json(annotations)["images"]
    if not records:
        raise DatasetError(annotations, ["lists no images"])
    folder = default_images_dir(annotations)
    picks = sorted({int(i) for i in np.linspace(0, len(records) - 1, min(count, len(records)))})
    images = []
    for index in picks:
        name = str(records[index].get("file_name", ""))
        image = cv2.imread(str(folder / name), READ_FLAGS)
        if image is None:
            why = "a video frame: use a dataset of image files" if video_frame(name) else "missing or not an image"
            raise DatasetError(annotations, [f"image {folder / name}: {why}"])
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return images
