"""Every benchmark in one run: measures the six sections of issue #8 and four more
(backends end to end, metrics overhead, COCO models, tracking), writes one JSON
(bench/results.json) and renders BENCHMARKS.md from it (bench/report.py).

    .venv/bin/python -m bench.run_all                      # everything but the ladder (`make bench`)
    .venv/bin/python -m bench.run_all --only ladder        # the R-CNN ladder (`make ladder`)
    .venv/bin/python -m bench.run_all --only int8          # ONNX Runtime fp32 against int8 (`make int8`)
    .venv/bin/python -m bench.run_all --only capacity      # cameras held at max_fps 5 (`make capacity`)
    .venv/bin/python -m bench.run_all --quick --only redis  # a few frames / repeats: smoke test
    .venv/bin/python -m bench.run_all --only decode,engines # re-measure some, keep the others
    .venv/bin/python -m bench.run_all --render-only --note "measured under load"

Each section records its machine, the load average when it started, its wall time and
the CPU time this process spent in it (wall >> CPU means other jobs shared the machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DEMO_VIDEO, ensure_video, machine, now
from bench.report import SECTION_TITLES, render
from bench.results import MARKDOWN, RESULTS, commit

# long, not part of `make bench`: the ladder (R-CNN takes seconds an image; `make ladder`),
# int8 (four `detstream eval`s of the 500-image test split; `make int8`), capacity (a run
# of about 1.5 minutes per step of cameras, until the bound breaks; `make capacity`) and the
# soak (an hour; `make soak MINUTES=60 SOAK_ARGS=--record`)
ON_REQUEST = ("ladder", "int8", "capacity", "soak")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DEMO_VIDEO)
    parser.add_argument("--only", help=f"comma-separated sections of: {','.join(SECTION_TITLES)}; the others are kept "
                                       "from the existing JSON")
    parser.add_argument("--quick", action="store_true", help="few frames and repeats (development, smoke test)")
    parser.add_argument("--render-only", action="store_true", help="re-render the markdown from the JSON")
    parser.add_argument("--note", help="a note printed at the top of the report (e.g. measured under load)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=MARKDOWN)
    args = parser.parse_args()
    names = args.only.split(",") if args.only else [n for n in SECTION_TITLES if n not in ON_REQUEST]
    if unknown := [n for n in names if n not in SECTION_TITLES]:
        parser.error(f"unknown section(s) {unknown}; choose from {','.join(SECTION_TITLES)}")

    if args.render_only:
        results = json.loads(args.json.read_text())
    else:
        results = measure(args, names)
        if args.only and args.json.exists():  # re-measuring some sections keeps the report's note
            previous = json.loads(args.json.read_text()).get("note")
            if previous is not None:
                results["note"] = previous
    if args.note is not None:
        results["note"] = args.note
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.out.write_text(render(results))
    print(f"wrote {args.json} and {args.out}", file=sys.stderr)
    return 0


def measure(args: argparse.Namespace, names: list[str]) -> dict:
    # imported here, not at the top: rendering needs none of torch, PyAV or ONNX Runtime,
    # which take from seconds to a minute to import on a busy machine
    from bench.sections import QUICK, SECTIONS, Budget, Context, run_section

    started = time.monotonic()
    ensure_video(args.video)
    # the other sections of an earlier run are kept when only some are re-measured, and
    # the on-request ones always (a full run does not measure them)
    kept = json.loads(args.json.read_text())["sections"] if args.json.exists() else {}
    if not args.only:
        kept = {name: section for name, section in kept.items() if name in ON_REQUEST}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(args.video, QUICK if args.quick else Budget(), Path(tmp))
        measured = {name: run_section(name, ctx) for name in names}
    sections = {name: measured.get(name) or kept[name] for name in SECTIONS if name in measured or name in kept}
    return {"schema": "detstream.bench/v1", "commit": commit(), "finished": now(), "quick": args.quick,
            "machine": machine(), "elapsed_s": round(time.monotonic() - started, 1), "sections": sections}


if __name__ == "__main__":
    sys.exit(main())
