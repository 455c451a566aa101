"""bench/capacity.py: the bound check fails where it must (hand-made camera rows), the
capacity is the last step before the first failure, one real step (RTSP test server, the
fake detector, seconds long) gives the result's structure, and the report renders it or
says it is not yet measured. No timing thresholds: a busy machine may break the bound."""

from __future__ import annotations

import json
from pathlib import Path

from bench.capacity import Bound, capacity, measure, table
from bench.report import SECTION_TITLES, render
from rtsp_support import write_live_clip
from support import BlobEngine

FIXTURE = Path(__file__).parent / "results_fixture.json"


def camera(p99: float | None = 400, drop: float = 0.0, reconnects: int = 0, messages: int = 225) -> dict:
    return {"camera": "cam0", "messages": messages, "age_ms": {"p50": 150, "p99": p99}, "drop_fraction": drop,
            "reconnects": reconnects}


def test_the_bound_holds_and_breaks_on_age_drops_reconnects_and_silence() -> None:
    bound = Bound(max_age_ms=1000, max_drop=0.05)
    assert bound.check(camera()) == []
    assert bound.check(camera(p99=1000, drop=0.05)) == []  # both limits are inclusive
    assert bound.check(camera(p99=1001)) == ["age p99 1001 ms > 1000 ms"]
    assert bound.check(camera(drop=0.051)) == ["dropped 5.1% > 5%"]
    assert bound.check(camera(p99=2500, drop=0.3, reconnects=1)) == [
        "age p99 2500 ms > 1000 ms", "dropped 30.0% > 5%", "1 reconnect(s)"]
    assert bound.check(camera(p99=None, messages=0)) == ["no message"]


def test_capacity_is_the_last_step_before_the_first_failure() -> None:
    def steps(*held: bool) -> list[dict]:
        return [{"cameras": n, "held": h} for n, h in enumerate(held, 1)]

    assert capacity(steps(True, True, False, True)) == 2  # a pass after a failure does not count
    assert capacity(steps(False, True)) == 0
    assert capacity(steps(True, True, True)) == 3


def test_one_camera_step_on_the_real_rtsp_server(tmp_path: Path) -> None:
    clip = write_live_clip(tmp_path / "clip.mp4", seconds=4)
    result = measure(1, 3.0, tmp_path, warmup=1.0, extra_steps=0, video=clip, engine=BlobEngine())
    assert result["camera"].startswith("320x180 H.264, 25 fps") and result["max_fps"] == 5
    assert result["model"] == "blob-test"  # the engine given; without one, the run loads the default model
    [step] = result["steps"]
    [cam] = step["per_camera"]
    assert step["cameras"] == 1 and 2.5 <= step["seconds"] <= 4
    assert cam["messages"] > 0 and cam["received"] > 0 and cam["age_ms"]["p99"] >= cam["age_ms"]["p50"] > 0
    assert step["cpu_percent"] > 0 and step["rss_mb_max"] > 0
    assert step["held"] == (not cam["broken"]) == (result["capacity"] == 1) == result["at_limit"]
    assert "capacity: " in table(result) and "age p99" in table(result)


def test_the_report_renders_the_steps_or_says_not_yet_measured() -> None:
    results = json.loads(FIXTURE.read_text())
    section = render(results).split(f"## {SECTION_TITLES['capacity']}")[1]
    assert "Test CPU, 2 cores, load average" in section  # the machine it ran on
    assert "the default model (`embedded:faster-compact-synth`, `engine: auto`)" in section
    assert "frame age p99 ≤ 1000 ms" in section and "at most 5% of the frames" in section
    assert "| 3 | **broken** | 4.40-4.90 | 380 | 1480 | 12.0% | 171 | 5 | 1410 | cam2: age p99 1480 ms" in section
    assert "| 2 | held | 4.96-4.98 | 220 | 700 | 0.9% | 118 | 3 | 1350 |  |" in section
    assert "**Capacity: 2 camera(s)** at 720p/25 fps with `max_fps: 5`." in section
    del results["sections"]["capacity"]
    assert "Not yet measured: `make capacity` on a quiet machine" in render(results)
