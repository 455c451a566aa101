"""Fast R-CNN: the paper's RoI sampling, the multi-task loss on hand-made cases, RoIPool vs
RoIAlign, the inference output form, and proposals moving with the image in augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import box_iou

from engines.fast_rcnn import BOX_WEIGHTS, Sampling, fast_rcnn, fast_rcnn_loss, sample_rois
from engines.loading import load_engine
from engines.models import build_model
from engines.region_engine import RegionEngine
from engines.training.transforms import hflip, resize, zoom
from pipeline.core.errors import ModelError
from pipeline.core.types import RawOutput

GT = torch.tensor([[10.0, 10.0, 50.0, 50.0], [100.0, 20.0, 140.0, 90.0]])
GT_LABELS = torch.tensor([3, 1])


def jittered_proposals(count: int, seed: int) -> torch.Tensor:
    """Proposals around the ground truth at all overlaps, and far away ones."""
    generator = torch.Generator().manual_seed(seed)
    centre = GT[torch.randint(0, len(GT), (count,), generator=generator)]
    shift = (torch.rand(count, 4, generator=generator) - 0.5) * 60
    boxes = centre + shift
    return torch.cat([boxes[:, :2].minimum(boxes[:, 2:] - 2), boxes[:, 2:]], dim=1)


def test_sampling_follows_the_paper_fractions_and_iou_ranges():
    proposals = jittered_proposals(2000, seed=1)
    sample = sample_rois(proposals, GT, GT_LABELS, Sampling(), torch.Generator().manual_seed(0))
    assert len(sample.rois) == 64
    foreground = sample.labels > 0
    assert foreground.sum() == 16  # 25 % of 64, plenty of candidates
    assert (sample.labels[:16] > 0).all() and (sample.labels[16:] == 0).all()  # foreground first
    best, which = box_iou(sample.rois, GT).max(dim=1)
    assert (best[foreground] >= 0.5).all()
    assert ((best[~foreground] >= 0.1) & (best[~foreground] < 0.5)).all()
    assert torch.equal(sample.labels[foreground], GT_LABELS[which[foreground]])
    assert torch.equal(sample.matched[foreground], GT[which[foreground]])


def test_ground_truth_joins_the_proposals_and_few_foreground_leaves_room_for_background():
    far = torch.tensor([[300.0, 300.0, 320.0, 320.0]])
    near = torch.tensor([[12.0, 12.0, 80.0, 80.0]])  # IoU with GT[0] ~0.35: background
    sample = sample_rois(torch.cat([far, near]), GT, GT_LABELS, Sampling())
    # only the two ground-truth boxes themselves are foreground; the far box is ignored
    assert sorted(sample.labels.tolist()) == [0, 1, 3]
    assert {tuple(b) for b in sample.rois[sample.labels > 0].tolist()} == {tuple(b) for b in GT.tolist()}
    assert sample.rois[sample.labels == 0].tolist() == near.tolist()


def test_an_image_without_objects_gives_background_only():
    proposals = jittered_proposals(100, seed=2)
    sample = sample_rois(proposals, GT[:0], GT_LABELS[:0], Sampling(rois_per_image=32))
    assert len(sample.rois) == 32 and (sample.labels == 0).all()


@pytest.mark.parametrize("bad", [dict(rois_per_image=0), dict(fg_fraction=1.5), dict(bg_iou_low=0.6)])
def test_bad_sampling_settings_are_refused(bad):
    with pytest.raises(ModelError):
        Sampling(**bad)


def test_a_perfect_box_prediction_has_no_box_loss_and_the_class_loss_is_cross_entropy():
    coder = BoxCoder(BOX_WEIGHTS)
    rois = torch.tensor([[10.0, 10.0, 40.0, 60.0], [0.0, 0.0, 20.0, 20.0]])
    truth = torch.tensor([[12.0, 8.0, 44.0, 58.0], [0.0, 0.0, 1.0, 1.0]])
    labels = torch.tensor([2, 0])
    targets = coder.encode_single(truth, rois)
    regression = torch.zeros(2, 3, 4)
    regression[0, 2] = targets[0]  # exact offsets for the true class of the foreground RoI
    regression[1] = 9.0  # a background RoI's offsets are never penalised
    logits = torch.tensor([[0.0, 0.0, 2.0], [1.0, 3.0, 0.0]])  # second RoI: wrong class (1, not 0)
    losses = fast_rcnn_loss(logits, regression.reshape(2, 12), labels, targets)
    assert losses["loss_box_reg"].item() == pytest.approx(0.0, abs=1e-6)
    expected = -(math.log(math.exp(2) / (2 + math.exp(2))) + math.log(math.exp(1) / (math.exp(1) + math.exp(3) + 1)))
    assert losses["loss_classifier"].item() == pytest.approx(expected / 2, rel=1e-5)
    # an offset error of 0.5 in one coordinate: smooth L1 0.5 * 0.5**2, over 2 RoIs
    regression[0, 2, 0] += 0.5
    assert fast_rcnn_loss(logits, regression.reshape(2, 12), labels, targets)["loss_box_reg"].item() == pytest.approx(
        0.125 / 2, rel=1e-5
    )


def test_roi_pool_and_roi_align_differ_only_in_the_operation():
    pooled = fast_rcnn(num_classes=3, roi_op="pool")
    aligned = fast_rcnn(num_classes=3, roi_op="align")
    features = torch.arange(40.0 * 40).reshape(1, 1, 40, 40)
    rois = [torch.tensor([[8.0, 8.0, 100.0, 60.0]])]
    by_pool, by_align = pooled.pool(features, rois), aligned.pool(features, rois)
    assert by_pool.shape == by_align.shape == (1, 1, 7, 7)
    # max pooling over whole cells lands on cell corners; bilinear averages inside them
    assert not torch.allclose(by_pool, by_align) and (by_pool >= by_align - 1e-4).all()
    assert set(pooled.state_dict()) == set(aligned.state_dict())  # same parameters: init from one another
    with pytest.raises(ModelError, match="roi_op"):
        fast_rcnn(num_classes=3, roi_op="warp")
    # the operation travels with the weights: a model file loads as it was trained
    pooled.load_state_dict(aligned.state_dict())
    assert pooled.roi_op == "align"


def test_inference_gives_candidates_like_two_stage_engines_in_input_pixels():
    model = build_model("fast_rcnn", 4, min_size=96, max_size=160).eval()
    model.score_floor = 0.0
    images = [torch.rand(3, 90, 160), torch.rand(3, 96, 120)]
    proposals = [torch.tensor([[5.0, 5.0, 40.0, 60.0], [50.0, 10.0, 150.0, 80.0]]), torch.tensor([[0.0, 0.0, 30.0, 30.0]])]
    with torch.no_grad():
        outputs = model(images, proposals=proposals)
    assert [type(o) for o in outputs] == [RawOutput, RawOutput]
    assert [len(o.boxes) for o in outputs] == [2 * 3, 1 * 3]  # one candidate per (proposal, class)
    assert set(outputs[0].labels.tolist()) == {1, 2, 3}  # background never a candidate
    assert (outputs[0].scores[:-1] >= outputs[0].scores[1:]).all()
    assert (outputs[0].boxes[:, 2] <= 160).all() and (outputs[1].boxes[:, 3] <= 96).all()
    with pytest.raises(ModelError, match="one proposal tensor per image"):
        model(images)


def test_proposals_move_with_the_image():
    target = {
        "boxes": np.array([[10, 10, 30, 40]], np.float32),
        "labels": np.array([1]),
        "iscrowd": np.array([0]),
        "area": np.array([600], np.float32),
        "proposals": np.array([[10, 10, 30, 40], [0, 0, 100, 50]], np.float32),
    }
    image = np.zeros((50, 100, 3), np.uint8)
    _, flipped = hflip(image, target)
    assert flipped["proposals"].tolist() == [[70, 10, 90, 40], [0, 0, 100, 50]]
    _, resized = resize(image, target, (200, 25))
    assert resized["proposals"].tolist() == [[20, 5, 60, 20], [0, 0, 200, 25]]
    _, zoomed = zoom(image, target, 2.0, (0.0, 0.0))  # content doubled, right/bottom cropped
    np.testing.assert_allclose(zoomed["proposals"][0], zoomed["boxes"][0])
    assert zoomed["proposals"][1].tolist() == [0, 0, 100, 50]


def test_load_engine_gives_the_region_engine_and_no_onnx():
    assert isinstance(load_engine("arch:fast_rcnn"), RegionEngine)
    with pytest.raises(ModelError, match="runs on PyTorch only"):
        load_engine("arch:fast_rcnn", backend="onnxruntime")
