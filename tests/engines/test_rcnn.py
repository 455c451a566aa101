"""R-CNN: the context-padded warp on hand-worked cases, the hinge-loss SVM with hard-negative
mining, ridge box regression, the inference output form, and bad settings refused clearly."""

from __future__ import annotations

import pytest
import torch

from engines.models import build_model
from engines.rcnn import context_box, warp
from engines.training.config import RcnnConfig, TrainConfig
from engines.training.rcnn_fit import fit_ridge, fit_svm, margin_violators, mine_svm
from pipeline.core.config import parse_settings
from pipeline.core.errors import ConfigError, ModelError
from pipeline.core.types import RawOutput


def test_context_padding_grows_the_box_so_the_warp_has_that_many_context_pixels():
    # 64-pixel warp, 8 pixels of context: the box fills 48 of 64 pixels, so it grows by 64/48
    grown = context_box(torch.tensor([[10.0, 20.0, 50.0, 40.0]]), warp_size=64, padding=8)
    torch.testing.assert_close(grown, torch.tensor([[30 - 80 / 3, 30 - 40 / 3, 30 + 80 / 3, 30 + 40 / 3]]))
    assert torch.equal(context_box(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), 64, 0), torch.tensor([[1.0, 2.0, 3.0, 4.0]]))


def test_the_warp_resamples_the_grown_box_to_a_square_exactly():
    # a horizontal ramp (value = pixel column) and a vertical one: bilinear sampling of a
    # linear function is exact, so each output pixel holds the coordinate it was sampled at
    height, width = 60, 100
    image = torch.stack([
        torch.arange(width, dtype=torch.float32).expand(height, width),
        torch.arange(height, dtype=torch.float32)[:, None].expand(height, width),
        torch.zeros(height, width),
    ])[None]
    box = torch.tensor([[20.0, 10.0, 80.0, 40.0]])  # 60 x 30, warped to 16 x 16 with 2 px of context
    crops = warp(image, [box], warp_size=16, padding=2)
    assert crops.shape == (1, 3, 16, 16)
    x0, y0, x1, y1 = context_box(box, 16, 2)[0].tolist()  # 60 * 16/12 = 80 wide, 40 high: (10, 5, 90, 45)
    assert (x0, y0, x1, y1) == pytest.approx((10.0, 5.0, 90.0, 45.0))
    j = torch.arange(16, dtype=torch.float32)
    # pixel i covers [i, i + 1) and holds value i: sample point of output j is x0 + (j + 0.5) * 80 / 16 - 0.5
    torch.testing.assert_close(crops[0, 0, 3], x0 + (j + 0.5) * (x1 - x0) / 16 - 0.5)
    torch.testing.assert_close(crops[0, 1, :, 5], y0 + (j + 0.5) * (y1 - y0) / 16 - 0.5)
    # the original box sits 2 output pixels in from each side: its left edge (x = 20) falls at j = 2
    assert crops[0, 0, 0, 2].item() == pytest.approx(20 + 2.5 - 0.5)


