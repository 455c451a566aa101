"""`detstream models [--json]`: what --model can name on this machine."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table


def cmd_models(args: argparse.Namespace) -> int:
    from engines.catalog import catalog  # torch and torchvision load only when the command runs

    entries = catalog()
    if args.json:
        json.dump([e.to_dict() for e in entries], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = Table(title="models (--model SPEC)", title_justify="left")
    for column in ("spec", "architecture", "input", "classes", "masks", "backends", "ready", "MB"):
        table.add_column(column, justify="right" if column in ("MB",) else "left")
    for e in entries:
        classes = ", ".join(e.classes) if len(e.classes) <= 6 else f"{len(e.classes)} (COCO)"
        table.add_row(e.spec, e.architecture, f"{e.input_size[0]}x{e.input_size[1]}", classes, "yes" if e.masks else "no",
                      ", ".join(e.backends), "yes" if e.ready else "download", f"{e.size_mb:.1f}")
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)
    for e in entries:
        if e.note and not e.ready:
            console.print(f"{e.spec}: {e.note}", highlight=False)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the embedded, torchvision COCO and cached models --model can name")
    p.add_argument("--json", action="store_true", help="one JSON list on stdout, for scripts")
    p.set_defaults(func=cmd_models)
