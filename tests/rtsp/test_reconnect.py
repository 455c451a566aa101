"""A camera that goes away and comes back: frames resume, the reconnect is counted,
messages keep increasing `seq` across sessions, and the old session's tracks end cleanly
before the new session's begin (no identity carries over a reconnect)."""

from __future__ import annotations

import json

from pipeline.core.config import load_config
from pipeline.core.events import validate_event
from pipeline.core.messages import validate_message
from rtsp_support import BackgroundRun
from support import BlobEngine

LIVE = {"name": "cam", "open_timeout_s": 2.0, "read_timeout_s": 1.5, "reconnect": {"initial_s": 0.2, "max_s": 1.0}}


def test_killed_server_restarted_on_the_same_port_resumes(tmp_path, rtsp_server):
    server = rtsp_server()
    out = tmp_path / "out.jsonl"
    config = load_config(None, {"sources": [{**LIVE, "uri": server.url()}], "sinks": [f"jsonl:{out}"]})
    run = BackgroundRun(config, BlobEngine())
    run.wait_for(lambda: run.health("cam")["processed"] >= 20, 30, "first frames")

    server.kill()
    run.wait_for(lambda: run.health("cam")["state"] == "reconnecting", 10, "the loss to be noticed")
    before = run.health("cam")["processed"]
    rtsp_server(port=server.port)  # same port, as a rebooted camera
    run.wait_for(lambda: run.health("cam")["processed"] >= before + 20, 30, "frames after the restart")
    summary = run.stop()

    health = summary.health["cam"]
    assert health["reconnects"] == 1 and health["session"] == 1
    assert health["received"] == health["processed"] + sum(health["dropped"].values())
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(validate_message(m) == [] for m in messages)
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(set(seqs))  # increasing across the reconnect, no repeats
    sessions = [m["session"] for m in messages]
    assert sessions == sorted(sessions) and set(sessions) == {0, 1}
    # the new session starts a new stream clock: consumers tell segments apart by `session`
    first_of_new = next(m for m in messages if m["session"] == 1)
    last_of_old = [m for m in messages if m["session"] == 0][-1]
    assert first_of_new["seq"] > last_of_old["seq"] and first_of_new["pts"] < last_of_old["pts"]
    # tracks: every track of session 0 ended, with session 0's last frame, before session 1's events
    events = [json.loads(line) for line in (tmp_path / "out.events.jsonl").read_text().splitlines()]
    assert all(validate_event(e) == [] for e in events)
    old_ids = {d["track_id"] for m in messages if m["session"] == 0 for d in m["detections"]} - {None}
    new_ids = {d["track_id"] for m in messages if m["session"] == 1 for d in m["detections"]} - {None}
    assert old_ids and new_ids and not old_ids & new_ids
    first_new = next(i for i, e in enumerate(events) if e["session"] == 1)
    ended_old = {e["track_id"] for e in events[:first_new] if e["type"] == "track_end"}
    assert old_ids <= ended_old
    assert all(e["session"] == 0 for e in events[:first_new])  # the old tracks end as part of session 0
