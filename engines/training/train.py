"""The training loop (after torchvision's detection reference scripts, kept plain).

One step: a batch through the model in train mode (it returns its loss components),
backward, optional gradient clipping, optimizer and LR-schedule step. Checkpoints every
`checkpoint_every` steps make `--resume` continue from the same step with the same
optimizer, schedule and data order. The first SIGINT/SIGTERM (Ctrl-C) stops after the
step in hand and writes a checkpoint (`TrainingInterrupted`: `--resume` goes on from it).
"""

from __future__ import annotations

import json
import logging
import math
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from rich.console import Console
from torch.utils.data import DataLoader, Sampler

from engines.base import ModelInfo
from engines.model_file import load_model, save_model
from engines.models import architecture, build_model
from engines.rcnn import RCNN
from engines.selective_search import SEARCH_KEY, SelectiveSearch
from engines.loading import pytorch_engine
from engines.torchvision_models import coco_start, is_torchvision_spec, model_name
from engines.training.checkpoint import load_checkpoint, save_checkpoint
from engines.training.config import ScheduleConfig, TrainConfig
from engines.training.curves import plot_curves
from engines.training.data import Augment, CocoDataset, collate
from engines.training.evaluate import evaluate
from engines.training.progress import TrainProgress
from engines.training.proposal_cache import ProposalCache
from engines.training.rcnn_fit import fit_rcnn
from pipeline.core.errors import ModelError, TrainingError
from pipeline.core.signals import Signals

log = logging.getLogger("detstream")


class TrainingInterrupted(TrainingError):
    """A signal stopped training; the checkpoint of the last step is written."""

    def __init__(self, step: int, signal_name: str) -> None:
        super().__init__(f"interrupted at step {step}; resume with --resume")
        self.step = step
        self.signal_name = signal_name


def _ignore_signals(_worker: int) -> None:
    # Ctrl-C reaches the whole process group: data loader workers leave stopping to the trainer
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class EpochSampler(Sampler[int]):
    """A shuffled order per epoch that depends only on (seed, epoch), so a resumed run
    sees the same images in the same order as an uninterrupted one."""

    def __init__(self, size: int, seed: int, epoch: int, skip: int = 0) -> None:
        self.size, self.seed, self.epoch, self.skip = size, seed, epoch, skip

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        yield from torch.randperm(self.size, generator=generator).tolist()[self.skip :]

    def __len__(self) -> int:
        return self.size - self.skip


