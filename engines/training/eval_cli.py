"""`detstream eval`: COCO mAP of a model on an annotated image set."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from pipeline.core.arg_types import positive_int


def cmd_eval(args: argparse.Namespace) -> int:
    # torch-heavy: only when evaluating, so that building the detstream parser stays light
    from engines.loading import load_engine
    from engines.training.data import CocoDataset
    from engines.training.evaluate import evaluate, print_report, write_report
    from pipeline.core.config import input_size_flag

    # the engine's candidate floor must not be above the evaluation threshold, or
    # low-score detections that COCO AP counts would never be produced
    engine = load_engine(
        args.model,
        args.device,
        args.score_threshold,
        backend=args.engine,
        weights=args.weights,
        input_size=input_size_flag(args.input_size),
    )
    dataset = CocoDataset(args.data, args.images)
    result = evaluate(
        engine,
        dataset,
        batch_size=args.batch,
        score_threshold=args.score_threshold,
        top_k=args.top_k,
        progress=True,
        quiet=not getattr(args, "verbose", False),
    )
    print_report(result, Console())
    if args.out is not None:
        write_report(result, args.out)
        Console(stderr=True).print(f"report written to {args.out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="COCO mAP of a model on an annotated image set")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="model file, checkpoint, engine package, embedded:NAME, torchvision:NAME or arch:NAME")
    p.add_argument("--weights", metavar="PATH.pth", help="torchvision:NAME only: a local state dict instead of the torch hub cache")
    p.add_argument("--input-size", metavar="HxW", help="padded model input, multiples of 32, e.g. 384x640 (default: the model's)")
    p.add_argument("--data", required=True, type=Path, metavar="ANNOTATIONS.json", help="COCO instances file")
    p.add_argument("--images", type=Path, metavar="DIR", help="image folder (default: images/ next to the JSON)")
    p.add_argument("--out", type=Path, metavar="PATH", help="also write the report as JSON")
    p.add_argument("--batch", type=positive_int, default=2, metavar="N", help="images per engine call (default 2)")
    p.add_argument(
        "--score-threshold", type=float, default=0.05, metavar="S", help="lowest score kept (default 0.05)"
    )
    p.add_argument("--top-k", type=positive_int, default=100, metavar="K", help="detections per image (default 100)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--engine", default="auto", metavar="BACKEND",
                   help="auto, torch, onnxruntime or tensorrt (auto: as for run; a model file's ONNX Runtime package is "
                        "exported once into the cache; torch: PyTorch)")
    p.set_defaults(func=cmd_eval)
