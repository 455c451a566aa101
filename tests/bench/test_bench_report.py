"""The benchmark report: BENCHMARKS.md rendered from a small fixture JSON has every
section and a verdict per target; a real quick run of one section goes end to end.
No timing thresholds: only the shape of the report is checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench.report import SECTION_TITLES, render

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "results_fixture.json"


def test_every_section_and_verdict_is_rendered() -> None:
    markdown = render(json.loads(FIXTURE.read_text()))
    for title in SECTION_TITLES.values():
        assert f"## {title}" in markdown
    assert "Not run in this report" not in markdown
    # efficiency 0.93 meets 0.90; speedup 1.2 misses 1.3 by 0.1; p99 900 ms misses 2 x 250 ms by 400 ms
    assert "**met** (0.93 ≥ 0.9)" in markdown
    assert "**missed** by 0.1x (1.2x < 1.3x)" in markdown
    assert "**missed** by 400 ms (900 ms > 500 ms, 1.80x the bound)" in markdown
    assert "naive loop's age grows, 1 camera(s) | > 0.1 s/s | +0.84 s/s | **yes**" in markdown
    assert "Why: with a live source" in markdown  # the live target is missed: the report says why
    assert "accounted for (received = processed + dropped): exact; process RSS 1015 MB at the start" in markdown
    assert "Test CPU, 2 cores" in markdown  # every section names its machine
    assert markdown.count("Test CPU, 2 cores, load average") == len(SECTION_TITLES)
    assert "TensorRT: not measured" in markdown
    assert "auto / torch: **1.98x** the frames/s" in markdown
    assert "| `auto` | OnnxRuntimeEngine | 49.2 | 48.0, 50.1, 49.2 | 0.61 |" in markdown
    assert "exporting it into an empty cache took **4.2 s**, once" in markdown
    assert "**5 %** — target < 3 %: **missed** by 2 % (5 % > 3 %" in markdown
    # int8: frames/s 1.25x misses 1.4x; box mAP cost 0.005 meets 0.01, mask 0.02 misses it
    assert "| `embedded:mask-compact-synth` | 1.50x / 1.47x | **missed** by 0.15x (1.25x < 1.4x) | **met** (0.005 ≤ 0.01) / **missed** by 0.01" in markdown
    assert "- `embedded:mask-compact-synth` int8: total 46.0; QLinearConv 40.0, DequantizeLinear 6.0" in markdown
    assert "- `embedded:mask-compact-synth` int8, TensorRT's Q/DQ: total 50.0; Conv 30.0" in markdown
    assert "| `embedded:mask-compact-synth` | fp32 | 1 | 72.0 | 120.0 | 60% |" in markdown  # the dense part's share
    assert "| `embedded:mask-compact-synth` | 1 | 1.60x | 1.41x |" in markdown  # 120 / (80 - 40 + 72 / 1.6)
    # the soak: its verdict, each check, and the run's figures
    soak = markdown.split(f"## {SECTION_TITLES['soak']}")[1]
    assert "Verdict: **FAIL**." in soak
    assert "| RSS bounded | **FAIL** | slope +447.6 MB/h (bound 50)" in soak and "| spool drained | pass |" in soak
    assert "messages produced 3460, consumed 3460" in soak


def test_tracking_section_has_cost_quality_lines_and_issue_16_verdicts() -> None:
    markdown = render(json.loads(FIXTURE.read_text()))
    section = markdown.split(f"## {SECTION_TITLES['tracking']}")[1]
    assert "| 50 | bytetrack | yes | 0.800 | 1.200 | 0.500 | 0.650 | 47.0 | 46.5 | 1.0 |" in section
    assert "| clip-9102.mp4 | iou | 3 | 0.700 | 0.600 | 0.600 | 11 |" in section
    assert "| **mean** | bytetrack | 1 | 0.850 | 0.650 | 0.710 | 3.0 |" in section
    assert "IDF1 drop from stride 1 to stride 3: bytetrack 0.070, iou 0.050." in section
    assert "with seeds 9101, 9102, which nothing else uses" in section
    assert "[docs/track-eval.md](docs/track-eval.md#rules)" in section  # the don't-care rule
    # line counts summed over the clips; no ground-truth crossing and none tracked: no error to show
    assert "| vertical | out | 38 | 35 (-7.9 %) | 35 (-7.9 %) | 31 (-18.4 %) | 31 (-18.4 %) |" in section
    assert "| horizontal | out | 0 | 0 (-) | 0 (-) | 2 (-) | 2 (-) |" in section
    assert "The ground truth has 89 crossings in all; the direction with the fewest has 10, so one crossing" in section
    # every verdict follows from the figures: in the section and in the summary at the top
    for verdict in ("0.800 ms (p95 1.200) | **met** (0.8 ms ≤ 1 ms)",
                    "| 0.850 | **met** (0.85 ≥ 0.8)",
                    "| 0.650 | **missed** by 0.05 (0.65 < 0.7)",
                    "| 0.070 | **missed** by 0.02 (0.07 > 0.05, 1.40x the bound)",
                    "| worst vertical out -7.9 % | **missed** (1 of 4 directions outside)",
                    "| IDF1 +0.080, MOTA +0.040, HOTA +0.060 | **met** |",
                    "| IDF1 +0.060, MOTA -0.020, HOTA +0.040 | **missed** |"):
        assert verdict in section and markdown.count(verdict) == 2, verdict


def test_clips_section_has_the_buffer_and_the_writing_cost() -> None:
    section = render(json.loads(FIXTURE.read_text())).split(f"## {SECTION_TITLES['clips']}")[1]
    assert "1280x720 at 25 fps, 4.16 Mbit/s, a key frame every 50 frames. Buffer 10 s / 64 MB" in section
    assert "| packet buffer | 0.037 % | 6.32 MB | 14.86 µs per packet; 11.96 s held, 6.22 MB of it packets |" in section
    assert "| 10.57 % | - | buffer / decode: 0.35 % |" in section
    assert "| writing a 10 s clip | 0.011 % at one clip a minute | - | 6.4 ms CPU, 64.4 ms wall, 5.74 MB |" in section


def test_line_counts_within_bound_meet_the_target() -> None:
    results = json.loads(FIXTURE.read_text())
    for count in results["sections"]["tracking"]["result"]["quality"]["line_counts"]:
        if count["method"] == "bytetrack" and count["direction"] == "out" and count["line"] == "vertical":
            count["tracked"], count["error"] = 37, -0.0263
    assert "| worst vertical out -2.6 % | **met** |" in render(results)


def test_a_backends_section_of_the_earlier_kind_asks_to_be_re_measured() -> None:
    results = json.loads(FIXTURE.read_text())
    results["sections"]["backends"]["result"] = {"ratio_onnxruntime_over_torch": 1.5, "ratio_detector_alone": 1.1}
    assert "Measured by an earlier version of this section: re-measure with `--only backends`." in render(results)


def test_a_missing_section_is_listed_as_not_run() -> None:
    results = json.loads(FIXTURE.read_text())
    del results["sections"]["live"]
    markdown = render(results)
    assert f"## {SECTION_TITLES['live']}\n\nNot run in this report." in markdown
    assert "live age p99" not in markdown


def run_all(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.run_all", *args],
                          capture_output=True, text=True, timeout=280, cwd=REPO)


def test_render_only_adds_the_note(tmp_path: Path) -> None:
    results, markdown = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    shutil.copy(FIXTURE, results)
    done = run_all("--render-only", "--note", "measured under load", "--json", str(results), "--out", str(markdown))
    assert done.returncode == 0, done.stderr
    assert "> **Note:** measured under load" in markdown.read_text()
    assert json.loads(results.read_text())["note"] == "measured under load"


def test_quick_redis_section_runs_for_real(tmp_path: Path) -> None:
    results, markdown = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    done = run_all("--quick", "--only", "redis", "--json", str(results), "--out", str(markdown))
    assert done.returncode == 0, done.stderr
    section = json.loads(results.read_text())["sections"]["redis"]
    assert section["elapsed_s"] > 0 and section["machine"]["cores"] >= 1
    assert set(section["result"]["msgs_per_s_median"]) >= {"sink, pipelined (batch 64)", "redis-benchmark XADD -c 1 -P 1"}
    text = markdown.read_text()
    assert "## 6. Redis publish" in text and "**Quick mode**" in text


def test_quick_backends_section_runs_the_demo_config_on_the_cached_package(tmp_path: Path, videos) -> None:
    results, markdown = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    done = run_all("--quick", "--only", "backends", "--video", str(videos["b"]), "--json", str(results), "--out", str(markdown))
    assert done.returncode == 0, done.stderr
    result = json.loads(results.read_text())["sections"]["backends"]["result"]
    assert result["config"] == "configs/demo.yaml" and result["model"] == "embedded:faster-compact-synth"
    assert result["ran_on"] == {"auto": "OnnxRuntimeEngine", "torch": "TorchEngine"}  # auto took the cached package
    assert result["export_s"] > 0 and result["frames"] == 8 and result["sinks"] == ["jsonl", "video"]
    assert abs(result["ratio_auto_over_torch"] - result["fps_median"]["auto"] / result["fps_median"]["torch"]) < 0.01
    assert "## 7. The demo: engine auto against PyTorch" in markdown.read_text()


def test_proposals_section_has_both_sources_at_every_count() -> None:
    section = render(json.loads(FIXTURE.read_text())).split(f"## {SECTION_TITLES['proposals']}")[1]
    assert "| source | IoU | @100 | @300 | @1000 | @2000 | proposals / image | s / image |" in section
    assert "| selective search, fast | 0.5 | 0.300 | 0.500 | 0.700 | 0.750 | 900 | 0.700 |" in section
    assert "| RPN of embedded:faster-compact-synth | 0.7 | 0.750 | 0.760 | 0.760 | 0.760 | 2000 | 0.090 |" in section


def test_ladder_section_has_every_rung_and_both_speed_ratios() -> None:
    section = render(json.loads(FIXTURE.read_text())).split(f"## {SECTION_TITLES['ladder']}")[1]
    assert ("| rung | architecture | COCO mAP | AP50 | VOC07 mAP | proposals s / image | s / image | training | MB |"
            in section)
    assert "| R-CNN | `rcnn` | 0.400 | 0.700 | 0.660 | 0.900 | 6.000 | 30 min + its backbone | 11.0 |" in section
    assert "| Faster R-CNN | `fasterrcnn_compact` | 0.650 | 0.940 | 0.900 | 0.000 | 0.050 | 90 min | 11.4 |" in section
    assert "| Fast R-CNN, RoIAlign | not available (engines/embedded/fast-rcnn-align-synth.pt missing) |" in section
    assert "| R-CNN | 235.0x | 120.0x |" in section and "| Fast R-CNN | 11.5x | 20.0x |" in section


def test_speed_ratios_are_over_faster_rcnn_and_missing_rungs_stay_unknown() -> None:
    from bench.ladder import speed_ratios

    rows = [{"family": "R-CNN", "available": True, "seconds_per_image": 3.0},
            {"family": "Faster R-CNN", "available": True, "seconds_per_image": 0.05},
            {"family": "Fast R-CNN", "available": False}]
    assert speed_ratios(rows) == [{"rung": "R-CNN", "seed_ratio": 235.0, "our_ratio": 60.0},
                                  {"rung": "Fast R-CNN", "seed_ratio": 11.5, "our_ratio": None}]
