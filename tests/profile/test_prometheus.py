"""Live metrics: /metrics scraped over HTTP while a run is going, label hygiene."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError
from pipeline.core.health import SourceHealth
from pipeline.run.metrics_server import MetricsCollector
from pipeline.core.metrics import Metrics
from pipeline.run.runner import RunSummary, run
from support import DETSTREAM, BlobEngine, write_video

MODEL = "arch:fasterrcnn_mobilenet_v3_large_320_fpn"  # a real torchvision model, untrained


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {labels: value} of every sample at /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets in LISTEN state on `port`, as the kernel sees them."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not os.path.exists(table):
            continue
        with open(table) as file:
            next(file)  # header
            for line in file:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                    continue
                raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, words))
    return found


def stage_frames(samples, stage: str) -> float:
    return samples.get("detstream_stage_frames_total", {}).get((("stage", stage),), 0.0)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("long") / "long.mp4", 200, 160, 120)


def test_counters_increase_between_two_scrapes_during_a_run(tmp_path, long_clip):
    port = free_port()
    sink = f"jsonl:{tmp_path / 'out.jsonl'}"
    config = load_config(None, {
        "sources": [{"uri": str(long_clip), "name": "cam1"}], "sinks": [sink],
        "metrics": {"port": port, "address": "127.0.0.1"},
    })
    result: list[RunSummary] = []
    thread = threading.Thread(target=lambda: result.append(run(config, BlobEngine(delay_s=0.02))), daemon=True)
    thread.start()
    sink_stage = f"sink[{sink}]"

    def scrape_when(condition, what: str):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                samples = scrape(port)
                if condition(samples):
                    return samples
            except OSError:
                pass  # not serving yet
            assert thread.is_alive(), f"the run ended before {what}"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    first = scrape_when(lambda s: stage_frames(s, sink_stage) >= 1, "the first frame")
    second = scrape_when(lambda s: stage_frames(s, sink_stage) >= stage_frames(first, sink_stage) + 10, "10 more frames")
    thread.join(timeout=120)
    assert result and result[0].exit_code == 0
    for stage in ("decode[cam1]", "preprocess", "detect", "postprocess", "track", sink_stage):
        assert stage_frames(second, stage) > stage_frames(first, stage), stage
        assert second["detstream_stage_busy_seconds_total"][(("stage", stage),)] > 0
        service = second["detstream_stage_service_seconds_count"][(("stage", stage),)]
        assert service == stage_frames(second, stage)
    assert (("queue", "batches"), ("stage", "detect")) in second["detstream_queue_depth"]
    latency = second["detstream_source_latency_seconds_count"][(("sink", sink_stage), ("source", "cam1"))]
    assert latency >= 10
    buckets = second["detstream_source_latency_seconds_bucket"]
    assert buckets[(("le", "+Inf"), ("sink", sink_stage), ("source", "cam1"))] == latency
    assert second["detstream_source_state"][(("source", "cam1"), ("state", "streaming"))] == 1.0
    assert second["detstream_source_frames_received_total"][(("source", "cam1"),)] >= 10
    with pytest.raises(OSError):  # the server closes with the run
        scrape(port)


def test_metrics_port_listens_on_loopback_only_by_default(tmp_path, long_clip):
    """`detstream run --metrics-port` without metrics.address: this machine only (no 0.0.0.0)."""
    port = free_port()
    process = subprocess.Popen(
        [*DETSTREAM, "run", "--source", str(long_clip), "--model", MODEL,
         "--sink", f"jsonl:{tmp_path / 'out.jsonl'}", "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 90
        while not (bound := listening_addresses(port)):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the metrics server did not start within 90 s"
            time.sleep(0.02)
        assert bound == {"127.0.0.1"}
        assert "detstream_stage_frames_total" in scrape(port)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert f"Prometheus metrics at http://127.0.0.1:{port}/metrics" in stderr


def test_labels_never_carry_credentials():
    name = "rtsp://admin:hunter2@cam.local/stream?token=s3cret"  # a source named after its URL
    metrics = Metrics({name: SourceHealth(name, live=True)})
    stage = metrics.stage(f"decode[{name}]")
    metrics.register(stage)
    metrics.add_queue(f"source[{name}]", "preprocess", lambda: 1, 2)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(metrics))
    text = generate_latest(registry).decode()
    assert "cam.local" in text
    assert "hunter2" not in text and "s3cret" not in text
    assert "admin:***@cam.local" in text  # the user name stays: it says who connects


def test_port_in_use_is_a_clear_error(tmp_path, videos):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = load_config(None, {"sources": [str(videos["b"])], "metrics": {"port": port, "address": "127.0.0.1"}})
        with pytest.raises(ConfigError, match=f"metrics.port {port}"):
            run(config, BlobEngine())


def test_port_needs_metrics_on():
    with pytest.raises(ConfigError, match="metrics = .*port needs enabled: true"):
        load_config(None, {"metrics": {"port": 9100, "enabled": False}})
