"""`detstream train [CONFIG.yaml] [flags] [--resume]`."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from rich.console import Console

from pipeline.core.flags import flag_values


# settings key -> the flag that sets it (named in errors)
TRAIN_FLAGS = {
    "data.train": "--train",
    "data.val": "--val",
    "architecture": "--architecture",
    "schedule.steps": "--steps",
    "batch_size": "--batch-size",
    "optimizer.lr": "--lr",
    "out": "--out",
    "device": "--device",
    "workers": "--workers",
    "eval_every": "--eval-every",
    "checkpoint_every": "--checkpoint-every",
    "weights": "--weights",
    "weights_backbone": "--weights-backbone",
}


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags as dotted settings keys (None: not given, the file's value stays)."""
    return flag_values(args, TRAIN_FLAGS)


def cmd_train(args: argparse.Namespace) -> int:
    from engines.training.config import TrainConfig
    from engines.training.train import Trainer, TrainingInterrupted  # torch-heavy: only when training
    from pipeline.core.config import load_settings

    config = load_settings(TrainConfig, args.config, _overrides(args), TRAIN_FLAGS)
    console = Console(stderr=True)
    trainer = Trainer(config, console)
    try:
        path = trainer.run(resume=args.resume)
    except TrainingInterrupted as stopped:
        console.print(f"{stopped} (checkpoint: {trainer.checkpoint_path})", highlight=False)
        return 128 + signal.Signals[stopped.signal_name].value  # SIGINT 130, SIGTERM 143
    console.print(f"model written to {path} (loss curve: {path.parent / 'loss.png'})", highlight=False)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a Faster/Mask R-CNN on COCO-format data")
    p.add_argument("config", nargs="?", type=Path, help="YAML training config (see configs/train-*.yaml)")
    p.add_argument("--train", metavar="JSON", help="COCO instances JSON of the training set")
    p.add_argument("--val", metavar="JSON", help="COCO instances JSON to evaluate on")
    p.add_argument("--architecture", help="e.g. fasterrcnn_compact, maskrcnn_compact, fasterrcnn_resnet50_fpn")
    p.add_argument("--steps", type=int, help="optimizer steps in all")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--out", help="run folder: checkpoint.pt, log.jsonl, loss.png, model.pt")
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, help="data loader processes")
    p.add_argument("--eval-every", type=int, metavar="N", help="evaluate on --val every N steps")
    p.add_argument("--checkpoint-every", type=int, metavar="N")
    p.add_argument("--weights", choices=["none", "coco"])
    p.add_argument("--weights-backbone", choices=["none", "imagenet"])
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.set_defaults(func=cmd_train)
