"""`detstream batch` on one machine: per-file outputs, bad files, resume, interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blobbatch import BAD, GOOD, job, results
from pipeline.core.config import load_config
from pipeline.core.events import validate_event
from pipeline.core.messages import validate_message
from pipeline.run.runner import run
from support import BlobEngine


def manifest(out: Path) -> dict[str, dict]:
    return {e["path"]: e for e in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}


def test_a_collection_gives_one_output_per_file_and_lists_the_bad_ones(tmp_path, collection):
    out = tmp_path / "out"
    report = job([str(collection)], out, decoders=3).run()
    assert report.exit_code == 1  # two files failed
    assert report.count("ok") == GOOD and report.count("failed") == 2
    assert {f.path for f in report.files.values() if f.status == "failed"} == set(BAD)
    assert "not a readable video" in report.files[BAD[0]].reason
    assert "truncated" in report.files[BAD[1]].reason or "moov" in report.files[BAD[1]].reason
    # the output tree mirrors the input tree; nothing of the bad files, no temp files
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    expected = sorted(f"{f.path}{suffix}" for f in report.files.values() if f.status == "ok"
                      for suffix in (".jsonl", ".events.jsonl"))
    assert written == sorted([*expected, ".lock", "manifest.jsonl", "report.json"])
    for rel in (f.path for f in report.files.values() if f.status == "ok"):
        messages = [json.loads(line) for line in (out / f"{rel}.jsonl").read_text().splitlines()]
        assert [m["seq"] for m in messages] == list(range(report.files[rel].frames))
        assert all(m["source"] == rel and validate_message(m) == [] for m in messages)
        # the file's tracks, each started and ended within the file's own events
        events = [json.loads(line) for line in (out / f"{rel}.events.jsonl").read_text().splitlines()]
        assert all(e["source"] == rel and validate_event(e) == [] for e in events)
        starts = sorted(e["track_id"] for e in events if e["type"] == "track_start")
        assert starts and starts == sorted(e["track_id"] for e in events if e["type"] == "track_end")
    entries = manifest(out)
    assert sorted(entries) == sorted(f.path for f in report.files.values() if f.status == "ok")
    assert list(entries) == sorted(entries)  # compacted: sorted by path
    saved = json.loads((out / "report.json").read_text())
    assert saved["counts"] == {"ok": GOOD, "failed": 2, "skipped": 0, "interrupted": 0}
    assert [f["path"] for f in saved["files"] if f["status"] == "failed"] == sorted(BAD)


def test_per_file_results_equal_a_plain_run_of_that_file(tmp_path, collection):
    out = tmp_path / "out"
    job([str(collection / "day1")], out, decoders=4).run()
    clip = collection / "day1" / "clip04.mp4"
    config = load_config(None, {"sources": [{"uri": str(clip), "name": "clip04.mp4"}], "sinks": [f"jsonl:{tmp_path / 'one.jsonl'}"]})
    run(config, BlobEngine())
    alone = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    assert [m["detections"] for m in results(out, "clip04.mp4")] == [m["detections"] for m in alone]


def test_a_rerun_skips_finished_files_and_redoes_changed_ones(tmp_path, collection):
    out = tmp_path / "out"
    job([str(collection)], out).run()
    first = manifest(out)
    again = job([str(collection)], out).run()
    assert again.count("skipped") == GOOD and again.count("ok") == 0
    assert again.count("failed") == 2  # failures are never recorded: tried again
    # a changed input, a deleted output, another model: those are redone
    changed = "day1/clip01.mp4"
    os.utime(collection / changed, ns=(time.time_ns(), time.time_ns()))
    (out / "day2/cam/clip02.mp4.jsonl").unlink()
    third = job([str(collection)], out).run()
    assert sorted(f.path for f in third.files.values() if f.status == "ok") == [changed, "day2/cam/clip02.mp4"]
    assert (out / "day2/cam/clip02.mp4.jsonl").is_file()
    assert manifest(out)[changed]["mtime_ns"] != first[changed]["mtime_ns"]


def test_force_or_other_settings_redo_everything(tmp_path, collection):
    out = tmp_path / "out"
    inputs = [str(collection / "day1")]
    job(inputs, out).run()
    assert job(inputs, out).run().count("skipped") == 6
    assert job(inputs, out, force=True).run().count("ok") == 6
    assert job(inputs, out, format="coco").run().count("ok") == 6  # results of another kind
    assert job(inputs, out, format="coco", decoders=3).run().count("skipped") == 6  # speed only


def test_coco_results_and_annotated_videos(tmp_path, collection):
    out = tmp_path / "out"
    report = job([str(collection / "day2")], out, format="coco", video=True).run()
    assert report.exit_code == 0
    records = json.loads((out / "cam/clip02.mp4.coco.json").read_text())
    assert len(records) == report.files["cam/clip02.mp4"].detections == 3 * 10
    assert {r["image_id"] for r in records} == set(range(10))
    assert all(len(r["bbox"]) == 4 and r["category_id"] in (1, 2, 3) for r in records)
    assert (out / "cam/clip02.mp4.annotated.mp4").stat().st_size > 0
    assert sorted(manifest(out)["cam/clip02.mp4"]["outputs"]) == [
        "cam/clip02.mp4.annotated.mp4", "cam/clip02.mp4.coco.json", "cam/clip02.mp4.events.jsonl"]


def _blob_batch(out: Path, *inputs: Path) -> subprocess.Popen:
    script = Path(__file__).with_name("blobbatch.py")
    return subprocess.Popen([sys.executable, str(script), str(out), *map(str, inputs)], stderr=subprocess.PIPE, text=True)


def _wait_for_entries(out: Path, n: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240  # generous: a busy machine takes long to start Python + torch
    while time.monotonic() < deadline and process.poll() is None:
        path = out / "manifest.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"the batch did not finish {n} files: {process.poll()}")


@pytest.mark.timeout(600)
def test_a_killed_run_leaves_only_whole_outputs_and_a_rerun_finishes_the_rest(tmp_path, collection):
    out = tmp_path / "out"
    process = _blob_batch(out, collection)
    try:
        _wait_for_entries(out, 4, process)
    finally:
        process.kill()  # SIGKILL: no clean-up at all
        process.wait()
    done = set(manifest(out))
    assert 4 <= len(done) < GOOD
    # every output with a final name belongs to a finished file; the rest is in .partial
    finals = {p.relative_to(out).as_posix().removesuffix(".jsonl").removesuffix(".events")
              for p in out.rglob("*.jsonl") if ".partial" not in p.parts}
    assert finals - {"manifest"} == done
    report = job([str(collection)], out).run()
    assert {f.path for f in report.files.values() if f.status == "skipped"} == done
    assert {f.path for f in report.files.values() if f.status == "ok"} == {f"{p}" for p in manifest(out)} - done
    assert len(manifest(out)) == GOOD and not (out / ".partial").exists()


@pytest.mark.timeout(600)
def test_ctrl_c_finishes_the_files_in_flight_and_exits_130(tmp_path, collection):
    out = tmp_path / "out"
    inputs = [collection / "day1", collection / "day2"]  # no bad file: the exit code is the signal's
    process = _blob_batch(out, *inputs)
    try:
        _wait_for_entries(out, 2, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    saved = json.loads((out / "report.json").read_text())
    assert saved["signal"] == "SIGINT" and saved["counts"]["interrupted"] > 0
    assert len(manifest(out)) == saved["counts"]["ok"]
    report = job([str(p) for p in inputs], out).run()
    assert report.count("skipped") == saved["counts"]["ok"]
    assert report.count("skipped") + report.count("ok") == 12
