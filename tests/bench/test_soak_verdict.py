"""The soak's verdict on hand-made series: a flat run passes, each kind of leak, loss,
duplicate, slow recovery or disturbed bystander fails its own check (so the verdict can fail)."""

from __future__ import annotations

import math

import pytest

from bench.soak_verdict import RECOVERY_S, Fault, judge, warmup_s

DURATION = 600.0  # 10 minutes, a sample every 5 s
HEALTHY = ["steady", "loop"]
LOCKED = {"state": "connecting", "last_error": "401 Unauthorized", "counters": {"failed_attempts": 12}}


def series(rss_per_hour: float = 0.0, thread_leak_every_s: float = 0.0, fd_leak_every_s: float = 0.0) -> list[dict]:
    """Samples with noise like the real ones: threads and fds jumping up for a sample now and then."""
    rows = []
    for i in range(int(DURATION / 5) + 1):
        t = i * 5.0
        spike = 6 if i % 7 == 3 else 0  # an API request and a reconnect in flight
        rows.append({
            "t": t,
            "rss_mb": 1400 + rss_per_hour * t / 3600 + 3 * math.sin(i),
            "threads": 40 + spike + (int(t / thread_leak_every_s) if thread_leak_every_s else 0),
            "fds": 14 + spike // 2 + (int(t / fd_leak_every_s) if fd_leak_every_s else 0),
        })
    return rows


def faults(recovery_s: float = 5.0) -> list[Fault]:
    return [Fault("camera_kill", "flaky", 100.0, 104.0, 104.0 + recovery_s),
            Fault("redis_restart", "redis", 200.0, 203.0, 205.0)]


def states(off: tuple[float, str] | None = None) -> list[tuple[float, str, str]]:
    rows = [(t, s, "streaming") for t in range(0, int(DURATION), 10) for s in HEALTHY]
    if off:
        rows.append((off[0], off[1], "reconnecting"))
    return rows


def verdict(**changes: object):
    ids = [f"e{i}" for i in range(1000)]
    args = dict(duration_s=DURATION, samples=series(), faults=faults(), states=states(), healthy=HEALTHY,
                locked=("locked", LOCKED, 0), produced=ids, consumed=list(ids), stream_duplicates=3,
                spool_bytes_end=0, exit_code=130)
    args.update(changes)
    return judge(**args)  # type: ignore[arg-type]


def failed(result) -> set[str]:
    return {c.name for c in result.checks if not c.passed}


def test_a_flat_run_passes():
    result = verdict()
    assert result.passed, [c for c in result.checks if not c.passed]
    assert result.warmup_s == 120.0  # 20 % of 10 min
    assert "repeats in the stream dropped by the consumer's dedupe 3" in result.checks[4].detail


def test_warmup_is_a_fifth_of_the_run_but_at_least_120_s():
    assert warmup_s(60) == 60 and warmup_s(180) == 120 and warmup_s(3600) == 720


def test_growth_is_not_judged_in_a_run_too_short_for_it():
    rows = [{**row, "threads": row["threads"] + i} for i, row in enumerate(series()[:49])]  # 4 minutes, leaking
    short = verdict(duration_s=180.0, samples=rows[:37])  # 60 s after warm-up
    assert [c.name for c in short.checks[:3]] == ["threads flat (not judged)", "fds flat (not judged)",
                                                   "RSS bounded (not judged)"]
    assert short.passed
    assert "threads flat" in failed(verdict(duration_s=240.0, samples=rows))  # 120 s after warm-up: judged


@pytest.mark.parametrize("leak, check", [
    ({"thread_leak_every_s": 60.0}, "threads flat"),  # one thread a minute never exits
    ({"fd_leak_every_s": 30.0}, "fds flat"),  # a socket left open every 30 s
    ({"rss_per_hour": 120.0}, "RSS bounded"),
])
def test_a_leaking_series_fails(leak, check):
    assert failed(verdict(samples=series(**leak))) == {check}


def test_rss_noise_in_a_short_run_passes_but_a_steady_climb_does_not():
    # 40 MB/h for 10 minutes is under the bound (and a 5 MB rise, under the 10 MB noise floor)
    assert not failed(verdict(samples=series(rss_per_hour=40.0)))
    assert "RSS bounded" in failed(verdict(samples=series(rss_per_hour=400.0)))


def test_loss_duplicates_and_strangers_fail_delivery():
    ids = [f"e{i}" for i in range(100)]
    for consumed in (ids[:-1], ids + ["e5"], ids + ["other"]):
        assert failed(verdict(produced=ids, consumed=consumed)) == {"exactly once by event_id"}
    assert failed(verdict(produced=[], consumed=[])) == {"exactly once by event_id"}  # nothing ran


def test_slow_or_missing_recovery_fails():
    assert failed(verdict(faults=faults(recovery_s=RECOVERY_S + 1))) == {"every fault recovered"}
    never = [Fault("camera_stall", "sleepy", 100.0, 110.0, None)]
    assert failed(verdict(faults=never)) == {"every fault recovered"}


def test_a_disturbed_bystander_or_an_open_lock_fails():
    assert failed(verdict(states=states(off=(300.0, "steady")))) == {"healthy sources undisturbed"}
    assert failed(verdict(states=states(off=(60.0, "steady")))) == {"healthy sources undisturbed"}  # warm-up too
    streamed = {**LOCKED, "state": "streaming"}
    assert failed(verdict(locked=("locked", streamed, 0))) == {"wrong password contained"}
    assert failed(verdict(locked=("locked", LOCKED, 5))) == {"wrong password contained"}


def test_spool_left_and_unclean_exit_fail():
    assert failed(verdict(spool_bytes_end=120)) == {"spool drained"}
    assert failed(verdict(exit_code=None)) == {"clean shutdown"}
