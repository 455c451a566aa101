"""R-CNN's second training stage: per-class linear SVMs and box regressors on fc7 features.

Runs after the fine-tuning steps (train.py calls `fit_rcnn` before writing the model
file, also on `--resume` of a run whose steps are done). Rules:
- Features: fc7 of the fine-tuned CNN (engines/rcnn.py, eval mode) for the ground-truth
  boxes and every cached selective search proposal of `svm_images` training images
  (a seeded draw), read without augmentation, letterboxed like training. Kept in memory
  as float16 (200 images x 2000 proposals x 256 values is ~200 MB).
- Scale: features are multiplied so their mean L2 norm is 20 (the paper's released code
  does the same; the mean is taken over the ground-truth boxes and the first SCORE_CHUNK
  proposals); the factor is folded into the stored weights, so `detect` takes raw fc7.
- Interrupted (Ctrl-C, a kill) during this stage: the checkpoint of the last step is
  written already, and `--resume` redoes the stage from it.
- SVM of class c: positives are the ground-truth boxes of c only; negatives are the
  proposals whose IoU with every box of c is under `neg_iou` (0.3). Proposals in between
  are not used, as in the paper. Objective 0.5 |w|^2 + C sum_i a_i max(0, 1 - y_i (w.x_i + b))
  (a_i = `svm_positive_weight` for positives, 1 for negatives; bias not regularised),
  minimised full-batch by L-BFGS (strong Wolfe line search) from w = 0. The paper used
  liblinear's dual coordinate descent on the same objective.
- Hard-negative mining: start from `initial_negatives` random negatives, then for
  `hard_negative_rounds` rounds add every negative of the pool that violates the margin
  (w.x + b > -1) and is not in the set yet, and refit; stop early when none is left.
  (The paper mined image by image and also dropped easy negatives; with every image's
  features in memory, rounds over the whole pool are the same search, simpler.)
- A class without positives gets w = 0 and bias NO_POSITIVES_BIAS: it never fires.
- Box regression (the paper's appendix C): per class, ridge regression (`ridge_lambda`,
  paper 1000; bias not regularised) from the scaled features to the (tx, ty, tw, th) of
  the proposals whose best IoU with a ground-truth box is over `reg_iou` (0.6), towards
  that box. The paper regresses from pool5; we use fc7 (one feature, one cache).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou

from engines.rcnn import RCNN
from engines.training.config import RcnnConfig
from engines.training.data import CocoDataset
from pipeline.core.errors import TrainingError

log = logging.getLogger("detstream")

FEATURE_NORM = 20.0  # mean L2 norm of the features the SVMs see (the paper's code)
NO_POSITIVES_BIAS = -20.0  # sigmoid(-20) ~ 2e-9: a class never seen never fires
SCORE_CHUNK = 65536  # pool rows scored at once when mining


@dataclass
class RegionFeatures:
    """fc7 features of the SVM images: ground truth, proposals, regression samples."""

    positives: torch.Tensor  # G x D, the ground-truth boxes
    positive_labels: torch.Tensor  # G, class ids 1..K
    pool: torch.Tensor  # M x D float16, every proposal
    pool_iou: torch.Tensor  # M x K, best IoU with a box of each class (0 when none)
    reg_index: torch.Tensor  # R, rows of `pool` whose best IoU is over reg_iou
    reg_labels: torch.Tensor  # R, the class of that best box
    reg_targets: torch.Tensor  # R x 4, (tx, ty, tw, th) towards it


@dataclass
class SvmRound:
    added: int  # negatives added this round (the initial draw in round 0)
    negatives: int  # negatives in the training set after it
    hinge: float  # mean hinge loss over the training set after refitting


def fit_svm(
    positives: torch.Tensor, negatives: torch.Tensor, c: float, positive_weight: float, iterations: int
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """w (D), b and the mean training hinge loss of the objective in the module docstring."""
    x = torch.cat([positives, negatives]).double()
    y = torch.cat([x.new_ones(len(positives)), -x.new_ones(len(negatives))])
    weight = torch.cat([x.new_full((len(positives),), positive_weight), x.new_ones(len(negatives))]) * c
    w = x.new_zeros(x.shape[1], requires_grad=True)
    b = x.new_zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-10, tolerance_change=1e-14)

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        value = 0.5 * w @ w + (weight * torch.relu(1 - y * (x @ w + b))).sum()
        value.backward()
        return value

    optimizer.step(objective)
    with torch.no_grad():
        hinge = torch.relu(1 - y * (x @ w + b)).mean().item() if len(x) else 0.0
    return w.detach().float(), b.detach().float(), hinge


def margin_violators(w: torch.Tensor, b: torch.Tensor, pool: torch.Tensor, taken: torch.Tensor) -> torch.Tensor:
    """Indices of the negatives in `pool` not yet `taken` whose score w.x + b is over -1."""
    found = []
    for start in range(0, len(pool), SCORE_CHUNK):
        scores = pool[start : start + SCORE_CHUNK].float() @ w + b
        hits = torch.where((scores > -1) & ~taken[start : start + SCORE_CHUNK])[0]
        found.append(hits + start)
    return torch.cat(found) if found else torch.zeros(0, dtype=torch.int64)


def mine_svm(
    positives: torch.Tensor, pool: torch.Tensor, settings: RcnnConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, list[SvmRound]]:
    """One class's SVM with hard-negative mining over a pool of negatives (module docstring)."""
    taken = torch.zeros(len(pool), dtype=torch.bool)
    taken[torch.randperm(len(pool), generator=generator)[: settings.initial_negatives]] = True
    added = int(taken.sum())
    rounds = []
    while True:
        w, b, hinge = fit_svm(positives, pool[taken].float(), settings.svm_c, settings.svm_positive_weight,
                              settings.svm_iterations)
        rounds.append(SvmRound(added, int(taken.sum()), hinge))
        if len(rounds) > settings.hard_negative_rounds:
            break
        hard = margin_violators(w, b, pool, taken)
        if not len(hard):
            break
        taken[hard] = True
        added = len(hard)
    return w, b, rounds


