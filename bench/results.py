"""bench/results.json and BENCHMARKS.md: where they are, and one section measured outside
`run_all` (`make soak ... --record`) put into both."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench.common import REPO
from bench.report import SECTION_TITLES, render

RESULTS = REPO / "bench" / "results.json"
MARKDOWN = REPO / "BENCHMARKS.md"


def commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def record(name: str, section: dict, json_path: Path = RESULTS, markdown: Path = MARKDOWN) -> None:
    """Put one section measured elsewhere (`make soak`) into the results and re-render the report."""
    results = json.loads(json_path.read_text())
    sections = {**results["sections"], name: section}
    results.update(sections={k: sections[k] for k in SECTION_TITLES if k in sections}, commit=commit(),
                   finished=section["finished"])
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown.write_text(render(results))
