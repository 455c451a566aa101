"""`detstream export --model MODEL --out PACKAGE [--fp16 | --int8 --calibration COCO.json]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from pipeline.core.arg_types import positive_int


def cmd_export(args: argparse.Namespace) -> int:
    from engines.export import export_package
    from pipeline.core.config import input_size_flag
    from pipeline.core.errors import ConfigError

    if args.fp16 and args.int8:
        raise ConfigError("export: --fp16 or --int8, not both")
    if args.int8 and args.calibration is None:
        raise ConfigError("export --int8: name the calibration images (--calibration COCO.json, e.g. a validation split)")
    if args.calibration is not None and not args.int8:
        raise ConfigError("export: --calibration is for --int8")
    package = export_package(
        args.model, Path(args.out), max_batch=args.max_batch, weights=args.weights, input_size=input_size_flag(args.input_size)
    )
    if args.fp16:
        from engines.fp16 import export_fp16

        package = export_fp16(package, package.root)  # in place: the fp32 parts are not kept
    if args.int8:
        from engines.coco_images import dataset_images
        from engines.int8 import export_int8

        images = dataset_images(args.calibration, args.calibration_images)
        package = export_int8(package, package.root, images, source=str(args.calibration))
    console = Console(stderr=True)
    for part, entry in package.meta["files"].items():
        size = (package.root / entry["path"]).stat().st_size / 1e6
        console.print(f"{part:13s} {entry['path']:18s} {size:6.1f} MB  sha256 {entry['sha256'][:12]}", highlight=False)
    console.print(f"engine package written to {package.root}", highlight=False)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a model to an engine package (ONNX parts + metadata)")
    p.add_argument("--model", required=True, help="model file, checkpoint, embedded:NAME or torchvision:NAME")
    p.add_argument("--weights", metavar="PATH.pth", help="torchvision:NAME only: a local state dict instead of the torch hub cache")
    p.add_argument("--input-size", metavar="HxW", help="input size the package is exported for, multiples of 32 (default: the model's)")
    p.add_argument("--out", required=True, help="package folder to write")
    p.add_argument("--max-batch", type=positive_int, default=8, help="largest batch the dense engine is built for")
    p.add_argument("--fp16", action="store_true",
                   help="fp16 ONNX parts (float32 inputs and outputs; for TensorRT 11, which has no fp16 flag)")
    p.add_argument("--int8", action="store_true",
                   help="int8 ONNX parts with explicit Q/DQ nodes (static quantization, needs --calibration)")
    p.add_argument("--calibration", type=Path, metavar="COCO.json", help="--int8: calibration images (a COCO file)")
    p.add_argument("--calibration-images", type=positive_int, default=100, metavar="N",
                   help="--int8: how many of them, evenly spread (default 100)")
    p.set_defaults(func=cmd_export)
