"""The soak harness end to end in about a minute (54 s of soak, about 85 s of wall time
with the start-up and the end): a real `detstream run` subprocess with every fault kind at
least once (faults every ~20 s, the first of each kind in the first 12 s), and a passing verdict.

The long soak (`make soak MINUTES=60`) is the one that judges leaks; this one checks that
the harness works and that each fault is survived: every kind happened, the source left
`streaming` where it should, and came back within the bound."""

from __future__ import annotations

import json

from bench.soak import main
from bench.soak_verdict import RECOVERY_S

KINDS = {"camera_kill", "camera_stall", "redis_restart", "api_add_remove"}


def test_a_one_minute_soak_passes_with_every_fault_survived(tmp_path, capsys):
    out = tmp_path / "soak"
    code = main(["--minutes", "0.9", "--fault-every", "20", "--sample-every", "2", "--seed", "1", "--out", str(out)])
    record = json.loads((out / "verdict.json").read_text())
    failed = [c for c in record["checks"] if not c["passed"]]
    assert code == 0 and record["passed"], failed
    faults = record["faults"]
    assert {f["kind"] for f in faults} == KINDS
    for fault in faults:
        assert fault["recovery_s"] is not None and fault["recovery_s"] <= RECOVERY_S, fault
    # the camera faults were seen by detstream: its state left streaming during them
    for fault in faults:
        if fault["kind"] in ("camera_kill", "camera_stall"):
            assert "states seen: streaming only" not in fault["note"], fault
    assert (out / "soak.png").stat().st_size > 10_000 and (out / "verdict.md").exists()
    assert len((out / "samples.csv").read_text().splitlines()) >= 25  # header + a sample every 2 s for 54 s
    assert "Soak verdict: PASS" in capsys.readouterr().out
