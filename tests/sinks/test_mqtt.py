"""The MQTT sink in real runs against a real mosquitto broker, killed and restarted mid-run."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError
from pipeline.core.events import validate_event
from pipeline.run.runner import RunSummary, run
from push_support import MosquittoBroker, Subscriber, run_with_outage
from support import BlobEngine, make_tls_files, wait_for

PREFIX = "site-1/detstream"


@pytest.fixture
def broker(tmp_path) -> Iterator[MosquittoBroker]:
    server = MosquittoBroker(tmp_path / "mosquitto").start()
    yield server
    server.stop()


def stats_of(summary: RunSummary) -> dict[str, int]:
    (stats,) = [v for k, v in summary.sink_stats.items() if k.startswith("mqtt")]
    return stats


def test_broker_killed_mid_run_loses_no_event(tmp_path, broker):
    """SIGKILL the broker at engine call 30 (once the subscriber has every event so far),
    restart it a second after call 80: the sink spools meanwhile and publishes after the
    reconnection; the subscriber (a persistent session, QoS 1) gets every event."""
    subscriber = Subscriber(broker.port, f"{PREFIX}/#", persistent=True)
    try:
        url = f"mqtt://127.0.0.1:{broker.port}/{PREFIX}?spool={tmp_path / 'spool'}&buffer=4&batch=8"

        def received() -> set[str]:
            return {json.loads(m.payload)["event_id"] for m in subscriber.received(exclude="/state")}

        summary, lines = run_with_outage(tmp_path, url, received, broker.kill, broker.start)
        assert summary.exit_code == 0
        expected = [json.loads(line)["event_id"] for line in lines]
        assert len(set(expected)) == len(expected) > 20
        wait_for(lambda: received() == set(expected), "every event at the subscriber", 30)
        events = subscriber.received(exclude="/state")
        by_id = dict(zip(expected, lines))
        for message in events:  # each on its own topic; repeats only of the same record
            body = json.loads(message.payload)
            assert message.topic == f"{PREFIX}/long.mp4/{body['type']}"
            assert message.payload.decode() == by_id[body["event_id"]] and validate_event(body) == []
        assert list(dict.fromkeys(json.loads(m.payload)["event_id"] for m in events)) == expected  # in order
        stats = stats_of(summary)
        assert stats["spooled"] > 0 and stats["replayed"] > 0 and stats["left in spool"] == 0
        assert stats["published"] >= len(expected)
    finally:
        subscriber.close()
    # the retained state: the last word on the source is that it finished
    late = Subscriber(broker.port, f"{PREFIX}/+/state", name="late")
    try:
        wait_for(lambda: late.received(), "the retained state", 10)
        (state,) = late.received()
        assert state.retain and state.topic == f"{PREFIX}/long.mp4/state"
        body = json.loads(state.payload)
        assert body["schema"] == "detstream.state/v1" and body["state"] == "finished" and body["processed"] == 120
    finally:
        late.close()


def test_states_and_detections_topics(tmp_path, broker, videos):
    subscriber = Subscriber(broker.port, "detstream/#")
    try:
        url = f"mqtt://127.0.0.1:{broker.port}?detections=1&qos=2&spool={tmp_path / 'spool'}"
        summary = run(load_config(None, {"sources": [str(videos["b"])], "sinks": [url]}), BlobEngine())
        assert stats_of(summary)["left in spool"] == 0
        wait_for(lambda: subscriber.received("/state") and subscriber.received("/detections"), "messages", 10)
        frames = [json.loads(m.payload)["seq"] for m in subscriber.received("/detections")]
        assert frames == list(range(25))
        states = [json.loads(m.payload)["state"] for m in subscriber.received("/state")]
        assert states[-1] == "finished"
        topics = {m.topic for m in subscriber.received()}
        assert {"detstream/b.mp4/track_start", "detstream/b.mp4/state", "detstream/b.mp4/detections"} <= topics
    finally:
        subscriber.close()


def test_refused_credentials_stop_the_run_at_start_up(tmp_path, videos):
    broker = MosquittoBroker(tmp_path / "mosquitto", passwords={"detector": "right-pw"}).start()
    try:
        config = {"sources": [str(videos["b"])]}
        ok = f"mqtt://detector:right-pw@127.0.0.1:{broker.port}/cams?spool={tmp_path / 'spool'}"
        summary = run(load_config(None, {**config, "sinks": [ok]}), BlobEngine())
        assert stats_of(summary)["published"] > 0
        assert "mqtt://detector:***@127.0.0.1" in next(iter(summary.sink_stats))
        with pytest.raises(ConfigError) as info:
            run(load_config(None, {**config, "sinks": [ok.replace("right-pw", "wrong-pw")]}), BlobEngine())
        message = str(info.value)
        assert "refused the connection" in message and "wrong-pw" not in message and "detector:***@" in message
    finally:
        broker.stop()


def test_mqtts_verifies_the_broker(tmp_path, videos):
    tls = make_tls_files(tmp_path / "tls")
    broker = MosquittoBroker(tmp_path / "mosquitto", tls=tls).start()
    try:
        config = {"sources": [str(videos["b"])]}
        url = f"mqtts://127.0.0.1:{broker.port}/cams?spool={tmp_path / 'spool'}"
        summary = run(load_config(None, {**config, "sinks": [f"{url}&ssl_ca_certs={tls / 'ca.pem'}"]}), BlobEngine())
        assert stats_of(summary)["published"] > 0 and stats_of(summary)["left in spool"] == 0
        with pytest.raises(ConfigError) as info:  # the system CAs do not know our test CA
            run(load_config(None, {**config, "sinks": [url]}), BlobEngine())
        assert "TLS verification failed" in str(info.value)
    finally:
        broker.stop()
