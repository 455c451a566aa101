"""COCO instances data for training torchvision R-CNNs.

`CocoDataset[i]` returns what a torchvision detection model in train mode takes:
an image as a float32 tensor 3 x H x W in [0, 1] (RGB, not normalized: the model's own
transform normalizes during training) and a target dict of tensors:

    boxes     N x 4 float32, xyxy in image pixels
    labels    N int64, contiguous 1..K in order of COCO category id (0 is background)
    masks     N x H x W uint8 0/1, only when `with_masks=True`
    image_id  int, the COCO image id
    iscrowd   N int64
    area      N float32 (COCO area, scaled with the image when augmented)
    proposals P x 4 float32 region proposals, xyxy in image pixels, only with `proposals`
              (Fast R-CNN; moved with the image like the boxes, see transforms)

With `train=True` crowd annotations are left out: torchvision cannot learn from them,
and evaluation reads the JSON directly, so nothing is lost there. `read_image(i)` gives
the plain RGB uint8 image that the pipeline's own preprocess takes (used by evaluation).

An image may be a frame of a video: `file_name` `clip.mp4#N` is frame N (0-based, decode
order) of `clip.mp4`, as `detstream synth video` writes its ground truth. Frames read in
order decode the video once (`VideoFrames`); only going back re-opens it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from engines.training.annotations import (
    Annotations,
    DatasetError,
    ImageRecord,
    decode_mask,
    fingerprint,
    image_file,
    load_annotations,
)
from pipeline.core.coco_files import video_frame
from engines.training.transforms import Augment, letterbox

__all__ = ["Augment", "CocoDataset", "DatasetError", "collate", "fingerprint"]

# Ignore EXIF orientation: COCO annotations refer to the stored pixels, as PIL and
# pycocotools read them; cv2 would otherwise rotate some photos under their boxes.
READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


class VideoFrames:
    """Frames of videos by index, decoded sequentially: asking for frame N after frame M < N
    of the same video decodes only the frames in between; an earlier frame or another
    video re-opens. One video is open at a time. Decoded as `detstream run` and `batch`
    read a file (PyAV, RGB), so a frame here is the frame with that `seq` there."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._path: Path | None = None
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] = iter(())
        self._next = 0  # index of the next frame out of the decoder
        self._last: np.ndarray | None = None  # frame self._next - 1

    def read(self, path: Path, index: int) -> np.ndarray | None:
        """Frame `index` of `path` as H x W x 3 uint8 RGB, None past the end or if undecodable."""
        if path == self._path and index == self._next - 1 and self._last is not None:
            return self._last.copy()  # asked again: the caller may have changed the first one
        if path != self._path or index < self._next:
            self.close()
            try:
                self._container = av.open(str(path))
                stream = self._container.streams.video[0]
                stream.thread_type = "AUTO"
                self._frames = (f for f in self._container.decode(stream) if not f.is_corrupt)
            except (av.FFmpegError, IndexError, OSError):
                return None
            self._path = path
        try:
            while self._next <= index:
                self._last = next(self._frames).to_ndarray(format="rgb24")
                self._next += 1
        except (StopIteration, av.FFmpegError):
            self.close()
            return None
        return self._last

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._reset()

    def __getstate__(self) -> dict:
        return {}  # an open decoder does not cross processes (DataLoader workers): re-open there

    def __setstate__(self, state: dict) -> None:
        self._reset()


