"""ONNX Runtime against PyTorch on the trained default models, end to end through the
pipeline's own preprocessing and postprocessing: the same detections on 30 synthetic
frames (same count, and every detection of either side matched on the other: boxes
within 0.5 px, scores within 1e-3, mask IoU at least 0.99; `engines.parity`, which the
TensorRT checks share) and the same COCO mAP (within 0.002). The frames and images come from seeds used
neither in training (1) nor validation (2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.base import Engine
from engines.export import export_package
from engines.loading import load_engine
from engines.parity import Tolerance, compare, detect
from engines.training.evaluate import evaluate
from synth.dataset import write_dataset
from synth.video import iter_frames

DEFAULT_MODELS = ("faster-compact-synth", "mask-compact-synth")
FRAMES = 30
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


def test_same_detections_on_thirty_frames(backends, frames):
    ours, reference = (detect(engine, frames) for engine in backends)
    for a, b in zip(ours, reference):
        assert len(a.boxes) == len(b.boxes), f"frame {a.frame.seq}: {len(a.boxes)} vs {len(b.boxes)} detections"
    tolerance = Tolerance(BOX_TOLERANCE_PX, SCORE_TOLERANCE, MIN_MASK_IOU)
    assert compare(ours, reference, backends[1].info.score_threshold, tolerance) == []
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
