"""Pasting sprites into the frame: colour, the label map, motion blur, shadows."""

from __future__ import annotations

import math

import cv2
import numpy as np

from synth.shapes import Sprite

Rect = tuple[slice, slice, slice, slice]


def clip_rect(x0: int, y0: int, patch: np.ndarray, width: int, height: int) -> Rect | None:
    """(frame rows, frame cols, patch rows, patch cols) of the on-screen part of a
    patch whose top-left corner is at frame pixel (x0, y0)."""
    ph, pw = patch.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + pw, width), min(y0 + ph, height)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    return (slice(cy0, cy1), slice(cx0, cx1), slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))


def paste(image: np.ndarray, labels: np.ndarray, sprite: Sprite, label: int,
          blur: tuple[float, float] = (0.0, 0.0)) -> None:
    """Draw `sprite` over the frame and write `label` where its (sharp) mask is.

    `blur` is the motion during the exposure in pixels (dx, dy). The label map
    always gets the sharp mask: the ground truth is where the object *is*, the
    smear only changes what the image looks like.
    """
    h, w = labels.shape
    rect = clip_rect(sprite.x0, sprite.y0, sprite.mask, w, h)
    if rect is None:
        return
    rows, cols, srows, scols = rect
    inside = sprite.mask[srows, scols] > 0
    labels[rows, cols][inside] = label
    if math.hypot(*blur) < 1.5:
        np.copyto(image[rows, cols], sprite.rgb[srows, scols], where=inside[:, :, None])
        return
    _paste_blurred(image, sprite, blur)


def _line_kernel(dx: float, dy: float) -> np.ndarray:
    """Normalized kernel that averages along a segment of length |(dx, dy)|."""
    kw, kh = 2 * int(math.ceil(abs(dx) / 2)) + 1, 2 * int(math.ceil(abs(dy) / 2)) + 1
    kernel = np.zeros((kh, kw), np.float32)
    cx, cy = kw // 2, kh // 2
    cv2.line(kernel, (round((cx - dx / 2) * 16), round((cy - dy / 2) * 16)),
             (round((cx + dx / 2) * 16), round((cy + dy / 2) * 16)), 1.0, 1, cv2.LINE_AA, 4)
    return kernel / kernel.sum()


def _paste_blurred(image: np.ndarray, sprite: Sprite, blur: tuple[float, float]) -> None:
    kernel = _line_kernel(*blur)
    py, px = kernel.shape[0] // 2, kernel.shape[1] // 2
    mask = cv2.copyMakeBorder(sprite.mask, py, py, px, px, cv2.BORDER_CONSTANT, value=0)
    color = cv2.copyMakeBorder(sprite.rgb, py, py, px, px, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    # Blur colour premultiplied by coverage (the mask is 0/255) so the smear
    # fades into whatever is behind: out = behind * (1 - alpha) + colour.
    color = cv2.bitwise_and(color, color, mask=mask)
    alpha = cv2.filter2D(mask, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    color = cv2.filter2D(color, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    rect = clip_rect(sprite.x0 - px, sprite.y0 - py, alpha, image.shape[1], image.shape[0])
    if rect is None:
        return
    rows, cols, srows, scols = rect
    keep = cv2.bitwise_not(alpha[srows, scols])
    roi = image[rows, cols]
    behind = cv2.multiply(roi, cv2.merge([keep, keep, keep]), scale=1 / 255)
    roi[...] = cv2.add(behind, color[srows, scols])


def shadow_template() -> np.ndarray:
    """A small soft ellipse; `shadow` stretches it to size (blurring each shadow
    at full size would cost more than drawing the object)."""
    template = np.zeros((48, 96), np.uint8)
    cv2.ellipse(template, (48, 24), (38, 12), 0, 0, 360, 255, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(template, (0, 0), 5)


def shadow(image: np.ndarray, template: np.ndarray, center: tuple[float, float],
           axes: tuple[float, float], strength: float) -> None:
    """Darken a soft ellipse on the ground (not part of any object's mask)."""
    h, w = image.shape[:2]
    ax, ay = max(axes[0], 1.0), max(axes[1], 1.0)
    sw, sh = int(2.5 * ax) + 1, int(4 * ay) + 1
    x0, y0 = int(round(center[0] - sw / 2)), int(round(center[1] - sh / 2))
    soft = cv2.resize(template, (sw, sh), interpolation=cv2.INTER_LINEAR)
    rect = clip_rect(x0, y0, soft, w, h)
    if rect is None:
        return
    rows, cols, srows, scols = rect
    gain = (255 - soft[srows, scols] * np.float32(strength)).astype(np.uint8)
    roi = image[rows, cols]
    roi[...] = cv2.multiply(roi, cv2.merge([gain, gain, gain]), scale=1 / 255)
