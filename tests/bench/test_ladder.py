"""bench/ladder.py measures every shipped rung through eval's path: on two synthetic
images here (the real run takes the held-out split's first 100)."""

from __future__ import annotations

from pathlib import Path

from bench.ladder import RUNGS, Rung, measure_rung, speed_ratios
from synth.dataset import write_dataset


def test_every_shipped_rung_is_measured_and_a_missing_one_is_not_guessed(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", seed=19019, count=2, width=640, height=360)
    data = tmp_path / "data/annotations.json"
    rows = [measure_rung(rung, data, 2) for rung in RUNGS]
    shipped = [row for row in rows if row["available"]]
    assert {row["architecture"] for row in shipped} >= {"rcnn", "fast_rcnn", "fasterrcnn_compact", "retinanet_compact"}
    for row in shipped:
        assert row["images"] == 2 and 0 <= row["VOC07"] <= 1 and row["size_mb"] > 0
        assert row["seconds_per_image"] > row["proposal_seconds_per_image"] >= 0
        # only the rungs that take selective search proposals spend time on them
        assert (row["proposal_seconds_per_image"] > 0) == (row["architecture"] in ("rcnn", "fast_rcnn"))
    assert all(row["train_seconds"] for row in shipped if row["architecture"] in ("rcnn", "fast_rcnn", "retinanet_compact"))
    missing = measure_rung(Rung("absent", "", "engines/embedded/no-such-model.pt"), data, 2)
    assert missing == {"rung": "absent", "family": "", "model": "engines/embedded/no-such-model.pt", "available": False}
    ratios = {r["rung"]: r for r in speed_ratios(rows)}
    assert ratios["R-CNN"]["our_ratio"] > 1 and ratios["Fast R-CNN"]["our_ratio"] > 1  # both slower than Faster R-CNN
