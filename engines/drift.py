"""How far a converted package (fp16, int8) drifts from its fp32 original, measured on
this CPU with ONNX Runtime on real images.

Two levels: the dense part's outputs (features, RPN logits and deltas) on the same
normalized batch, as the largest error relative to each output's range; and the
detections `detstream run` would publish, paired with the parity harness at a loose
tolerance (same class, boxes within 16 px, scores within 0.2) to report how far the pairs
moved and how many detections lost their partner. `within_tolerance` says whether the
candidate passes the harness at the tolerance of its precision (engines.parity.TOLERANCES).

    python -m engines.drift REFERENCE_PACKAGE CANDIDATE_PACKAGE --images COCO.json [--count N] [--out drift.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from engines.coco_images import dataset_images
from engines.inputs import Normalizer
from engines.onnxruntime_backend import OnnxRuntimeEngine
from engines.package import Package, read_package
from engines.parity import TOLERANCES, Tolerance, compare, detect, mask_iou, match
from pipeline.core.arg_types import positive_int
from pipeline.core.errors import DetstreamError

LOOSE = Tolerance(box_px=16.0, score=0.2, mask_iou=0.0)  # pairs detections; drift is then measured on them


def measure_drift(reference: Package, candidate: Package, images: list[np.ndarray],
                  tolerance: Tolerance | None = None) -> dict[str, Any]:
    """Drift of `candidate` against `reference` on `images` (RGB uint8), both on ONNX
    Runtime; judged at `tolerance` (default: the one of the candidate's precision)."""
    tolerance = tolerance or TOLERANCES[candidate.meta.get("precision", "fp32")]
    threshold = reference.info.score_threshold
    ours, theirs = OnnxRuntimeEngine(candidate, threshold), OnnxRuntimeEngine(reference, threshold)
    batch, _ = Normalizer(reference.info)(images[:2])
    a, b = ours.parts.dense(batch), theirs.parts.dense(batch)
    names = [*(f"feature_{n}" for n in a[0]), *(f"objectness_{i}" for i in range(len(a[1]))),
             *(f"deltas_{i}" for i in range(len(a[2])))]
    dense = {}
    for name, x, y in zip(names, [*a[0].values(), *a[1], *a[2]], [*b[0].values(), *b[1], *b[2]], strict=True):
        scale = float(y.abs().max()) or 1.0
        dense[name] = round(float((x - y).abs().max()) / scale, 6)
    mine, reference_detections = detect(ours, images), detect(theirs, images)
    boxes, scores, ious, alone_mine, alone_theirs = [], [], [], 0, 0
    for d, r in zip(mine, reference_detections, strict=True):
        pairs, alone = match(d, r, LOOSE)
        alone_mine += len(alone)
        alone_theirs += len(r.boxes) - len(pairs)
        for i, j in pairs:
            boxes.append(float(np.abs(d.boxes[i] - r.boxes[j]).max()))
            scores.append(abs(float(d.scores[i] - r.scores[j])))
            if d.masks is not None and r.masks is not None:
                ious.append(mask_iou(d.masks[i], r.masks[j]))
    problems = compare(mine, reference_detections, threshold, tolerance)
    return {
        "reference": str(reference.root), "candidate": str(candidate.root),
        "precision": candidate.meta.get("precision", "fp32"), "images": len(images),
        "dense_max_relative_error": dense,
        "detections": {
            "reference": sum(len(r.boxes) for r in reference_detections), "candidate": sum(len(d.boxes) for d in mine),
            "paired": len(boxes), "unpaired_candidate": alone_mine, "unpaired_reference": alone_theirs,
            "box_px_max": round(max(boxes, default=0.0), 3), "box_px_mean": round(float(np.mean(boxes)) if boxes else 0.0, 3),
            "score_max": round(max(scores, default=0.0), 4), "mask_iou_min": round(min(ious), 4) if ious else None,
        },
        "tolerance": asdict(tolerance),
        "within_tolerance": not problems,
        "problems": problems[:20],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path, help="the fp32 engine package")
    parser.add_argument("candidate", type=Path, help="its fp16 or int8 package")
    parser.add_argument("--images", type=Path, required=True, metavar="COCO.json", help="images to compare on")
    parser.add_argument("--count", type=positive_int, default=20, help="how many of them (default 20)")
    parser.add_argument("--out", type=Path, help="write the JSON report here too")
    args = parser.parse_args(argv)
    try:
        report = measure_drift(read_package(args.reference), read_package(args.candidate),
                               dataset_images(args.images, args.count))
    except DetstreamError as exc:  # one line, as the detstream commands say it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0 if report["within_tolerance"] else 1


if __name__ == "__main__":
    sys.exit(main())
