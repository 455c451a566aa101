"""The pixel-reading mask branch (engines.pixel_masks): it starts as the plain Mask R-CNN
it is initialised from, its pixels are the image's own, it trains, and its export runs
on ONNX Runtime with PyTorch's results."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from engines.export import export_package
from engines.loading import load_engine
from engines.model_file import save_model
from engines.models import untrained
from engines.pixel_masks import IMAGE_KEY, PIXEL_CHANNELS
from engines.inputs import Normalizer
from synth.video import iter_frames

BOXES = [torch.tensor([[10.0, 20, 90, 70], [100, 40, 160, 200]]), torch.tensor([[0.0, 0, 300, 120]])]


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [image for _, image, _ in iter_frames(seed=6, width=640, height=360, seconds=0.12)]


@pytest.fixture(scope="module")
def px_model():
    """Initialised from a plain compact Mask R-CNN, as configs/train-mask-compact.yaml does."""
    plain, _ = untrained("maskrcnn_compact")
    model, info = untrained("maskrcnn_compact_px")
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(".refine." in k for k in missing)
    return plain.eval(), model.eval(), info


def _features(model, images: torch.Tensor) -> dict[str, torch.Tensor]:
    return {**model.backbone(images), IMAGE_KEY: images}


@torch.no_grad()
def test_it_starts_with_the_plain_models_masks(px_model):
    plain, model, _ = px_model
    images = torch.randn(2, 3, 384, 672)
    features = _features(model, images)
    sizes = [(384, 672)] * 2
    heads, plain_heads = model.roi_heads, plain.roi_heads
    ours = heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(features, BOXES, sizes)))
    reference = plain_heads.mask_predictor(plain_heads.mask_head(plain_heads.mask_roi_pool(features, BOXES, sizes)))
    torch.testing.assert_close(ours, reference)


@torch.no_grad()
def test_the_pooled_pixels_are_the_images_own(px_model):
    _, model, _ = px_model
    images = torch.randn(2, 3, 384, 672)
    pooled = model.roi_heads.mask_roi_pool(_features(model, images), BOXES, [(384, 672)] * 2)
    assert pooled.shape == (3, 64 + PIXEL_CHANNELS, 14, 14)
    pixels = F.pixel_shuffle(pooled[:, -PIXEL_CHANNELS:], 2)
    torch.testing.assert_close(pixels, roi_align(images, BOXES, 28, 1.0, 2, aligned=True))


def test_it_trains_and_the_refinement_learns(px_model):
    _, model, _ = px_model
    model = model.train()
    mask = torch.zeros(1, 200, 300, dtype=torch.uint8)
    mask[0, 40:120, 50:200:3] = 1  # thin stripes: what the pixels are for
    target = {"boxes": torch.tensor([[50.0, 40, 200, 120]]), "labels": torch.tensor([3]), "masks": mask}
    losses = model([torch.rand(3, 200, 300)], [target])
    assert {"loss_mask", "loss_classifier", "loss_objectness"} <= set(losses)
    losses["loss_mask"].backward()
    assert model.roi_heads.mask_predictor.refine.logits.weight.grad.abs().sum() > 0
    model.zero_grad()
    model.eval()


def test_onnx_runtime_matches_pytorch(px_model, images, tmp_path):
    _, model, info = px_model
    with torch.no_grad():  # a refinement that is not zero, so its export is checked too
        model.roi_heads.mask_predictor.refine.logits.weight.normal_(0, 0.5)
    save_model(tmp_path / "px.pt", model, replace(info, name="px"))
    package = export_package(str(tmp_path / "px.pt"), tmp_path / "package").root
    ort_engine = load_engine(str(package), score_threshold=0.0)
    torch_engine = load_engine(str(package), backend="torch", score_threshold=0.0)
    rois = torch.randn(5, 64 + PIXEL_CHANNELS, 14, 14)
    torch.testing.assert_close(ort_engine.parts.mask_head(rois), torch_engine.parts.mask_head(rois), atol=1e-4, rtol=1e-4)
    batch, geometry = Normalizer(info)(images[:2])
    sizes = [g.resized_size for g in geometry]
    for ours, reference in zip(ort_engine.infer(batch, sizes), torch_engine.infer(batch, sizes)):
        assert len(ours.boxes) == len(reference.boxes) > 0  # untrained at floor 0: many candidates
        # an untrained model's scores tie; tied candidates may come in either order, and at
        # the candidate cap a tie decides which of them make it: compare those above the cap's score
        above = ours.scores > reference.scores.min() + 1e-4
        assert above.sum() >= len(ours.boxes) // 2
        distance = torch.cdist(ours.boxes, reference.boxes, p=1) + 1e6 * (ours.labels[:, None] != reference.labels)
        match = distance.argmin(1)
        assert distance.min(1).values[above].max() < 1e-2
        torch.testing.assert_close(ours.mask_logits[above], reference.mask_logits[match[above]], atol=1e-3, rtol=1e-3)
