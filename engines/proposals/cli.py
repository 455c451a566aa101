"""`detstream proposals recall`: selective search vs a two-stage model's RPN, recall at
IoU 0.5 and 0.7 for 100 / 300 / 1000 / 2000 proposals on an annotated image set.
`detstream proposals cache`: compute a dataset's selective search proposals once, for
Fast R-CNN training (engines/training/proposal_cache.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from pipeline.core.arg_types import positive_int

if TYPE_CHECKING:
    from engines.proposals.recall import RecallReport

DEFAULT_MODEL = "embedded:faster-compact-synth"


def cmd_recall(args: argparse.Namespace) -> int:
    # torch, OpenCV and the model: only when measuring, the parser stays light
    from engines.loading import load_engine
    from engines.proposals.recall import COUNTS, RpnProposer, dataset_samples, dataset_truth, measure, report_rows
    from engines.selective_search import SelectiveSearch
    from engines.training.data import CocoDataset

    search = SelectiveSearch(mode=args.mode, max_side=args.max_side, top_n=max(COUNTS), threads=args.threads)
    dataset = CocoDataset(args.data, args.images)
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    reports = [measure(f"selective search {args.mode}", search, dataset_samples(dataset, count))]
    if args.model != "none":
        engine = load_engine(args.model, "cpu", backend="torch", threads=args.threads)
        reports.append(measure(f"RPN {args.model}", RpnProposer(engine, max(COUNTS)), dataset_samples(dataset, count)))
    ground_truth = sum(len(dataset_truth(dataset, i)) for i in range(count))
    console = Console()
    print_table(reports, count, ground_truth, console)
    if args.model != "none":
        console.print(f"RPN: {engine.info.name}, post-NMS top-N raised to {max(COUNTS)}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"data": str(dataset.path), "images": count, "ground_truth_boxes": ground_truth,
                  "sources": report_rows(reports)}
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from engines.selective_search import SelectiveSearch
    from engines.training.data import CocoDataset
    from engines.training.proposal_cache import ProposalCache

    dataset = CocoDataset(args.data, args.images)
    search = SelectiveSearch(mode=args.mode, max_side=args.max_side, top_n=args.top_n)
    cache = ProposalCache.of(dataset, search, args.cache)
    console = Console(stderr=True)
    computed = cache.compute(dataset, workers=args.workers, console=console)
    console.print(f"{cache.folder}: proposals of {len(dataset)} images ({computed} computed now)", highlight=False)
    return 0


def print_table(reports: list[RecallReport], images: int, ground_truth: int, console: Console) -> None:
    console.print(f"proposal recall on {images} images, {ground_truth} ground-truth boxes (IoU: best proposal per box)")
    table = Table()
    table.add_column("source", no_wrap=True)
    table.add_column("IoU", justify="right")
    for n in reports[0].counts:
        table.add_column(f"@{n}", justify="right")
    table.add_column("boxes", justify="right")
    table.add_column("s/img", justify="right")
    for report in reports:
        for j, iou in enumerate(report.ious):
            first = j == 0
            table.add_row(
                report.name if first else "",
                f"{iou:.1f}",
                *(f"{v:.3f}" for v in report.recall[:, j]),
                f"{report.mean_proposals:.0f}" if first else "",
                f"{report.seconds_per_image:.3f}" if first else "",
            )
    console.print(table)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `proposals` with its `recall` and `cache` sub-commands."""
    parser = subparsers.add_parser("proposals", help="region proposals: selective search, recall vs the RPN")
    commands = parser.add_subparsers(dest="proposals_command", metavar="{recall,cache}", required=True)
    p = commands.add_parser(
        "recall", help="recall of selective search and a model's RPN at 100/300/1000/2000 proposals",
        description="Recall at IoU 0.5 and 0.7 of selective search and of a two-stage model's RPN "
                    "against the ground-truth boxes of a COCO file.")
    p.add_argument("--data", required=True, type=Path, metavar="ANNOTATIONS.json", help="COCO instances file")
    p.add_argument("--images", type=Path, metavar="DIR", help="image folder (default: images/ next to the JSON)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="the first N images only (default: all)")
    p.add_argument("--mode", default="fast", choices=("fast", "quality"), help="selective search mode (default fast)")
    p.add_argument("--max-side", type=positive_int, default=500, metavar="PX",
                   help="longer image side during selective search (default 500)")
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="SPEC",
                   help=f"two-stage model whose RPN is measured, or none (default {DEFAULT_MODEL})")
    p.add_argument("--threads", type=positive_int, metavar="N", help="OpenCV and torch threads (default: theirs)")
    p.add_argument("--out", type=Path, metavar="PATH", help="also write the table as JSON")
    p.set_defaults(func=cmd_recall)

    c = commands.add_parser(
        "cache", help="compute a dataset's selective search proposals once (for fast_rcnn training)",
        description="Selective search proposals of every image of a COCO file, stored per image under "
                    "CACHE/<json name>-<key>, where the key covers the search settings and the image files: "
                    "already computed images are skipped; training with architecture: fast_rcnn reads them.")
    c.add_argument("--data", required=True, type=Path, metavar="ANNOTATIONS.json", help="COCO instances file")
    c.add_argument("--images", type=Path, metavar="DIR", help="image folder (default: images/ next to the JSON)")
    c.add_argument("--mode", default="fast", choices=("fast", "quality"), help="selective search mode (default fast)")
    c.add_argument("--max-side", type=positive_int, default=500, metavar="PX",
                   help="longer image side during selective search (default 500)")
    c.add_argument("--top-n", type=positive_int, default=2000, metavar="N", help="proposals kept per image (default 2000)")
    c.add_argument("--workers", type=positive_int, default=2, metavar="N", help="search processes (default 2)")
    c.add_argument("--cache", type=Path, metavar="DIR",
                   help="cache folder (default $DETSTREAM_CACHE/proposals, as training uses)")
    c.set_defaults(func=cmd_cache)