def separable(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positives around +3 along a direction, negatives around -3, noise elsewhere."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.zeros(16)
    direction[0] = 1.0
    noise = torch.randn(2 * count, 16, generator=generator) * 0.5
    noise[:, 0] = noise[:, 0].clamp(-1, 1)
    return noise[:count] + 3 * direction, noise[count:] - 3 * direction


def test_the_svm_separates_separable_features_with_a_margin():
    positives, negatives = separable(50, seed=1)
    w, b, hinge = fit_svm(positives, negatives, c=1.0, positive_weight=2.0, iterations=200)
    assert (positives @ w + b >= 0.99).all() and (negatives @ w + b <= -0.99).all()
    assert hinge < 0.01
    assert w[0] > 5 * w[1:].abs().max()  # it found the separating direction


def test_hard_negative_mining_adds_only_margin_violators_and_ends_separating_all():
    positives, far = separable(200, seed=2)  # positives at x0 in [2, 4], far negatives in [-4, -2]
    hard = torch.randn(100, 16, generator=torch.Generator().manual_seed(5)) * 0.5
    hard[:, 0] = torch.linspace(-0.5, 0.5, 100)  # near the boundary, still separable
    pool = torch.cat([far, hard])
    # from a few random negatives the first SVM misses hard ones; each added one violated the margin
    w, b = fit_svm(positives, pool[:5], 1.0, 1.0, 200)[:2]
    taken = torch.zeros(len(pool), dtype=torch.bool)
    taken[:5] = True
    found = margin_violators(w, b, pool, taken)
    assert len(found) and not taken[found].any() and (found >= len(far)).any()
    assert (pool[found] @ w + b > -1).all()
    others = torch.ones(len(pool), dtype=torch.bool)
    others[found] = False
    assert (pool[others & ~taken] @ w + b <= -1).all()
    settings = RcnnConfig(svm_c=1.0, svm_positive_weight=1.0, initial_negatives=5, hard_negative_rounds=5,
                          svm_iterations=200)
    w, b, rounds = mine_svm(positives, pool.half(), settings, torch.Generator().manual_seed(0))
    assert rounds[0].added == 5 and len(rounds) >= 2
    assert all(r.negatives == p.negatives + r.added for p, r in zip(rounds, rounds[1:]))
    assert (pool @ w + b < 0).all() and (positives @ w + b > 0).all()


def test_ridge_regression_recovers_a_known_linear_map():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(500, 12, generator=generator) * 4
    true_w, true_b = torch.randn(4, 12, generator=generator), torch.tensor([0.5, -1.0, 2.0, 0.0])
    weight, bias = fit_ridge(x, x @ true_w.T + true_b, lam=1e-6)
    torch.testing.assert_close(weight, true_w, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bias, true_b, atol=1e-4, rtol=1e-4)
    shrunk, _ = fit_ridge(x, x @ true_w.T + true_b, lam=1e5)  # lambda pulls the weights towards 0
    assert shrunk.norm() < 0.5 * true_w.norm()


def test_detect_gives_candidates_per_proposal_and_class_and_eval_forward_rescales():
    model = build_model("rcnn", 4, min_size=96, max_size=160, warp_size=32, context_padding=2).eval()
    model.score_floor = 0.0
    images = [torch.rand(3, 90, 160), torch.rand(3, 96, 120)]
    proposals = [torch.tensor([[5.0, 5.0, 40.0, 60.0], [50.0, 10.0, 150.0, 80.0]]), torch.tensor([[0.0, 0.0, 30.0, 30.0]])]
    with torch.no_grad():
        unfitted = model(images, proposals=proposals)  # softmax classifier, proposals' own boxes
        assert [len(o.boxes) for o in unfitted] == [2 * 3, 1 * 3]
        assert {tuple(b) for b in unfitted[1].boxes.tolist()} == {(0.0, 0.0, 30.0, 30.0)}
        model.svm_weight.normal_()
        model.bbox_bias[:, 0] = 0.1  # every class moves its boxes right by a tenth of their width
        model.fitted.fill_(True)
        outputs = model(images, proposals=proposals)
    assert [type(o) for o in outputs] == [RawOutput, RawOutput]
    assert set(outputs[0].labels.tolist()) == {1, 2, 3}
    assert ((outputs[0].scores > 0) & (outputs[0].scores < 1)).all()
    torch.testing.assert_close(outputs[1].boxes, torch.tensor([[3.0, 0.0, 33.0, 30.0]] * 3))
    with torch.no_grad():  # a frame without proposals has no candidates
        empty = model.detect(torch.zeros(1, 3, 96, 160), [(96, 160)], [torch.zeros(0, 4)])
    assert empty[0].boxes.shape == (0, 4) and empty[0].scores.shape == (0,)
    with pytest.raises(ModelError, match="one proposal tensor per image"):
        model(images)


def test_the_warp_travels_with_the_weights():
    small = build_model("rcnn", 3, warp_size=32, context_padding=2)
    default = build_model("rcnn", 3)
    default.load_state_dict(small.state_dict())
    assert (default.warp_size, default.context_padding) == (32, 2)


@pytest.mark.parametrize("bad", [dict(warp_size=64, context_padding=32), dict(warp_size=8, context_padding=0)])
def test_bad_warp_settings_are_refused(bad):
    with pytest.raises(ModelError, match="rcnn"):
        build_model("rcnn", 3, **bad)


@pytest.mark.parametrize("bad, key", [({"context_padding": 40}, "rcnn"), ({"neg_iou": 1.5}, "rcnn.neg_iou"),
                                      ({"svm_c": 0}, "rcnn.svm_c"), ({"svm_lambda": 1}, "rcnn.svm_lambda")])
def test_bad_training_settings_name_the_key(bad, key):
    with pytest.raises(ConfigError) as caught:
        parse_settings(TrainConfig, {"architecture": "rcnn", "data": {"train": "x.json"}, "rcnn": bad}, "train.yaml")
    assert caught.value.field == key and key in str(caught.value)