def fit_ridge(x: torch.Tensor, targets: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """W (T x D) and b (T) minimising |x W^T + b - targets|^2 + lam |W|^2 (bias free)."""
    x, targets = x.double(), targets.double()
    x_mean, t_mean = x.mean(0), targets.mean(0)
    xc, tc = x - x_mean, targets - t_mean
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    weight = torch.linalg.solve(xc.T @ xc + lam * eye, xc.T @ tc)  # D x T
    return weight.T.float(), (t_mean - x_mean @ weight).float()


@torch.inference_mode()
def collect(model: RCNN, dataset: CocoDataset, indices: list[int], settings: RcnnConfig, console: Console) -> RegionFeatures:
    """fc7 features of the ground truth and the proposals of `dataset[indices]`."""
    device = next(model.parameters()).device
    classes = model.svm_weight.shape[0]
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in RegionFeatures.__dataclass_fields__}
    offset = 0
    columns = (TextColumn("svm features"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("features", total=len(indices))
        for done, index in enumerate(indices, start=1):
            image, target = dataset[index]
            batch, _ = model.transform([image.to(device)])
            old, new = tuple(image.shape[-2:]), batch.image_sizes[0]
            gt = resize_boxes(target["boxes"].to(device), old, new)
            labels = target["labels"].to(device)
            rois = resize_boxes(target["proposals"].to(device, torch.float32), old, new)
            parts["positives"].append(model.region_features(batch.tensors, [gt]).cpu())
            parts["positive_labels"].append(labels.cpu())
            parts["pool"].append(model.region_features(batch.tensors, [rois]).half().cpu())
            iou = box_iou(rois, gt) if len(gt) else rois.new_zeros((len(rois), 0))
            per_class = rois.new_zeros((len(rois), classes))
            for k in range(classes):
                of_class = iou[:, labels == k + 1]
                if of_class.shape[1]:
                    per_class[:, k] = of_class.max(1).values
            parts["pool_iou"].append(per_class.cpu())
            best, which = iou.max(1) if iou.shape[1] else (rois.new_zeros(len(rois)), None)
            near = torch.where(best > settings.reg_iou)[0]
            parts["reg_index"].append((near + offset).cpu())
            if which is not None:
                parts["reg_labels"].append(labels[which[near]].cpu())
                parts["reg_targets"].append(model.box_coder.encode_single(gt[which[near]], rois[near]).cpu())
            offset += len(rois)
            bar.update(task, completed=done)
            if not console.is_terminal and (done % 25 == 0 or done == len(indices)):
                console.print(f"svm features: {done}/{len(indices)} images", highlight=False)
    empty = {"positives": torch.zeros(0, model.svm_weight.shape[1]), "positive_labels": torch.zeros(0, dtype=torch.int64),
             "reg_labels": torch.zeros(0, dtype=torch.int64), "reg_targets": torch.zeros(0, 4)}
    return RegionFeatures(**{k: torch.cat(v) if v else empty[k] for k, v in parts.items()})


def fit_rcnn(model: RCNN, dataset: CocoDataset, settings: RcnnConfig, seed: int, console: Console) -> dict[str, Any]:
    """Fit the SVMs and regressors of `model` (fine-tuned) on the images of `dataset` (the
    training set, with proposals) and store them in its buffers; returns a summary for the
    model file."""
    if dataset.proposals is None:
        raise TrainingError("rcnn: the SVM stage needs the training set's proposals")
    # the training images as they are: no augmentation, letterboxed like training
    dataset = CocoDataset(dataset.path, dataset.images_dir, train=True, input_size=dataset.input_size,
                          proposals=dataset.proposals)
    generator = torch.Generator().manual_seed(seed)
    count = min(settings.svm_images, len(dataset))
    indices = sorted(torch.randperm(len(dataset), generator=generator)[:count].tolist())
    was_training = model.training
    model.eval()
    log.info("rcnn: fc7 features of %d images for the SVMs and box regressors", count)
    found = collect(model, dataset, indices, settings, console)
    norms = torch.cat([found.positives.norm(dim=1), found.pool[:SCORE_CHUNK].float().norm(dim=1)])
    scale = FEATURE_NORM / max(float(norms.mean()), 1e-6)
    positives, pool = found.positives * scale, found.pool * scale
    summary: dict[str, Any] = {"images": count, "proposals": len(pool), "feature_scale": scale, "classes": {}}
    svm_weight, svm_bias = torch.zeros_like(model.svm_weight), torch.zeros_like(model.svm_bias)
    bbox_weight, bbox_bias = torch.zeros_like(model.bbox_weight), torch.zeros_like(model.bbox_bias)
    names = dataset.class_names
    for k in range(len(svm_weight)):
        mine = positives[found.positive_labels == k + 1]
        negatives = pool[found.pool_iou[:, k] < settings.neg_iou]
        record: dict[str, Any] = {"positives": len(mine), "negative_pool": len(negatives)}
        if len(mine):
            w, b, rounds = mine_svm(mine, negatives, settings, generator)
            svm_weight[k], svm_bias[k] = w * scale, b
            for number, r in enumerate(rounds):
                kind = "hard" if number else "random"  # round 0 is the initial draw
                log.info("rcnn svm %s round %d: +%d %s negatives (%d in all), training hinge loss %.4f",
                         names[k + 1], number, r.added, kind, r.negatives, r.hinge)
            record["rounds"] = [vars(r) for r in rounds]
        else:
            svm_bias[k] = NO_POSITIVES_BIAS
            log.warning("rcnn: no %s among the SVM images: that class never fires", names[k + 1])
        near = found.reg_labels == k + 1
        if near.any():
            x = pool[found.reg_index[near]].float()
            weight, bias = fit_ridge(x, found.reg_targets[near], settings.ridge_lambda)
            bbox_weight[k], bbox_bias[k] = weight * scale, bias
        record["regression_samples"] = int(near.sum())
        summary["classes"][names[k + 1]] = record
    device = model.svm_weight.device
    for name, value in (("svm_weight", svm_weight), ("svm_bias", svm_bias), ("bbox_weight", bbox_weight),
                        ("bbox_bias", bbox_bias)):
        getattr(model, name).copy_(value.to(device))
    model.fitted.fill_(True)
    model.train(was_training)
    return summary