def lr_factor(schedule: ScheduleConfig, step: int) -> float:
    """Multiplier of the base learning rate at `step` (warm-up, then the schedule)."""
    if step < schedule.warmup_steps:
        return 1e-3 + (1 - 1e-3) * step / schedule.warmup_steps
    if schedule.kind == "constant":
        return 1.0
    if schedule.kind == "step":
        return schedule.gamma ** sum(step >= m for m in schedule.milestones)
    progress = (step - schedule.warmup_steps) / max(1, schedule.steps - schedule.warmup_steps)
    low = schedule.final_lr_fraction
    return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Trainer:
    def __init__(self, config: TrainConfig, console: Console | None = None) -> None:
        self.config = config
        self.console = console or Console(stderr=True)
        self.out = Path(config.out)
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ModelError(f"device {config.device!r} requested but CUDA is not available on this machine")
        if config.threads:
            torch.set_num_threads(config.threads)
        arch = architecture(config.architecture)
        self.input_size = tuple(config.input_size or arch.input_size)
        augment = Augment(config.augment.hflip, tuple(config.augment.scale), config.augment.color)
        self.data = CocoDataset(
            Path(config.data.train),
            Path(config.data.train_images) if config.data.train_images else None,
            train=True,
            augment=augment,
            with_masks=arch.has_masks,
            input_size=self.input_size,
        )
        if arch.proposals:
            self.data.proposals = self._proposal_cache().load
        self.val = (
            CocoDataset(Path(config.data.val), Path(config.data.val_images) if config.data.val_images else None)
            if config.data.val
            else None
        )
        self.info = ModelInfo(
            name=config.name or self.out.name,
            architecture=config.architecture,
            class_names=self.data.class_names,
            input_size=self.input_size,
            score_threshold=config.score_threshold,
            has_masks=arch.has_masks,
            # a model that takes proposals keeps its search settings: run and eval search alike
            extra={SEARCH_KEY: config.selective_search.model_dump(include={"mode", "max_side", "top_n"})}
            if arch.proposals else {},
        )
        options = dict(
            seed=config.seed,
            # the data is already letterboxed to the input: the model's transform then
            # only normalizes (its resize is a no-op at scale 1)
            min_size=self.input_size[0],
            max_size=self.input_size[1],
            image_mean=list(self.info.mean),
            image_std=list(self.info.std),
        )
        options.update(config.builder_options())
        if self._starts_from_coco():
            self.model = coco_start(config.architecture, len(self.info.class_names), **options)
        else:
            backbone = None if config.weights_backbone == "none" else config.weights_backbone
            self.model = build_model(config.architecture, len(self.info.class_names), weights_backbone=backbone, **options)
        self.model.to(self.device)
        if config.init_from and not is_torchvision_spec(config.init_from):
            self._init_from(Path(config.init_from))
        self._freeze(config.freeze)
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = config.optimizer
        if opt.name == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay
            )
        else:
            self.optimizer = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(config.schedule, s))
        self.amp = config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step = 0
        self.train_seconds = 0.0  # wall time in training steps, over every resumed part of the run
        self.fitted: dict[str, Any] = {}  # what a second training stage reports (R-CNN's SVMs), for the model file
        self.fingerprint = self.data.fingerprint()
        schedule = config.schedule
        if schedule.warmup_steps > schedule.steps:
            log.warning("schedule.warmup_steps %d is more than the %d steps of the run: the learning rate never "
                        "reaches optimizer.lr (lower schedule.warmup_steps)", schedule.warmup_steps, schedule.steps)

    def _proposal_cache(self) -> ProposalCache:
        """The training set's selective search proposals, computing the missing ones now
        (once per data and search settings; an interrupted run goes on where it stopped)."""
        settings = self.config.selective_search
        search = SelectiveSearch(mode=settings.mode, max_side=settings.max_side, top_n=settings.top_n)
        cache = ProposalCache.of(self.data, search, Path(settings.cache) if settings.cache else None)
        computed = cache.compute(self.data, workers=settings.workers, console=self.console)
        log.info("proposals of %d images in %s (%d computed now)", len(self.data), cache.folder, computed)
        return cache

    def _starts_from_coco(self) -> bool:
        """`weights: coco`, or its other spelling `init_from: torchvision:NAME` (NAME must be
        the architecture: torchvision builds its COCO models with frozen BatchNorm, so they
        are started the way torchvision builds them, not copied tensor by tensor)."""
        init_from = self.config.init_from
        if init_from is None or not is_torchvision_spec(init_from):
            return self.config.weights == "coco"
        name = model_name(init_from)
        if name != self.config.architecture:
            raise TrainingError(
                f"init_from {init_from}: starts a {name}, but architecture is {self.config.architecture} "
                f"(set architecture: {name}, or weights: coco for the architecture's own COCO weights)"
            )
        return True

    def _init_from(self, path: Path) -> None:
        """Start from another trained model: e.g. a Mask R-CNN from the Faster R-CNN of the
        same family, whose backbone, RPN and box head carry over unchanged."""
        _, source = load_model(str(path))
        if tuple(source.class_names) != tuple(self.info.class_names):
            raise TrainingError(f"init_from {path}: its classes {source.class_names} are not this data's classes")
        theirs = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        mine = self.model.state_dict()
        matching = {k: v for k, v in theirs.items() if k in mine and mine[k].shape == v.shape}
        self.model.load_state_dict(matching, strict=False)
        log.info("initialised %d of %d tensors from %s", len(matching), len(mine), path)

    def _freeze(self, prefixes: list[str]) -> None:
        modules = dict(self.model.named_modules())
        for prefix in prefixes:
            if prefix not in modules:
                raise TrainingError(f"freeze: {self.config.architecture} has no module {prefix!r}")
            modules[prefix].requires_grad_(False)

    def train_mode(self) -> None:
        """Training mode, except frozen modules: their BatchNorm layers keep the statistics
        they were trained with (updating them would shift features the heads rely on)."""
        self.model.train()
        modules = dict(self.model.named_modules())
        for prefix in self.config.freeze:
            modules[prefix].eval()

    # -- checkpoints -------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def log_path(self) -> Path:
        return self.out / "log.jsonl"

    def save(self) -> None:
        save_checkpoint(
            self.checkpoint_path,
            {
                "info": self.info.to_dict(),
                "state_dict": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "step": self.step,
                "train_seconds": self.train_seconds,
                "torch_rng": torch.get_rng_state(),
                "config": self.config.model_dump(mode="json"),
                "data_fingerprint": self.fingerprint,
            },
        )

    def resume(self) -> None:
        state = load_checkpoint(self.checkpoint_path)
        saved = ModelInfo.from_dict(state["info"])
        for key in ("architecture", "class_names", "input_size"):
            if getattr(saved, key) != getattr(self.info, key):
                raise TrainingError(
                    f"cannot resume {self.checkpoint_path}: {key} was {getattr(saved, key)!r}, "
                    f"the config now gives {getattr(self.info, key)!r}"
                )
        if state.get("data_fingerprint") != self.fingerprint:
            log.warning("resuming on different training data than the checkpoint was trained on")
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))  # absent in checkpoints of older versions
        self._truncate_log()
        log.info("resumed from %s at step %d", self.checkpoint_path, self.step)

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint (they will be written again)."""
        if not self.log_path.exists():
            return
        lines = [line for line in self.log_path.read_text().splitlines() if json.loads(line)["step"] <= self.step]
        self.log_path.write_text("".join(line + "\n" for line in lines))

    # -- the loop ----------------------------------------------------------------------

    def batches(self) -> Iterator[tuple[list[torch.Tensor], list[dict]]]:
        """Batches from the current step on, epoch after epoch."""
        per_epoch = len(self.data) // self.config.batch_size
        if per_epoch == 0:
            raise TrainingError(f"{len(self.data)} training images is fewer than one batch of {self.config.batch_size}")
        epoch, skip = divmod(self.step, per_epoch)
        while True:
            sampler = EpochSampler(len(self.data), self.config.seed, epoch, skip * self.config.batch_size)
            loader = DataLoader(
                self.data,
                batch_size=self.config.batch_size,
                sampler=sampler,
                num_workers=self.config.workers,
                collate_fn=collate,
                drop_last=True,
                worker_init_fn=_ignore_signals,
                generator=torch.Generator().manual_seed(self.config.seed + 7919 * epoch + skip),
            )
            yield from loader
            epoch, skip = epoch + 1, 0

    def train_step(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, float]:
        images = [i.to(self.device, non_blocking=True) for i in images]
        targets = [{k: v.to(self.device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]
        with torch.autocast(self.device.type, enabled=self.amp):
            losses = self.model(images, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            parts = ", ".join(f"{k} {float(v):.3g}" for k, v in losses.items())
            raise TrainingError(f"loss is not finite at step {self.step} ({parts}): lower optimizer.lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in losses.items()}}

    def evaluate(self) -> dict[str, Any] | None:
        if self.val is None:
            return None
        engine = pytorch_engine(self.model, self.info, device=str(self.device), score_floor=0.05)
        try:
            result = evaluate(engine, self.val, progress=False, limit=self.config.eval_images)
        finally:
            self.train_mode()
        return {k: result[k] for k in ("bbox", "segm", "images") if k in result}

    def run(self, resume: bool = False) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume()
        else:
            torch.manual_seed(self.config.seed)
            random.seed(self.config.seed)
            np.random.seed(self.config.seed)
            self.log_path.write_text("")
        total = self.config.schedule.steps
        self.train_mode()
        metrics = None
        signals = Signals(threading.Event())
        with (
            signals.installed(),
            self.log_path.open("a") as log_file,
            TrainProgress(self.console, total, self.step) as progress,
        ):
            started, seen = time.monotonic(), 0
            for images, targets in self.batches():
                if self.step >= total:
                    break
                if signals.stop.is_set():
                    self.save()
                    raise TrainingInterrupted(self.step, signals.received or "SIGINT")
                stepping = time.monotonic()
                values = self.train_step(images, targets)
                self.train_seconds += time.monotonic() - stepping
                self.step += 1
                seen += len(images)
                record = {
                    "step": self.step,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    **{k: round(v, 5) for k, v in values.items()},
                    "images_per_s": round(seen / (time.monotonic() - started), 3),
                }
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                progress.update(self.step, record)
                if self.step % self.config.checkpoint_every == 0 or self.step == total:
                    self.save()
                if self.config.eval_every and self.step % self.config.eval_every == 0 and self.step < total:
                    metrics = self.evaluate()
                    if metrics:
                        log_file.write(json.dumps({"step": self.step, "eval": metrics}) + "\n")
                        progress.note(f"step {self.step}: box AP {metrics['bbox']['AP']:.3f}")
                if signals.stop.is_set() and self.step < total:
                    self.save()
                    raise TrainingInterrupted(self.step, signals.received or "SIGINT")
        if isinstance(self.model, RCNN):  # its second stage: SVMs and box regressors on the fine-tuned features
            fitting = time.monotonic()
            self.fitted = {"rcnn_fit": fit_rcnn(self.model, self.data, self.config.rcnn, self.config.seed, self.console)}
            self.train_seconds += time.monotonic() - fitting  # part of its training time
        metrics = self.evaluate()
        if metrics:
            with self.log_path.open("a") as log_file:
                log_file.write(json.dumps({"step": self.step, "eval": metrics}) + "\n")
        return self.finish(metrics)

    def finish(self, metrics: dict[str, Any] | None) -> Path:
        """Write the model file (weights + complete metadata) and the loss curves."""
        extra = {
            **self.info.extra,
            "data_fingerprint": self.fingerprint,
            "train_data": self.config.data.train,
            "val_data": self.config.data.val,
            "steps": self.step,
            "train_seconds": round(self.train_seconds, 1),
            "metrics": metrics,
            "training": self.config.model_dump(mode="json"),
            **self.fitted,
        }
        info = ModelInfo(**{**self.info.to_dict(), "extra": extra})
        path = self.out / "model.pt"
        save_model(path, self.model.eval(), ModelInfo.from_dict(info.to_dict()))
        plot_curves(self.log_path, self.out / "loss.png", title=info.name)
        return path
