"""Webhook and MQTT URIs (clear errors, credentials masked) and the webhook signature."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import shutil
from pathlib import Path

import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.webhook_signature import signature, signature_headers, verify
from stages.sinks import mqtt, webhook
from stages.sinks.mqtt import parse_mqtt_uri
from stages.sinks.registry import sink_kind
from stages.sinks.webhook import parse_webhook_uri
from support import make_tls_files, run_cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhook-mqtt.md"


@pytest.fixture(autouse=True)
def secret(monkeypatch) -> None:
    monkeypatch.setenv("DETSTREAM_WEBHOOK_SECRET", "s3cret")


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("webhook:https://u:hidden-pw@h/x?timout=5", "unknown option 'timout' (allowed: allow_http, batch,"),
        ("webhook:https://u:hidden-pw@h/x?timeout=-1", "timeout='-1' is not a number >= 0.001"),
        ("webhook:https://u:hidden-pw@h/x?detections=maybe", "detections='maybe' is not 1 or 0"),
        ("webhook:http://u:hidden-pw@example.com/x", "http:// would send events unencrypted"),
        ("webhook:https://u:hidden-pw@h:99999/x", "the port is not a number"),
        ("webhook:https://u:hidden-pw@h/x?ssl_ca_certs=/nowhere/ca.pem", "cannot load ssl_ca_certs=/nowhere/ca.pem"),
        ("webhook:https://u:hidden-pw@h/x?ssl_cert_reqs=optional", "is not required or none"),
        ("webhook:https://u:hidden-pw@h/x?secret_env=DETSTREAM_NOT_SET", "set the environment variable DETSTREAM_NOT_SET"),
        ("webhook:ftp://u:hidden-pw@h/x", "expected webhook:https://HOST"),
        ("mqtt://u:hidden-pw@h/x?qos=3", "qos='3' is not an integer from 0 to 2"),
        ("mqtt://u:hidden-pw@h/cams/+", "holds a wildcard"),
        ("mqtt://u:hidden-pw@h/x?ssl_ca_certs=ca.pem", "ssl_* options need an mqtts:// URL"),
        ("mqtt://u:hidden-pw@h/x?password_env=DETSTREAM_NOT_SET", "in the URL or in password_env, not both"),
        ("mqtt://u:hidden-pw@/x", "no host"),
        ("mqtts://u:hidden-pw@h/x?state_s=often", "state_s='often' is not a number >= 0"),
    ],
)
def test_bad_uris_are_config_errors_with_credentials_masked(uri, expected):
    with pytest.raises(ConfigError) as info:
        sink_kind(uri)  # what the runner calls before the model loads
    message = str(info.value)
    assert expected in message, message
    assert "hidden-pw" not in message and "u:***@" in message


def test_a_secret_in_the_uri_is_masked_and_env_secrets_are_read():
    target = parse_webhook_uri("webhook:https://hooks.example/x?secret=inline-s3cret")
    assert target.secret == b"inline-s3cret" and "inline-s3cret" not in target.display
    assert parse_webhook_uri("webhook:https://hooks.example/x").secret == b"s3cret"  # DETSTREAM_WEBHOOK_SECRET


def test_http_is_allowed_to_loopback_and_with_allow_http():
    assert not parse_webhook_uri("webhook:http://127.0.0.1:8080/hook").https
    assert parse_webhook_uri("webhook:http://localhost/hook").path == "/hook"
    assert parse_webhook_uri("webhook:http://events.lan/hook?allow_http=1").port == 80


def test_turning_tls_verification_off_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="detstream"):
        target = parse_webhook_uri("webhook:https://hooks.example/x?ssl_cert_reqs=none")
        parse_mqtt_uri("mqtts://broker.example/x?ssl_cert_reqs=none")
    assert target.tls is not None and not target.tls.check_hostname
    assert sum("TLS server verification is OFF" in r.getMessage() for r in caplog.records) == 2


def test_mqtt_topics_keep_one_source_one_level():
    target = parse_mqtt_uri("mqtt://broker/site%201/cams/")
    assert target.prefix == "site 1/cams" and target.port == 1883 and target.qos == 1
    assert target.topic("gate/a+b#2", "line_cross") == "site 1/cams/gate_a_b_2/line_cross"
    assert parse_mqtt_uri("mqtts://broker").prefix == "detstream" and parse_mqtt_uri("mqtts://broker").port == 8883


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event_id":"e1"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(b"k", 1700000000, body) == "sha256=" + expected
    headers = signature_headers(b"k", body, now=1700000000)
    assert headers == {"X-Detstream-Timestamp": "1700000000", "X-Detstream-Signature": "sha256=" + expected}


def test_verify_accepts_only_the_untouched_recent_body():
    body = b'{"event_id":"e1"}'
    headers = signature_headers(b"k", body, now=1700000000)
    assert verify(b"k", headers, body, now=1700000010)
    assert verify(b"k", {k.lower(): v for k, v in headers.items()}, body, now=1700000010)  # any header case
    assert not verify(b"k", headers, body + b" ", now=1700000010)  # body changed
    assert not verify(b"other", headers, body, now=1700000010)  # wrong secret
    assert not verify(b"k", headers, body, now=1700000000 + 301)  # replayed too late
    assert not verify(b"k", {**headers, "X-Detstream-Timestamp": "1700000001"}, body, now=1700000010)
    assert not verify(b"k", {}, body, now=1700000010)


def test_cli_refuses_a_bad_sink_option_in_one_line_before_the_model_loads(videos):
    result = run_cli("run", "--source", str(videos["b"]), "--model", "nowhere.pt",
                     "--sink", "mqtt://det:hunter2@127.0.0.1/x?qos=7")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "qos='7'" in lines[0] and "det:***@" in lines[0], result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def doc_block(language: str) -> str:
    block = re.search(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    assert block, f"docs/webhook-mqtt.md has no {language} block"
    return block.group(1)


def test_the_sink_uris_of_the_docs_are_valid(tmp_path, monkeypatch):
    shutil.copy(make_tls_files(tmp_path / "tls") / "ca.pem", tmp_path / "ca.pem")  # the example's ssl_ca_certs=ca.pem
    monkeypatch.chdir(tmp_path)
    uris = re.findall(r"--sink '([^']+)'", doc_block("sh"))
    assert len(uris) == 4
    for uri in uris:
        sink_kind(uri)


def test_the_receiver_check_of_the_docs_accepts_what_the_sink_signs():
    namespace: dict = {}
    exec(doc_block("python"), namespace)  # noqa: S102 - our own documentation
    body = b'{"event_id":"e1"}'
    headers = signature_headers(b"k", body)
    assert namespace["verify"](b"k", headers, body)
    assert not namespace["verify"](b"k", headers, body + b" ")
    assert not namespace["verify"](b"other", headers, body)


@pytest.mark.parametrize("module, section", [(webhook, "Webhook sink"), (mqtt, "MQTT sink")])
def test_every_option_is_in_the_docs(module, section):
    body = DOC.read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows = "\n".join(line for line in body.splitlines() if line.startswith("|"))
    assert [name for name in module.SINK_OPTIONS if f"`{name}`" not in rows] == []
