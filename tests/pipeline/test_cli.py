"""The `detstream` console script as a user runs it: real model, real files, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support import DETSTREAM, run_cli
from pipeline.core.messages import validate_message
from support import write_video

MODEL = "arch:fasterrcnn_mobilenet_v3_large_320_fpn"  # a real torchvision model, untrained


def test_two_files_give_exactly_their_frame_count(tmp_path, videos):
    out = tmp_path / "x.jsonl"
    result = run_cli(
        "run", "--source", str(videos["a"]), "--source", str(videos["b"]),
        "--sink", f"jsonl:{out}", "--model", MODEL,
    )
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(messages) == 40 + 25
    assert all(validate_message(m) == [] for m in messages)
    assert {m["model"] for m in messages} == {"fasterrcnn_mobilenet_v3_large_320_fpn-untrained"}
    # the summary names every stage with its frame count
    for stage, frames in (("decode[a.mp4]", 40), ("decode[b.mp4]", 25), ("detect", 65), ("postprocess", 65)):
        assert any(stage in line and str(frames) in line for line in result.stderr.splitlines()), result.stderr


def test_bad_sources_are_one_clear_line_each(tmp_path, videos):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "readme.mp4"
    text.write_text("not a video\n" * 20)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(videos["b"].read_bytes()[:5000])
    out = tmp_path / "out.jsonl"
    result = run_cli(
        "run", "--source", str(videos["b"]), "--source", str(tmp_path / "missing.mp4"),
        "--source", str(empty), "--source", str(text), "--source", str(truncated),
        "--sink", f"jsonl:{out}", "--model", MODEL,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 4, result.stderr
    for name, reason in (
        ("missing.mp4", "file not found"),
        ("empty.mp4", "file is empty"),
        ("readme.mp4", "not a readable video"),
        ("truncated.mp4", "truncated"),
    ):
        assert any(name in e and reason in e for e in errors), (name, errors)
    assert len(out.read_text().splitlines()) == 25  # the good source finished


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--max-batch", "0"], "--max-batch 0: Input should be greater than or equal to 1"),
        (["--device", "gpu"], "--device gpu: not a device (allowed: cpu, cuda, cuda:N)"),
        (["--model", "CONFIG"], "not a detstream model file or engine package"),
        (["--model", "FOLDER"], "a folder but not an engine package"),
        (["--sink", "kafka:x"], "kafka:x"),
        (["--model", "nowhere.pt"], "model file not found: nowhere.pt"),
        (["--device", "cuda"] , "CUDA is not available"),
        (["--sink", "video:/proc/nope/a.mp4"], "cannot create /proc/nope"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path, videos, args, expected):
    (tmp_path / "a.json").write_text("{}")
    args = [{"CONFIG": str(tmp_path / "a.json"), "FOLDER": str(tmp_path)}.get(a, a) for a in args]
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA: the GPU case is not an error here")
    result = run_cli("run", "--source", str(videos["b"]), "--sink", f"jsonl:{tmp_path / 'out.jsonl'}", *args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and "weights_only" not in result.stderr
    # progress lines may come first (the first run of a session exports the default model)
    assert len([l for l in result.stderr.splitlines() if l.strip() and not l.startswith("detstream INFO:")]) <= 2, \
        result.stderr


@pytest.mark.parametrize("command", ["run", "profile"])
def test_no_sink_is_refused_with_a_hint_before_the_model_loads(tmp_path, videos, command):
    extra = ["--out", str(tmp_path / "prof")] if command == "profile" else []
    # a model that does not exist: the sink check comes first, before any loading
    result = run_cli(command, "--source", str(videos["b"]), "--model", "nowhere.pt", *extra)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no sinks" in lines[0] and "--sink jsonl:-" in lines[0], result.stderr
    assert not (tmp_path / "prof").exists()


def test_config_file_with_unknown_key(tmp_path, videos):
    config = tmp_path / "bad.yaml"
    config.write_text(f"sources: [{videos['b']}]\nsink: [jsonl:x.jsonl]\n")
    result = run_cli("run", str(config))
    assert result.returncode == 2
    assert "unknown key 'sink'" in result.stderr and "sinks" in result.stderr


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", 600, 640, 360)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_drains_flushes_and_exits_quickly(tmp_path, long_video, signum, code):
    out = tmp_path / "out.jsonl"
    video = tmp_path / "annotated.mp4"
    process = subprocess.Popen(
        [*DETSTREAM, "run", "--source", str(long_video), "--model", MODEL,
         "--sink", f"jsonl:{out}", "--sink", f"video:{video}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 90
        while not (out.exists() and len(out.read_text().splitlines()) >= 5):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no output within 90 s"
            time.sleep(0.1)
        sent = time.monotonic()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert took < 5.0, f"exit took {took:.1f} s"
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and "stopping" in stderr
    lines = out.read_text().splitlines()
    assert 5 <= len(lines) < 600
    messages = [json.loads(line) for line in lines]  # every line is whole JSON
    assert [m["seq"] for m in messages] == list(range(len(messages)))
    # the annotated video was closed properly: it decodes to the frames that were written
    import av

    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(messages)


def test_stdout_sink_and_config_file_with_flag_override(tmp_path, videos):
    config = tmp_path / "run.yaml"
    config.write_text(f"sources: [{videos['a']}]\nmax_frames: 20\nmodel:\n  path: {MODEL}\nsinks: ['jsonl:-']\n")
    result = run_cli("run", str(config), "--max-frames", "3")
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]  # stdout holds messages only
    assert [m["seq"] for m in messages] == [0, 1, 2]
    assert "postprocess" in result.stderr  # the summary goes to stderr


def test_run_says_what_is_running_and_v_after_the_command_adds_debug_lines(tmp_path, videos):
    out = tmp_path / "out.jsonl"
    result = run_cli("run", "-v", "--source", str(videos["b"]), "--sink", f"jsonl:{out}", "--max-frames", "3",
                     "--engine", "onnxruntime")
    assert result.returncode == 0, result.stderr
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("detstream INFO: running ")]
    assert re.search(r"running faster-compact-synth on ONNX Runtime \(OnnxRuntimeEngine\) on cpu, \d+ threads, "
                     r"input \d+x\d+ \(HxW\); ", line), line
    assert f"sources: {videos['b']}; sinks: jsonl:{out}" in line, line
    assert "detstream DEBUG: stage detect started" in result.stderr  # -v after `run` works
    assert "detstream DEBUG: settings in effect: " in result.stderr


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory, videos: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    """`detstream run` on a file with no flag beyond source and sink: one process for the
    tests that read its stderr (each start-up costs seconds)."""
    out = tmp_path_factory.mktemp("plain-run") / "o.jsonl"
    return run_cli("run", "--source", str(videos["b"]), "--sink", f"jsonl:{out}")


def test_without_v_there_are_no_debug_lines(plain_run):
    result = plain_run
    assert result.returncode == 0, result.stderr
    assert "DEBUG" not in result.stderr and "detstream INFO: running " in result.stderr


def test_the_start_line_masks_secrets():
    from types import SimpleNamespace

    from pipeline.run.runner import describe_run

    engine = SimpleNamespace(info=SimpleNamespace(name="m", input_size=(320, 576)), backend="PyTorch", device="cpu", threads=2)
    line = describe_run(engine, ["rtsp://admin:hunter2@cam/stream"], ["redis://:pw@host:6379/0"])
    assert line == ("running m on PyTorch (SimpleNamespace) on cpu, 2 threads, input 320x576 (HxW); "
                    "sources: rtsp://admin:***@cam/stream; sinks: redis://:***@host:6379/0")


def test_output_to_a_pipe_is_not_wrapped_at_80_columns(plain_run):
    result = plain_run
    assert result.returncode == 0, result.stderr
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("  finished: received 25")]  # the summary
    assert len(line) > 80 and "max age at detector" in line, result.stderr
