"""Typed training settings (`detstream train CONFIG`), validated like run settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from pipeline.core.config import Device, Settings


class DataConfig(Settings):
    train: str = Field(description="COCO instances JSON of the training set")
    train_images: str | None = Field(None, description="image folder; default: images/ next to the JSON")
    val: str | None = Field(None, description="COCO JSON evaluated during and after training")
    val_images: str | None = None


class OptimizerConfig(Settings):
    name: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    weight_decay: float = Field(1e-4, ge=0)


class ScheduleConfig(Settings):
    steps: int = Field(3000, ge=1, description="optimizer steps in all")
    warmup_steps: int = Field(200, ge=0, description="linear warm-up from lr/1000")
    kind: Literal["cosine", "step", "constant"] = "cosine"
    milestones: list[int] = Field(default_factory=list, description="steps where `step` multiplies lr by gamma")
    gamma: float = Field(0.1, gt=0)
    final_lr_fraction: float = Field(0.01, ge=0, le=1, description="cosine ends at lr * this")


class AugmentConfig(Settings):
    hflip: float = Field(0.5, ge=0, le=1)
    scale: tuple[float, float] = (0.75, 1.25)
    color: float = Field(0.2, ge=0, lt=1)


class FastRcnnConfig(Settings):
    """Settings of `architecture: fast_rcnn` (ignored by the other architectures)."""

    roi_op: Literal["pool", "align"] = Field("pool", description="RoI pooling (the paper's) or RoIAlign")
    rois_per_image: int = Field(64, ge=1, description="RoIs sampled per image and step")
    fg_fraction: float = Field(0.25, ge=0, le=1, description="at most this fraction of them foreground")

    def builder_options(self) -> dict[str, Any]:
        return {"roi_op": self.roi_op, "rois_per_image": self.rois_per_image, "fg_fraction": self.fg_fraction}


class RcnnConfig(Settings):
    """Settings of `architecture: rcnn` (ignored by the other architectures): the warp and
    fine-tuning (engines/rcnn.py), then the SVMs and box regressors (engines/training/rcnn_fit.py)."""

    warp_size: int = Field(64, ge=16, description="side of the square each proposal is warped to (paper: 227)")
    context_padding: int = Field(5, ge=0, description="pixels of context around the box in the warp (paper: 16)")
    rois_per_image: int = Field(64, ge=1, description="fine-tuning: regions sampled per image and step")
    fg_fraction: float = Field(0.25, ge=0, le=1, description="fine-tuning: at most this fraction foreground (IoU >= 0.5)")
    svm_images: int = Field(200, ge=1, description="training images whose proposals feed the SVMs and regressors")
    svm_c: float = Field(0.001, gt=0, description="SVM hinge-loss weight C (objective 0.5 |w|^2 + C sum of hinges)")
    svm_positive_weight: float = Field(2.0, gt=0, description="hinge weight of a positive relative to a negative")
    svm_iterations: int = Field(300, ge=1, description="optimiser iterations per SVM fit")
    neg_iou: float = Field(0.3, ge=0, le=1, description="SVM negatives: proposals under this IoU with every box of the class")
    initial_negatives: int = Field(2000, ge=1, description="random negatives per class before hard-negative mining")
    hard_negative_rounds: int = Field(3, ge=0, description="rounds adding the negatives that violate the margin")
    ridge_lambda: float = Field(1000.0, ge=0, description="box regression: ridge regularisation (paper: 1000)")
    reg_iou: float = Field(0.6, gt=0, le=1, description="box regression: proposals over this IoU with a ground-truth box")

    @model_validator(mode="after")
    def _padding_fits(self) -> RcnnConfig:
        if 2 * self.context_padding >= self.warp_size:
            raise ValueError(f"context_padding {self.context_padding} leaves nothing of the box in a "
                             f"{self.warp_size}-pixel warp (expected under warp_size / 2)")
        return self

    def builder_options(self) -> dict[str, Any]:
        return self.model_dump(include={"warp_size", "context_padding", "rois_per_image", "fg_fraction"})


class SelectiveSearchConfig(Settings):
    """The region proposals of the architectures that take them (R-CNN, Fast R-CNN); the
    model file keeps mode, max_side and top_n, so `detstream run` searches the same way."""

    mode: Literal["fast", "quality"] = Field("fast", description="selective search mode")
    max_side: int = Field(500, ge=32, description="longer image side during selective search")
    top_n: int = Field(2000, ge=1, description="proposals kept per image")
    cache: str | None = Field(None, description="proposal cache folder; default $DETSTREAM_CACHE/proposals")
    workers: int = Field(2, ge=1, description="processes computing missing proposals")


class TrainConfig(Settings):
    architecture: str = "fasterrcnn_compact"
    name: str | None = Field(None, description="model name; default: the out folder's name")
    data: DataConfig
    input_size: tuple[int, int] | None = Field(None, description="(height, width); default: the architecture's")
    weights: Literal["none", "coco"] = "none"
    weights_backbone: Literal["none", "imagenet"] = "none"
    init_from: str | None = Field(
        None,
        description="model file or checkpoint whose tensors of the same name and shape start this model; "
        "torchvision:NAME (NAME = architecture) is weights: coco",
    )
    freeze: list[str] = Field(
        default_factory=list,
        description="modules kept as they are (name prefixes, e.g. backbone, rpn): no gradients, BatchNorm statistics fixed",
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    batch_size: int = Field(4, ge=1)
    workers: int = Field(1, ge=0, description="DataLoader worker processes")
    clip_grad_norm: float | None = Field(10.0, gt=0)
    amp: bool = Field(True, description="mixed precision; only used on CUDA")
    seed: int = 0
    device: Device = Field("cpu", description="cpu, cuda or cuda:N")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads")
    checkpoint_every: int = Field(200, ge=1)
    eval_every: int = Field(0, ge=0, description="evaluate on data.val every N steps; 0: only at the end")
    eval_images: int | None = Field(None, ge=1, description="evaluate on the first N val images only (faster)")
    out: str = "runs/train"
    score_threshold: float = Field(0.5, ge=0, le=1, description="default threshold stored in the model")
    fast_rcnn: FastRcnnConfig = Field(default_factory=FastRcnnConfig)
    rcnn: RcnnConfig = Field(default_factory=RcnnConfig)
    selective_search: SelectiveSearchConfig = Field(default_factory=SelectiveSearchConfig)

    def builder_options(self) -> dict[str, Any]:
        """The model builder's options from the architecture's own section (fast_rcnn:, rcnn:)."""
        sections: dict[str, FastRcnnConfig | RcnnConfig] = {"fast_rcnn": self.fast_rcnn, "rcnn": self.rcnn}
        section = sections.get(self.architecture)
        return section.builder_options() if section else {}
