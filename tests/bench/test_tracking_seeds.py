"""The tracking benchmark's held-out clips stay held out: no seed of theirs is a development
clip, or appears in the tests, the configs, the Makefile or the synth generator."""

from __future__ import annotations

import re
from pathlib import Path

from bench.tracking_quality import DEVELOPMENT_CLIPS, SEEDS

REPO = Path(__file__).resolve().parents[2]


def test_held_out_seeds_are_used_nowhere_else():
    assert len(set(SEEDS)) == len(SEEDS) and not set(SEEDS) & set(DEVELOPMENT_CLIPS)
    files = [*REPO.glob("tests/**/*.py"), *REPO.glob("configs/*.yaml"), REPO / "Makefile", *REPO.glob("synth/**/*.py")]
    used = {int(n) for path in files for n in re.findall(r"(?<!\d)9[0-9]{3}(?!\d)", path.read_text())}
    assert not used & set(SEEDS), sorted(used & set(SEEDS))
