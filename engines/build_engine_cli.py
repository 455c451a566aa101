"""`detstream build-engine PACKAGE [--fp16] [--max-batch N]` (or `--package PACKAGE`): TensorRT plans
for an engine package, built on the machine (GPU + TensorRT release) that will run them."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from pipeline.core.arg_types import positive_int


def cmd_build_engine(args: argparse.Namespace) -> int:
    from engines.package import read_package
    from pipeline.core.errors import ConfigError
    from engines.tensorrt_build import build_plans, import_tensorrt, record_build

    if args.package and args.package_flag and args.package != args.package_flag:
        raise ConfigError(f"two packages given: {args.package} and --package {args.package_flag}")
    folder = args.package or args.package_flag
    if not folder:
        raise ConfigError("build-engine: name the engine package folder (detstream build-engine PACKAGE)")
    import_tensorrt()  # fail in one line before reading anything when TensorRT / CUDA is missing
    package = read_package(Path(folder))
    record = build_plans(package, fp16=args.fp16, max_batch=args.max_batch, timing_cache=args.timing_cache,
                         tf32=not args.no_tf32)
    record_build(package, record)
    console = Console(stderr=True)
    for part, entry in record["plans"].items():
        size = (package.root / entry["path"]).stat().st_size / 1e6
        console.print(f"{part:10s} {entry['path']:26s} {size:6.1f} MB  sha256 {entry['sha256'][:12]}", highlight=False)
    console.print(f"TensorRT {record['version']} plans ({record['precision']}) for {record['gpu']} "
                  f"(sm_{record['compute_capability'].replace('.', '')}) written to {package.root / 'trt'}",
                  highlight=False)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build-engine", help="build TensorRT plans for an engine package (NVIDIA GPU)")
    p.add_argument("package", nargs="?", metavar="PACKAGE", help="engine package folder (from detstream export)")
    p.add_argument("--package", dest="package_flag", metavar="PACKAGE", help="the same, as a flag")
    p.add_argument("--fp16", action="store_true", help="compute in fp16 (converts the ONNX parts first)")
    p.add_argument("--max-batch", type=positive_int, metavar="N", help="largest batch for the dense plan (default: the package's)")
    p.add_argument("--timing-cache", type=Path, metavar="PATH", help="timing cache file (default: PACKAGE/trt/timing.cache)")
    p.add_argument("--no-tf32", action="store_true", help="full fp32 math in fp32 plans (slower; exact parity checks)")
    p.set_defaults(func=cmd_build_engine)