class CocoDataset(Dataset):
    """A checked COCO instances file plus its image folder.

    `images` defaults to `images/` next to the JSON, else the JSON's folder. The file is
    checked at construction (see `annotations.load_annotations`); images are decoded
    only when an item is read. `augment` is applied to every item read when given; then,
    with `input_size`, the item is scaled to fit the model input exactly as the
    pipeline's preprocess does, so the model's own transform has nothing left to resize.
    """

    def __init__(
        self,
        annotations: Path,
        images: Path | None = None,
        train: bool = False,
        augment: Augment | None = None,
        with_masks: bool = False,
        input_size: tuple[int, int] | None = None,
        proposals: Callable[[int], np.ndarray] | None = None,
    ) -> None:
        self.annotations: Annotations = load_annotations(Path(annotations), images)
        self.train = train
        self.augment = augment
        self.with_masks = with_masks
        self.input_size = input_size
        self.proposals = proposals  # image id -> P x 4 boxes (e.g. ProposalCache.load)
        if with_masks:
            self._require_segmentation()
        self.videos = VideoFrames()
        self.label_of = {cid: label for label, (cid, _) in enumerate(self.annotations.categories, start=1)}

    @property
    def path(self) -> Path:
        return self.annotations.path

    @property
    def images_dir(self) -> Path:
        return self.annotations.images_dir

    @property
    def records(self) -> list[ImageRecord]:
        return self.annotations.images

    @property
    def class_names(self) -> tuple[str, ...]:
        """Label id -> name, background first: the `ModelInfo.class_names` to train with."""
        return ("__background__", *(name for _, name in self.annotations.categories))

    @property
    def category_ids(self) -> tuple[int, ...]:
        """Label id -> COCO category id (index 0, the background, maps to 0)."""
        return (0, *(cid for cid, _ in self.annotations.categories))

    def fingerprint(self) -> str:
        return fingerprint(self.path, self.images_dir)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image = self.read_image(index)
        target = self.target(index)
        if self.augment is not None:
            image, target = self.augment(image, target)
        if self.input_size is not None:
            image, target = letterbox(image, target, self.input_size)
        tensor = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        return tensor, to_tensors(target)

    def read_image(self, index: int) -> np.ndarray:
        """The image as stored: H x W x 3 uint8 RGB, checked against the JSON's size."""
        record = self.records[index]
        path = self.images_dir / record.file_name
        source = image_file(self.images_dir, record.file_name)
        frame = video_frame(record.file_name)
        if source is not None and source != path and frame is not None:
            rgb = self.videos.read(source, frame[1])
            if rgb is None:
                raise DatasetError(self.path, [f"image id {record.id}: {source} has no frame {frame[1]}"])
            self._check_size(record, path, rgb)
            return rgb
        image = cv2.imread(str(path), READ_FLAGS)
        if image is None:
            raise DatasetError(self.path, [f"image id {record.id}: cannot decode {path}"])
        self._check_size(record, path, image)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _check_size(self, record: ImageRecord, path: Path, image: np.ndarray) -> None:
        if image.shape[:2] != (record.height, record.width):
            raise DatasetError(
                self.path,
                [
                    f"image id {record.id}: {path} is {image.shape[1]}x{image.shape[0]}, "
                    f"the JSON says {record.width}x{record.height}"
                ],
            )

    def target(self, index: int) -> dict:
        """The target of image `index` as numpy arrays (crowd left out when training)."""
        record = self.records[index]
        instances = self.annotations.instances[record.id]
        if self.train:
            instances = [i for i in instances if not i.iscrowd]
        n = len(instances)
        target = {
            "boxes": np.array([i.box for i in instances], np.float32).reshape(n, 4),
            "labels": np.array([self.label_of[i.category_id] for i in instances], np.int64),
            "image_id": record.id,
            "iscrowd": np.array([i.iscrowd for i in instances], np.int64),
            "area": np.array([i.area for i in instances], np.float32),
        }
        if self.with_masks:
            masks = np.zeros((n, record.height, record.width), np.uint8)
            for k, instance in enumerate(instances):
                masks[k] = decode_mask(instance.segmentation, record)
            target["masks"] = masks
        if self.proposals is not None:
            target["proposals"] = self.proposals(record.id)
        return target

    def _require_segmentation(self) -> None:
        missing = [
            f"annotation id {i.id} (image id {i.image_id}): no segmentation, but masks were requested"
            for group in self.annotations.instances.values()
            for i in group
            if i.segmentation is None
        ]
        if missing:
            raise DatasetError(self.path, missing)


def to_tensors(target: dict) -> dict:
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in target.items()}


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Images differ in size, so a batch stays a list (torchvision models take lists)."""
    images, targets = zip(*batch) if batch else ((), ())
    return list(images), list(targets)
