"""ONNX Runtime against PyTorch on the trained default models, end to end through the
pipeline's own preprocessing and postprocessing: the same detections on 50 synthetic
frames (same count, boxes within 0.5 px, scores within 1e-3, mask IoU at least 0.99)
and the same COCO mAP (within 0.002). The frames and images come from seeds used
neither in training (1) nor validation (2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from engines.base import Engine
from engines.export import export_package
from engines.loading import load_engine
from engines.training.evaluate import evaluate
from pipeline.core.types import Detections, Frame
from engines.outputs import Selection, finish_frame
from engines.inputs import Normalizer
from synth.dataset import write_dataset
from synth.video import iter_frames

DEFAULT_MODELS = ("faster-compact-synth", "mask-compact-synth")
FRAMES = 50
BOX_TOLERANCE_PX = 0.5
SCORE_TOLERANCE = 1e-3
MIN_MASK_IOU = 0.99
MAP_TOLERANCE = 0.002


@pytest.fixture(scope="module", params=DEFAULT_MODELS)
def backends(request, tmp_path_factory) -> tuple[Engine, Engine]:
    package = export_package(f"embedded:{request.param}", tmp_path_factory.mktemp(request.param) / "package").root
    return load_engine(str(package), backend="onnxruntime"), load_engine(str(package), backend="torch")


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    images = [image for _, image, _ in iter_frames(seed=43, width=640, height=360, seconds=FRAMES / 25, objects=8)]
    assert len(images) == FRAMES
    return images


def detect(engine: Engine, images: list[np.ndarray]) -> list[Detections]:
    """What `detstream run` would publish for each image, batches of two."""
    normalize = Normalizer(engine.info)
    selection = Selection.uniform(engine.info.score_threshold, 0.5, 100, engine.info.class_names)
    results = []
    for first in range(0, len(images), 2):
        chunk = images[first : first + 2]
        batch, geometry = normalize(chunk)
        outputs = engine.infer(batch, [g.resized_size for g in geometry])
        for offset, (image, geo, raw) in enumerate(zip(chunk, geometry, outputs)):
            frame = Frame(source="parity", seq=first + offset, pts=0.0, capture_ts=0.0, image=image)
            results.append(finish_frame(frame, geo, raw, selection, engine.info.class_names))
    return results


def test_same_detections_on_fifty_frames(backends, frames):
    ours, reference = (detect(engine, frames) for engine in backends)
    for a, b in zip(ours, reference):
        assert len(a.boxes) == len(b.boxes), f"frame {a.frame.seq}: {len(a.boxes)} vs {len(b.boxes)} detections"
        if not len(a.boxes):
            continue
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        assert np.abs(a.boxes - b.boxes).max() <= BOX_TOLERANCE_PX, f"frame {a.frame.seq}"
        assert np.abs(a.scores - b.scores).max() <= SCORE_TOLERANCE, f"frame {a.frame.seq}"
        if a.masks is not None:
            iou = mask_utils.iou(a.masks, b.masks, [0] * len(b.masks)).diagonal()
            assert iou.min() >= MIN_MASK_IOU, f"frame {a.frame.seq}: mask IoU {iou.min():.4f}"
    # the comparison means something only if the models found plenty
    assert sum(len(d.boxes) for d in reference) >= 2 * FRAMES
    assert (ours[0].masks is not None) == backends[0].info.has_masks


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("held-out")
    write_dataset(root, seed=44, count=40, width=640, height=360)
    return root / "annotations.json"


def test_same_map(backends, held_out):
    ours, reference = (evaluate(engine, held_out, progress=False) for engine in backends)
    kinds = ["bbox", "segm"] if backends[0].info.has_masks else ["bbox"]
    for kind in kinds:
        assert reference[kind]["AP"] > 0.3, kind  # a trained model, not noise
        for metric in ("AP", "AP50", "AP75"):
            assert abs(ours[kind][metric] - reference[kind][metric]) <= MAP_TOLERANCE, (kind, metric)
