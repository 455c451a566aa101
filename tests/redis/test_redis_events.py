"""Track, zone and line events through the Redis sink: their own stream, read by a
consumer group all the while, across a redis-server killed and restarted mid-run."""

from __future__ import annotations

import json
import threading
import time

from pipeline.core.config import load_config
from pipeline.core.events import validate_event
from pipeline.redis.consumer import Consumer, ConsumerSettings
from pipeline.run.runner import RunSummary, run
from support import GatedEngine, counting_source, write_video


def test_events_arrive_exactly_once_across_a_redis_restart(tmp_path, persistent_redis):
    video = write_video(tmp_path / "long.mp4", 120, 160, 96)  # blobs wrap around: many tracks
    engine = GatedEngine((30, 80))
    gates, reached = engine.gates, engine.reached

    source = counting_source(video)
    url = f"{persistent_redis.url}?spool={tmp_path / 'spool'}&buffer=4&batch=8"
    config = load_config(None, {"sources": [source], "sinks": [url, f"jsonl:{tmp_path / 'out.jsonl'}"]})
    handled: list[dict] = []
    stop = threading.Event()
    consumer = Consumer(persistent_redis.client(), "detstream-events:{source}",
                        ConsumerSettings(group="alerts", name="c1", block_ms=100, rescan_s=0.2))
    reader = threading.Thread(target=consumer.run, args=(handled.append, stop))
    reader.start()
    result: list[RunSummary] = []
    runner = threading.Thread(target=lambda: result.append(run(config, engine)))
    runner.start()
    try:
        assert reached[30].wait(60)
        persistent_redis.kill()
        gates[30].set()
        assert reached[80].wait(60)
        time.sleep(1.0)  # an outage while events keep coming
        persistent_redis.start()
    finally:
        for gate in gates.values():
            gate.set()
        runner.join(120)
    (summary,) = result
    assert summary.exit_code == 0
    written = [json.loads(line) for line in (tmp_path / "out.events.jsonl").read_text().splitlines()]
    expected = [e["event_id"] for e in written]
    assert len(set(expected)) == len(expected) > 20
    assert {"track_start", "track_end", "line_cross", "zone_enter", "zone_exit"} <= {e["type"] for e in written}
    deadline = time.monotonic() + 30
    while len(handled) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # anything more (a duplicate handled twice) would show up now
    stop.set()
    reader.join(10)
    assert sorted(e["event_id"] for e in handled) == sorted(expected)  # every event, each handled once
    assert all(validate_event(e) == [] for e in handled)
    # events of the source arrive in the order they happened
    assert [e["event_id"] for e in handled] == expected
    client = persistent_redis.client()
    entries = client.xrange("detstream-events:long.mp4")
    assert {fields["event_id"] for _, fields in entries} == set(expected)  # repeats only with the same id
    # the frames kept their own stream; a chunk cut off by the kill may be there twice (at-least-once)
    frames = client.xrange("detstream:long.mp4")
    assert len({fields["event_id"] for _, fields in frames}) == 120 <= len(frames)
