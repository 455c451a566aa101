"""The soak's verdict: plain rules over the sampled series, the fault log and the delivery
record (bench/soak.py collects them; tests/bench/test_soak_verdict.py holds hand-made
series against each rule).

Rules (docs/soak.md states them with their reasons):

- warm-up: the first WARMUP_SHARE of the run, at least WARMUP_MIN_S; nothing in it counts
  for the growth rules (the model's first calls at each batch size, allocator arenas, the
  first connections: RSS settled 55-110 s into three 3-minute soaks, measured).
- the growth rules judge only a window after warm-up of at least MIN_WINDOW_S; a shorter
  run (the one-minute test) reports them as not judged, which passes: it checks the
  harness and the recoveries, the long run judges leaks.
- threads and fds: the post-warm-up samples are cut in thirds; the median of the last
  third may exceed the median of the first by at most THREAD_TOLERANCE / FD_TOLERANCE.
  The median, not the peak nor the floor: threads and fds come and go with the faults
  themselves (a visitor camera's reader, an API request's thread, a connection attempt, a
  camera that is down has none), so single samples move by 5-10 (measured); what leaks
  is never released and lifts every later sample, by one per leaking event, which in a
  long run with dozens of faults passes the tolerance.
- RSS: the least-squares slope after warm-up below RSS_MB_PER_HOUR, or the fitted rise over
  the whole post-warm-up window below RSS_NOISE_MB (RSS moves by 10-20 MB up and down as
  allocator arenas grow and shrink; in a run of a few minutes a slope is mostly that; in
  an hour the slope rule is the stricter one).
- spool: 0 bytes left once detstream has exited.
- delivery: every event_id of the JSONL file sink consumed from Redis, none consumed that
  was not produced, none handed to the consumer's handler twice. Repeats in the stream
  itself (a pipelined batch re-sent after Redis dropped the connection) are allowed, as
  docs/redis.md promises at-least-once delivery into the stream: they are counted and
  reported, and the consumer's dedupe by event_id must have dropped every one.
- faults: each fault's source streams again (or, for Redis, a message is consumed again)
  within RECOVERY_S of the fault's end; a camera added through the API streams within
  RECOVERY_S and its DELETE answers 204.
- bystanders: the healthy cameras and the looping file never leave `streaming` from the
  soak's start (the moment every one of them had streamed), warm-up included; the wrong-password camera never streams and keeps retrying (its failures stay
  its own).
- shutdown: detstream exits on SIGINT with code 130 within the drain timeout.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any

import numpy as np

WARMUP_SHARE = 0.2
WARMUP_MIN_S = 120.0
MIN_WINDOW_S = 120.0
THREAD_TOLERANCE = 3
FD_TOLERANCE = 3
RSS_MB_PER_HOUR = 50.0
RSS_NOISE_MB = 10.0
RECOVERY_S = 20.0
STREAMING = "streaming"


@dataclass
class Fault:
    """One fault the harness caused; times in seconds since the soak started."""

    kind: str  # camera_kill, camera_stall, redis_restart, api_add_remove
    target: str  # the source name, or "redis"
    start: float
    end: float | None = None  # when the fault was lifted (restart, SIGCONT, DELETE)
    recovered: float | None = None  # when its target worked again
    note: str = ""

    @property
    def recovery_s(self) -> float | None:
        if self.end is None or self.recovered is None:
            return None
        return max(0.0, self.recovered - self.end)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Verdict:
    passed: bool
    warmup_s: float
    checks: list[Check] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def warmup_s(duration_s: float) -> float:
    return min(duration_s, max(WARMUP_SHARE * duration_s, WARMUP_MIN_S))


def thirds(values: list[float]) -> tuple[list[float], list[float]]:
    """First and last third of a series (at least one value each when there are any)."""
    n = max(1, len(values) // 3)
    return values[:n], values[-n:]


def no_growth(name: str, values: list[float], tolerance: float) -> Check:
    if len(values) < 3:
        return Check(f"{name} flat", False, f"only {len(values)} samples after warm-up: too few to judge")
    first, last = thirds(values)
    passed = median(last) <= median(first) + tolerance
    return Check(f"{name} flat", passed,
                 f"median of the last third {median(last):g} vs first third {median(first):g} (tolerance "
                 f"+{tolerance:g}); ranges {min(last):g}-{max(last):g} vs {min(first):g}-{max(first):g}")


def rss_slope(times_s: list[float], rss_mb: list[float]) -> tuple[float, float]:
    """Least-squares slope in MB/hour, and the rise it implies over the window, in MB."""
    if len(times_s) < 2:
        return 0.0, 0.0
    slope = float(np.polyfit(np.array(times_s), np.array(rss_mb), 1)[0])  # MB per second
    return slope * 3600.0, slope * (times_s[-1] - times_s[0])


def rss_check(times_s: list[float], rss_mb: list[float]) -> Check:
    if len(times_s) < 3:
        return Check("RSS bounded", False, f"only {len(times_s)} samples after warm-up: too few to judge")
    per_hour, rise = rss_slope(times_s, rss_mb)
    passed = per_hour < RSS_MB_PER_HOUR or rise < RSS_NOISE_MB
    return Check("RSS bounded", passed,
                 f"slope {per_hour:+.1f} MB/h (bound {RSS_MB_PER_HOUR:g}), fitted rise {rise:+.1f} MB over "
                 f"{times_s[-1] - times_s[0]:.0f} s (noise floor {RSS_NOISE_MB:g} MB)")


def delivery_check(produced: list[str], consumed: list[str], stream_duplicates: int) -> Check:
    handled_twice = sum(n - 1 for n in Counter(consumed).values() if n > 1)
    produced_twice = sum(n - 1 for n in Counter(produced).values() if n > 1)
    lost = len(set(produced) - set(consumed))
    unknown = len(set(consumed) - set(produced))
    passed = not (handled_twice or produced_twice or lost or unknown) and bool(produced)
    return Check("exactly once by event_id", passed,
                 f"produced {len(produced)}, consumed {len(consumed)}: lost {lost}, unknown {unknown}, "
                 f"handled twice {handled_twice}, produced twice {produced_twice}; repeats in the stream "
                 f"dropped by the consumer's dedupe {stream_duplicates} (allowed: at-least-once into the stream)")


def fault_check(faults: list[Fault]) -> Check:
    late = [f for f in faults if f.recovery_s is None or f.recovery_s > RECOVERY_S]
    kinds = Counter(f.kind for f in faults)
    worst = max((f.recovery_s for f in faults if f.recovery_s is not None), default=0.0)
    detail = (f"{len(faults)} faults ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
              f"slowest recovery {worst:.1f} s (bound {RECOVERY_S:g} s)")
    if late:
        detail += "; not recovered in time: " + ", ".join(f"{f.kind} {f.target} at {f.start:.0f} s" for f in late)
    return Check("every fault recovered", not late, detail)


def bystander_check(states: list[tuple[float, str, str]], healthy: list[str], after_s: float) -> Check:
    """`states`: (time, source, state) as polled; the healthy sources must stay streaming."""
    off = [(t, s, state) for t, s, state in states if s in healthy and t >= after_s and state != STREAMING]
    seen = {s for t, s, _ in states if s in healthy and t >= after_s}
    missing = sorted(set(healthy) - seen)
    detail = f"{', '.join(healthy)}: streaming in every poll from {after_s:.0f} s on"
    if off:
        t, s, state = off[0]
        detail = f"{len(off)} polls not streaming, first {s} {state} at {t:.0f} s"
    if missing:
        detail += f"; never polled: {', '.join(missing)}"
    return Check("healthy sources undisturbed", not off and not missing, detail)


def locked_out_check(name: str, health: dict[str, Any] | None, produced_by_it: int) -> Check:
    """The wrong-password camera: retried, never streamed, produced nothing."""
    if health is None:
        return Check("wrong password contained", False, f"{name}: no state read")
    attempts = health.get("counters", health).get("failed_attempts", 0)
    state = health.get("state")
    passed = state in ("connecting", "reconnecting") and attempts >= 2 and produced_by_it == 0
    return Check("wrong password contained", passed,
                 f"{name}: state {state}, failed attempts {attempts}, messages {produced_by_it}, "
                 f"last error {health.get('last_error')!r}")


def judge(
    duration_s: float,
    samples: list[dict[str, float]],
    faults: list[Fault],
    states: list[tuple[float, str, str]],
    healthy: list[str],
    locked: tuple[str, dict[str, Any] | None, int],
    produced: list[str],
    consumed: list[str],
    stream_duplicates: int,
    spool_bytes_end: int,
    exit_code: int | None,
) -> Verdict:
    """Every rule of the module's docstring over one soak's records."""
    warm = warmup_s(duration_s)
    steady = [s for s in samples if s["t"] >= warm]
    times = [s["t"] for s in steady]
    per_hour, rise = rss_slope(times, [s["rss_mb"] for s in steady])
    window = times[-1] - times[0] if times else 0.0
    if window >= MIN_WINDOW_S:
        growth = [
            no_growth("threads", [s["threads"] for s in steady], THREAD_TOLERANCE),
            no_growth("fds", [s["fds"] for s in steady], FD_TOLERANCE),
            rss_check(times, [s["rss_mb"] for s in steady]),
        ]
    else:
        growth = [Check(f"{name} (not judged)", True, f"{window:.1f} s after a {warm:.0f} s warm-up, under the "
                        f"{MIN_WINDOW_S:.0f} s a growth rule needs: a short run checks recoveries, not leaks")
                  for name in ("threads flat", "fds flat", "RSS bounded")]
    checks = [
        *growth,
        Check("spool drained", spool_bytes_end == 0, f"{spool_bytes_end} bytes left in the spool"),
        delivery_check(produced, consumed, stream_duplicates),
        fault_check(faults),
        bystander_check(states, healthy, 0.0),  # from the moment each had first streamed: the soak's start
        locked_out_check(*locked),
        Check("clean shutdown", exit_code == 130, f"detstream exit code {exit_code} on SIGINT (expected 130)"),
    ]
    numbers = {
        "duration_s": round(duration_s, 1), "samples": len(samples), "samples_after_warmup": len(steady),
        "rss_mb_per_hour": round(per_hour, 1), "rss_rise_mb": round(rise, 1),
        "rss_mb": [round(min(s["rss_mb"] for s in samples), 1), round(max(s["rss_mb"] for s in samples), 1)]
        if samples else None,
        "threads": [min(s["threads"] for s in samples), max(s["threads"] for s in samples)] if samples else None,
        "fds": [min(s["fds"] for s in samples), max(s["fds"] for s in samples)] if samples else None,
        "produced": len(produced), "consumed": len(consumed), "stream_duplicates": stream_duplicates,
        "faults": dict(Counter(f.kind for f in faults)),
        "slowest_recovery_s": round(max((f.recovery_s or 0.0 for f in faults), default=0.0), 1),
    }
    return Verdict(all(c.passed for c in checks), warm, checks, numbers)


def markdown(verdict: Verdict, faults: list[Fault]) -> str:
    """The short report written next to the curves."""
    lines = [f"# Soak verdict: {'PASS' if verdict.passed else 'FAIL'}", "",
             f"{verdict.numbers.get('duration_s')} s, warm-up {verdict.warmup_s:.0f} s, "
             f"{verdict.numbers.get('samples')} samples. Curves: soak.png; series: samples.csv.", "",
             "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'pass' if c.passed else 'FAIL'} | {c.detail} |" for c in verdict.checks]
    lines += ["", "| fault | target | start s | end s | recovered after s |", "|---|---|---|---|---|"]
    for f in faults:
        recovery = f"{f.recovery_s:.1f}" if f.recovery_s is not None else "never"
        end = f"{f.end:.0f}" if f.end is not None else "-"
        lines.append(f"| {f.kind} | {f.target} | {f.start:.0f} | {end} | {recovery} |")
    return "\n".join(lines) + "\n"
