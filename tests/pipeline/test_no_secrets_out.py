"""Credentials never leave (SECURITY.md): a run whose camera, Redis, MQTT and webhook URLs
carry passwords and secrets, checked across every output at once: log lines, the run
summary (health, metrics snapshot, sink stats, errors), the messages written, and the
Prometheus text of /metrics. The camera is an RTSP peer that speaks garbage, so the
source fails and its error is part of what is checked. Each output's own tests are listed
in SECURITY.md; this one catches a new output that forgets the masker."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.core.config import load_config
from pipeline.core.context import RunContext
from pipeline.run.metrics_server import MetricsCollector
from pipeline.run.runner import run
from hostile_media import GARBAGE, rtsp_peer
from support import BlobEngine, free_port

SECRETS = ("S3cretCam", "S3cretRedis", "S3cretMqtt", "S3cretHook")


@pytest.fixture
def garbage_rtsp() -> Iterator[int]:
    with rtsp_peer(GARBAGE) as port:
        yield port


def test_no_credential_in_any_output(tmp_path, videos, garbage_rtsp, caplog, monkeypatch):
    caplog.set_level("DEBUG", logger="detstream")
    closed = free_port()  # nothing listens: the push sinks spool and retry
    out = tmp_path / "out.jsonl"
    camera = f"rtsp://admin:{SECRETS[0]}@127.0.0.1:{garbage_rtsp}/stream?token={SECRETS[0]}"
    sources = [str(videos["b"]), {"uri": camera, "open_timeout_s": 2, "reconnect": {"max_attempts": 1, "initial_s": 0.1}}]
    sinks = [
        f"jsonl:{out}",
        f"redis://:{SECRETS[1]}@127.0.0.1:{closed}/0?timeout=0.2",
        f"mqtt://detector:{SECRETS[2]}@127.0.0.1:{closed}/site",
        f"webhook:http://127.0.0.1:{closed}/hook?secret={SECRETS[3]}",
    ]
    monkeypatch.setenv("DETSTREAM_CACHE", str(tmp_path / "cache"))  # the push sinks' spools
    ctx = RunContext()
    summary = run(load_config(None, {"sources": sources, "sinks": sinks, "shutdown_timeout_s": 2}), BlobEngine(), ctx)

    camera_name = "stream"
    assert summary.source_errors.get(camera_name), summary.source_errors  # the garbage peer failed the camera
    assert len(out.read_text().splitlines()) >= 25  # the file source finished despite it
    registry = CollectorRegistry()
    registry.register(MetricsCollector(ctx.metrics))
    outputs = {
        "logs": "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
        "summary": json.dumps(dataclasses.asdict(summary), default=str),
        "messages": out.read_text(),
        "metrics": generate_latest(registry).decode(),
    }
    for where, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} in the {where}"
    assert "admin:***@" in outputs["logs"]  # the masked form is what appears
    assert "cannot open rtsp://admin:***@" in summary.source_errors[camera_name]
