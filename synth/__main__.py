"""`python -m synth video|dataset ...`: the `detstream synth` command without the detstream CLI."""

from __future__ import annotations

import argparse
import sys

from synth.cli import add_parser


def main(argv: list[str] | None = None) -> int:
    # prog "python -m" + the sub-command "synth" reads as "python -m synth" in usage lines.
    parser = argparse.ArgumentParser(prog="python -m")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["synth", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
