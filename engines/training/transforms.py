"""Training augmentation that moves image, boxes and masks together.

Region proposals (`proposals`, N x 4 xyxy, for Fast R-CNN) are boxes too: they are
flipped, scaled and shifted exactly like the ground-truth boxes, and dropped on their own
when they leave the image (they are not per-instance: dropping one keeps the objects).

Random numbers come from a `torch.Generator` (the default one unless given): the
DataLoader seeds torch's default generator in each worker from its base seed, so a
fixed `torch.manual_seed` before building the loader makes every epoch reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from engines.inputs import letterbox_size

# per-instance arrays of a target; all are filtered together when a box is dropped
PER_INSTANCE = ("boxes", "labels", "masks", "iscrowd", "area")
# arrays of xyxy boxes in image pixels, moved with the image
BOX_KEYS = ("boxes", "proposals")
MIN_SIZE = 1.0  # pixels; a box thinner than this after resizing is no longer an object

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Augment:
    """Horizontal flip, scale jitter and colour jitter.

    `scale` is the (low, high) range of the zoom factor (see `zoom`); `color` is the strength of
    brightness, contrast and saturation jitter: each factor is drawn from
    [1 - color, 1 + color].
    """

    hflip: float = 0.5
    scale: tuple[float, float] = (0.8, 1.2)
    color: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.hflip <= 1.0:
            raise ValueError(f"Augment.hflip: expected a probability in [0, 1], got {self.hflip}")
        low, high = self.scale
        if not 0.0 < low <= high:
            raise ValueError(f"Augment.scale: expected 0 < low <= high, got {self.scale}")
        if not 0.0 <= self.color < 1.0:
            raise ValueError(f"Augment.color: expected a strength in [0, 1), got {self.color}")

    def __call__(
        self, image: np.ndarray, target: dict, generator: torch.Generator | None = None
    ) -> tuple[np.ndarray, dict]:
        """Augment an RGB uint8 image and its target of numpy arrays (see `PER_INSTANCE`)."""
        # draw every number up front, in a fixed order, so the stream does not depend on
        # which branches run
        flip, scale, x, y, brightness, contrast, saturation = torch.rand(7, generator=generator).tolist()
        target = dict(target)
        if flip < self.hflip:
            image, target = hflip(image, target)
        if self.scale != (1.0, 1.0):
            low, high = self.scale
            image, target = zoom(image, target, low + (high - low) * scale, (x, y))
        if self.color > 0:
            factors = [1.0 + self.color * (2.0 * u - 1.0) for u in (brightness, contrast, saturation)]
            image = jitter_color(image, *factors)
        return image, drop_degenerate(target)


def hflip(image: np.ndarray, target: dict) -> tuple[np.ndarray, dict]:
    width = image.shape[1]
    target = dict(target)
    for key in _box_keys(target):
        boxes = target[key].copy()
        boxes[:, [0, 2]] = width - target[key][:, [2, 0]]
        target[key] = boxes
    if "masks" in target:
        target["masks"] = np.ascontiguousarray(target["masks"][:, :, ::-1])
    return np.ascontiguousarray(image[:, ::-1]), target


def resize(image: np.ndarray, target: dict, size: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """Resize image, boxes and masks to `size` = (width, height)."""
    height, width = image.shape[:2]
    if size == (width, height):
        return image, target
    sx, sy = size[0] / width, size[1] / height
    target = dict(target)
    for key in _box_keys(target):
        target[key] = target[key] * np.array([sx, sy, sx, sy], np.float32)
    target["area"] = target["area"] * np.float32(sx * sy)
    if "masks" in target:
        # nearest keeps masks binary; resize one at a time (cv2 takes at most 512 channels)
        masks = target["masks"]
        resized = np.zeros((len(masks), size[1], size[0]), np.uint8)
        for i, mask in enumerate(masks):
            resized[i] = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        target["masks"] = resized
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), target


def zoom(image: np.ndarray, target: dict, factor: float, where: tuple[float, float]) -> tuple[np.ndarray, dict]:
    """Scale jitter on a fixed canvas: scale the content by `factor`, then crop (zoom in)
    or pad with black (zoom out) back to the original size.

    A plain resize would be undone by the letterbox that fits every image to the model
    input; changing the content's scale *within* the canvas is what teaches scale.
    `where` in [0, 1]^2 picks the crop window or the placement of the shrunk image.
    """
    height, width = image.shape[:2]
    scaled, target = resize(image, target, (max(1, round(width * factor)), max(1, round(height * factor))))
    sh, sw = scaled.shape[:2]
    # offset of the scaled content inside the canvas (negative: cropped away)
    dx = round((width - sw) * where[0])
    dy = round((height - sh) * where[1])
    canvas = np.zeros_like(image)
    src_x, src_y = max(0, -dx), max(0, -dy)
    dst_x, dst_y = max(0, dx), max(0, dy)
    w, h = min(sw - src_x, width - dst_x), min(sh - src_y, height - dst_y)
    canvas[dst_y : dst_y + h, dst_x : dst_x + w] = scaled[src_y : src_y + h, src_x : src_x + w]
    target = dict(target)
    for key in _box_keys(target):
        boxes = target[key] + np.array([dx, dy, dx, dy], np.float32)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        target[key] = boxes
    if "masks" in target:
        masks = np.zeros((len(target["masks"]), height, width), np.uint8)
        masks[:, dst_y : dst_y + h, dst_x : dst_x + w] = target["masks"][:, src_y : src_y + h, src_x : src_x + w]
        target["masks"] = masks
        target["area"] = masks.sum(axis=(1, 2)).astype(np.float32)
    return canvas, target


def letterbox(image: np.ndarray, target: dict, input_size: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """Scale to fit the model input exactly as the pipeline's preprocess does."""
    height, width = letterbox_size(image.shape[:2], input_size)
    return resize(image, target, (width, height))


def jitter_color(image: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Brightness, contrast, saturation factors as torchvision's ColorJitter defines them."""
    pixels = image.astype(np.float32) * brightness
    np.clip(pixels, 0, 255, out=pixels)
    mean = float((pixels @ LUMA).mean())
    pixels = (pixels - mean) * contrast + mean
    np.clip(pixels, 0, 255, out=pixels)
    gray = (pixels @ LUMA)[..., None]
    pixels = (pixels - gray) * saturation + gray
    return np.clip(pixels, 0, 255).round().astype(np.uint8)


def _box_keys(target: dict) -> list[str]:
    return [key for key in BOX_KEYS if key in target]


def _big_enough(boxes: np.ndarray) -> np.ndarray:
    return ((boxes[:, 2] - boxes[:, 0]) >= MIN_SIZE) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_SIZE)


def drop_degenerate(target: dict) -> dict:
    """Remove instances whose box shrank below a pixel or whose mask became empty, and
    proposals that shrank below a pixel (cropped away)."""
    if "proposals" in target and not _big_enough(target["proposals"]).all():
        target = {**target, "proposals": target["proposals"][_big_enough(target["proposals"])]}
    boxes = target["boxes"]
    keep = _big_enough(boxes)
    if "masks" in target and len(boxes):
        keep &= target["masks"].reshape(len(boxes), -1).any(axis=1)
    if keep.all():
        return target
    return {key: value[keep] if key in PER_INSTANCE else value for key, value in target.items()}
