"""The efficiency baselines of bench/efficiency.py (issue #20): the engine alone weighted
by the pipeline's own batch sizes, and the CPU-time bound. Maths and shape only; no
timing thresholds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bench import efficiency
from bench.report import render

FIXTURE = Path(__file__).parent / "results_fixture.json"


def test_engine_alone_is_weighted_by_the_frames_each_batch_size_carried(monkeypatch):
    fps = {1: 10.0, 2: 20.0}
    monkeypatch.setattr(efficiency, "detector_and_engine_alone", lambda package, video, frames, batch: (0.0, fps[batch]))
    # 6 batches of 1 and 2 of 2: 6 frames at 10/s and 4 at 20/s = 0.8 s for 10 frames
    assert efficiency.engine_alone_at("pkg", Path("v.mp4"), 10, Counter({1: 6, 2: 2})) == 10 / 0.8


def test_cpu_time_per_frame_covers_every_stage(videos, tmp_path):
    from bench.common import as_package

    package = as_package("embedded:faster-compact-synth", tmp_path)
    spent = efficiency.cpu_seconds_per_frame(package, videos["b"], 3, 2)
    assert set(spent) == {"decode", "preprocess", "engine", "postprocess_and_sink"}
    assert all(value >= 0 for value in spent.values()) and spent["engine"] > 0


def test_the_report_shows_both_bounds():
    results = json.loads(FIXTURE.read_text())
    result = results["sections"]["efficiency"]["result"]
    result["fps_median"]["engine_alone_same_batches"] = 40.0
    result.update(efficiency_vs_engine_at_full_batch=0.8, cpu_bound_fps=60.0, efficiency_vs_cpu_bound=0.7,
                  cpu_s_per_frame={"decode": 0.004, "engine": 0.03})
    markdown = render(results)
    assert "Engine alone at the pipeline's own batch sizes: 40.00 frames/s" in markdown
    assert "(decode 4.0 ms, engine 30.0 ms) allows at most 60.00 frames/s" in markdown
    assert "reaches **0.70** of it" in markdown
