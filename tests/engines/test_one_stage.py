"""The one-stage reference (`retinanet_compact`) and its engine: the backbone is the compact
Faster R-CNN's, the engine gives torchvision's own detections on the pipeline's batch,
respects the score floor and image sizes, and load_engine picks it (PyTorch only)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engines.export import export_model
from engines.loading import load_engine
from engines.model_file import save_model
from engines.models import ONE_STAGE, SYNTH_CLASSES, architecture, untrained
from engines.one_stage_engine import OneStageEngine
from pipeline.core.errors import ModelError

REPO = Path(__file__).resolve().parents[2]
DETECTOR = REPO / "engines/embedded/faster-compact-synth.pt"


@pytest.fixture(scope="module")
def model():
    """An untrained RetinaNet whose class scores spread over (0, 1): torchvision starts
    them all at 0.01, which would leave nothing to threshold."""
    model, info = untrained("retinanet_compact")
    with torch.no_grad():
        torch.manual_seed(0)
        model.head.classification_head.cls_logits.bias.normal_(-2.0, 1.5)
    return model.eval(), info


def test_it_is_a_one_stage_architecture_whose_backbone_is_the_compact_faster_rcnns():
    assert architecture("retinanet_compact").kind == ONE_STAGE
    mine = untrained("retinanet_compact")[0].state_dict()
    theirs = torch.load(DETECTOR, map_location="cpu", weights_only=True)["state_dict"]
    backbone = [k for k in theirs if k.startswith("backbone.")]
    assert backbone and all(k in mine and mine[k].shape == theirs[k].shape for k in backbone)
    assert not any(k.startswith("head.") for k in theirs)  # the head starts fresh


def test_infer_gives_torchvisions_own_detections(model):
    model, info = model
    engine = OneStageEngine(model, info, score_floor=0.3)
    height, width = 96, 160
    image = torch.rand(3, height, width)
    mean, std = torch.tensor(info.mean).view(3, 1, 1), torch.tensor(info.std).view(3, 1, 1)
    (raw,) = engine.infer(((image - mean) / std)[None], [(height, width)])
    # torchvision's forward, its transform set to the identity resize (the image is the input size)
    model.transform.min_size, model.transform.max_size = (height,), width
    with torch.no_grad():
        (reference,) = model([image])
    foreground = reference["labels"] > 0
    assert len(raw.boxes) > 0 and len(raw.boxes) == int(foreground.sum())
    torch.testing.assert_close(raw.boxes, reference["boxes"][foreground])
    torch.testing.assert_close(raw.scores, reference["scores"][foreground])
    assert torch.equal(raw.labels, reference["labels"][foreground])


def test_boxes_stay_inside_each_image_and_scores_above_the_floor(model):
    model, info = model
    sizes = [(96, 160), (60, 160), (96, 100)]  # letterboxed images padded to one 96 x 160 batch
    images = torch.randn(len(sizes), 3, 96, 160)
    low = OneStageEngine(model, info, score_floor=0.05).infer(images, sizes)
    floor = float(torch.cat([raw.scores for raw in low]).median())  # a floor that must drop about half
    high = OneStageEngine(model, info, score_floor=floor).infer(images, sizes)
    assert len(low) == len(high) == len(sizes)
    assert 0 < sum(len(raw.boxes) for raw in high) < sum(len(raw.boxes) for raw in low)
    for raw_low, raw_high, (height, width) in zip(low, high, sizes):
        for raw, at_least in ((raw_low, 0.05), (raw_high, floor)):
            assert raw.boxes.shape == (len(raw.scores), 4) and raw.labels.dtype == torch.int64
            assert bool((raw.scores >= at_least).all())
            assert bool(((raw.labels >= 1) & (raw.labels < len(SYNTH_CLASSES))).all())
            assert bool((raw.boxes[:, 0::2] <= width).all()) and bool((raw.boxes[:, 1::2] <= height).all())
            assert bool((raw.boxes >= 0).all())


def test_load_engine_runs_it_on_pytorch_and_onnx_is_refused(model, tmp_path):
    model, info = model
    path = tmp_path / "retina.pt"
    save_model(path, model, info)
    for backend in ("auto", "torch"):
        engine = load_engine(str(path), backend=backend, score_threshold=0.4, other_thresholds=[0.3])
        assert isinstance(engine, OneStageEngine) and engine.model.score_thresh == 0.3
    for backend in ("onnxruntime", "tensorrt"):
        with pytest.raises(ModelError, match=f"PyTorch only .* {backend} cannot run it"):
            load_engine(str(path), backend=backend)
    with pytest.raises(ModelError, match="retinanet_compact model .one_stage. has no ONNX export"):
        export_model(model, info, tmp_path / "package")
    assert not (tmp_path / "package").exists()
