"""`detstream profile` as a user runs it: the table, report.json, timeline.png, trace.json."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.profile.profile import profile
from support import BlobEngine, run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Profiled:
    out: Path
    sink: str  # the sink's stage name
    stdout: str
    stderr: str
    frames: int

    @property
    def stages(self) -> list[str]:
        return ["decode[street.mp4]", "preprocess", "detect", "postprocess", "track", self.sink]


@pytest.fixture(scope="module")
def profiled(tmp_path_factory, street_clip) -> Profiled:
    """One `detstream profile` of the street clip with the default model."""
    clip, frames = street_clip
    root = tmp_path_factory.mktemp("prof")
    # relative paths keep the sink's stage name short, so table cells do not wrap
    result = run_cli("profile", "--source", str(clip), "--sink", "jsonl:out.jsonl", "--out", "prof",
                     "--metrics-port", "0", timeout=300, cwd=root)
    assert result.returncode == 0, result.stderr
    return Profiled(root / "prof", "sink[jsonl:out.jsonl]", result.stdout, result.stderr, frames)


def test_prints_the_table_and_names_the_bottleneck(profiled):
    report = json.loads((profiled.out / "report.json").read_text())
    assert "detstream profile" in profiled.stdout
    for stage in profiled.stages:
        assert stage in profiled.stdout
    assert f"bottleneck: {report['bottleneck']}" in profiled.stdout
    assert f"{report['bottleneck']} *" in profiled.stdout  # marked in the table
    assert "Prometheus metrics at http://" in profiled.stderr  # --metrics-port works under profile too


def test_report_has_every_figure_and_the_counts_add_up(profiled):
    report = json.loads((profiled.out / "report.json").read_text())
    sink, frames, stages = profiled.sink, profiled.frames, profiled.stages
    assert report["schema"] == "detstream.profile/v1" and report["exit_code"] == 0
    assert report["frame_counts"] == {stage: frames for stage in stages}
    assert report["bottleneck"] in stages
    for name in stages:
        stage = report["stages"][name]
        for key in ("service_ms", "batch_service_ms", "queue_wait_ms"):
            assert set(stage[key]) == {"count", "mean", "p50", "p95", "p99", "max"}
        assert stage["service_ms"]["count"] == frames
        assert 0 < stage["busy"] <= 1 and stage["fps"] > 0 and stage["errors"] == 0
    source = report["sources"]["street.mp4"]
    assert source["health"]["state"] == "finished" and source["health"]["reconnects"] == 0
    assert source["latency_ms"][sink]["count"] == frames
    assert report["trace"] == {"file": "trace.json", "spans": frames * len(stages), "limit": 200_000,
                               "capped": False, "dropped_spans": 0}
    points = report["timeline"]["points"]
    assert points and set(points[-1]["fps"]) == set(stages)
    assert set(points[-1]["queue_depth"]) == {"source[street.mp4]", "batches", "results", "detections", f"input of {sink}"}


def test_trace_has_a_span_per_frame_per_stage_on_named_thread_tracks(profiled):
    events = json.loads((profiled.out / "trace.json").read_text())["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    frames, stages = profiled.frames, profiled.stages
    assert sorted(names.values()) == sorted(stages)  # one track per stage thread
    spans = [e for e in events if e["ph"] == "X"]
    assert Counter(e["name"] for e in spans) == {stage: frames for stage in stages}
    for span in spans:
        assert names[span["tid"]] == span["name"]  # each span sits on its stage's track
        assert span["ts"] >= 0 and span["dur"] >= 0 and isinstance(span["pid"], int)
    for stage in stages:
        seqs = sorted(e["args"]["seq"] for e in spans if e["name"] == stage)
        assert seqs == list(range(frames))


def test_chart_is_a_png(profiled):
    data = (profiled.out / "timeline.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_capped_trace_is_reported(tmp_path, videos):
    config = load_config(None, {"sources": [str(videos["b"])], "sinks": [f"jsonl:{tmp_path / 'out.jsonl'}"]})
    result = profile(config, tmp_path / "prof", trace_limit=20, engine=BlobEngine())
    trace = result.report["trace"]
    # 25 frames through decode, preprocess, detect, postprocess, track and one sink
    assert (trace["spans"], trace["capped"], trace["dropped_spans"]) == (20, True, 25 * 6 - 20)
    spans = [e for e in json.loads(result.files["trace"].read_text())["traceEvents"] if e["ph"] == "X"]
    assert len(spans) == 20
    assert result.report["frame_counts"]["postprocess"] == 25  # the figures are complete regardless


def test_an_out_folder_that_cannot_be_made_fails_before_the_run(tmp_path, videos):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_cli("profile", "--source", str(videos["b"]), "--sink", "jsonl:-", "--out", str(blocker / "prof"))
    assert result.returncode == 2
    assert "cannot create the folder" in result.stderr and "Traceback" not in result.stderr
