"""Do two engines publish the same detections? The parity harness shared by the backend
tests and `make gpu-check`.

Detections are compared as `detstream run` publishes them (the model's own threshold,
NMS and top-k, boxes in source pixels), matched in both directions: every detection of
one side needs a partner on the other (same class, box within `box_px`, score within
`score`, mask IoU at least `mask_iou`). A detection whose score is within `score` of the
threshold may lack one: the other side may have scored it just below the cut. Matching
one way only would let an engine that finds extra objects pass. Reduced precision also
flips a few discrete choices (a proposal at the top-k cut, an NMS pair near its IoU), so
its tolerance lets a small fraction (`unpaired`) of the reference's detections go
without a partner, counted over both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from engines.base import Engine
from engines.inputs import Normalizer
from engines.outputs import Selection, finish_frame
from pipeline.core.types import Detections, Frame

NMS_IOU = 0.5
TOP_K = 100


@dataclass(frozen=True)
class Tolerance:
    box_px: float = 0.5
    score: float = 1e-3
    mask_iou: float = 0.99
    unpaired: float = 0.0  # fraction of the reference's detections that may lack a partner


FP32 = Tolerance()
# fp16 weights and activations. Measured on the embedded mask model (ONNX Runtime, 4
# held-out images): paired boxes within 0.02 px, scores within 7e-4, mask IoU >= 0.998,
# and 1 of 19 detections gone (a discrete choice flipped), hence `unpaired`.
FP16 = Tolerance(box_px=2.0, score=2e-2, mask_iou=0.9, unpaired=0.1)
# int8 (Q/DQ): against fp32 or against another runtime's int8 kernels and rounding
INT8 = Tolerance(box_px=4.0, score=0.05, mask_iou=0.8, unpaired=0.15)
TOLERANCES = {"fp32": FP32, "fp16": FP16, "int8": INT8}  # by package precision


def detect(engine: Engine, images: list[np.ndarray], batch: int = 2) -> list[Detections]:
    """What `detstream run` would publish for each image, `batch` images per engine call."""
    normalize = Normalizer(engine.info)
    selection = Selection.uniform(engine.info.score_threshold, NMS_IOU, TOP_K, engine.info.class_names)
    results = []
    for first in range(0, len(images), batch):
        chunk = images[first : first + batch]
        tensor, geometry = normalize(chunk)
        outputs = engine.infer(tensor, [g.resized_size for g in geometry])
        for offset, (image, geo, raw) in enumerate(zip(chunk, geometry, outputs, strict=True)):
            frame = Frame(source="parity", seq=first + offset, pts=0.0, capture_ts=0.0, image=image)
            results.append(finish_frame(frame, geo, raw, selection, engine.info.class_names))
    return results


def compare(ours: list[Detections], reference: list[Detections], threshold: float,
            tolerance: Tolerance = FP32) -> list[str]:
    """Every mismatch between two runs over the same frames, one line each ([] when they agree)."""
    if len(ours) != len(reference):
        return [f"{len(ours)} frames vs {len(reference)}"]
    problems = []
    for a, b in zip(ours, reference):
        problems += [f"frame {a.frame.seq}: ours {p}" for p in _unmatched(a, b, threshold, tolerance)]
        problems += [f"frame {a.frame.seq}: reference {p}" for p in _unmatched(b, a, threshold, tolerance)]
    allowed = int(tolerance.unpaired * sum(len(b.boxes) for b in reference))
    return problems if len(problems) > allowed else []


def match(a: Detections, b: Detections, tolerance: Tolerance) -> tuple[list[tuple[int, int]], list[int]]:
    """Pair each detection of `a` (best score first) with a free one of `b` within
    `tolerance`: (pairs (i, j), indices of `a` left without a partner)."""
    free = list(range(len(b.boxes)))
    pairs, alone = [], []
    for i in (int(k) for k in np.argsort(-a.scores, kind="stable")):
        close = [j for j in free if b.class_ids[j] == a.class_ids[i]
                 and abs(float(b.scores[j] - a.scores[i])) <= tolerance.score
                 and float(np.abs(b.boxes[j] - a.boxes[i]).max()) <= tolerance.box_px]
        if a.masks is not None and b.masks is not None:
            close = [j for j in close if mask_iou(a.masks[i], b.masks[j]) >= tolerance.mask_iou]
        if close:
            free.remove(close[0])
            pairs.append((i, close[0]))
        else:
            alone.append(i)
    return pairs, alone


def _unmatched(a: Detections, b: Detections, threshold: float, tolerance: Tolerance) -> list[str]:
    """The detections of `a` without a partner in `b`, except those at the threshold."""
    _, alone = match(a, b, tolerance)
    return [f"{a.labels[i]} {np.round(a.boxes[i], 1).tolist()} score {float(a.scores[i]):.4f} has no partner"
            for i in alone if float(a.scores[i]) - threshold > tolerance.score]


def mask_iou(a: dict, b: dict) -> float:
    return float(mask_utils.iou([a], [b], [0])[0][0])
