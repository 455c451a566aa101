"""The soak's faults, each kind on its own random schedule (bench/soak.py ticks them).

Each kind waits a random gap (0.5x to 1.5x `every_s`; the first one 0.2x to 1x, and within
the first half of the time faults may begin), begins
its fault, lifts it after a random hold, then watches its target until it works again
(the recovery the verdict bounds) before it schedules the next one. No fault begins in
the run's last `quiet_s`, so every fault has time to recover before the end.
"""

from __future__ import annotations

import random
from typing import Protocol

from bench.soak_verdict import RECOVERY_S, STREAMING, Fault


class Harness(Protocol):
    """What a fault may see and do (bench/soak.py's Soak)."""

    def state(self, source: str) -> str | None: ...

    def consumed(self) -> int: ...

    def mark(self, fault: Fault) -> None: ...


class Action(Protocol):
    """What a fault does to its target: begin it, lift it, tell whether the target works again."""

    kind: str
    target: str

    def begin(self) -> str: ...

    def lift(self) -> str: ...

    def recovered(self, harness: Harness) -> bool: ...


class Schedule:
    """One fault kind: begins, lifts and watches its faults one at a time."""

    def __init__(self, action: Action, rng: random.Random, every_s: float, hold_s: tuple[float, float],
                 quiet_from: float) -> None:
        self.action = action
        self.rng = rng
        self.every_s = every_s
        self.hold_s = hold_s
        self.quiet_from = quiet_from
        # the first one within the first half of the time faults may begin: a short run sees every kind
        self.next_at = rng.uniform(0.2, 1.0) * min(every_s, quiet_from / 2)
        self.active: Fault | None = None
        self.lift_at = 0.0
        self.seen: set[str] = set()  # states the target went through during the fault

    def tick(self, now: float, harness: Harness) -> None:
        fault = self.active
        if fault is None:
            if self.next_at <= now < self.quiet_from:
                note = self.action.begin()  # first: it may name its target (a new visitor)
                self.active = Fault(self.action.kind, self.action.target, now, note=note)
                self.lift_at = now + self.rng.uniform(*self.hold_s)
                self.seen = set()
                harness.mark(self.active)
            return
        state = harness.state(self.action.target)
        if state is not None:
            self.seen.add(state)
        if fault.end is None:
            watch = getattr(self.action, "watch", None)  # a check while the fault is in force
            if watch is not None:
                watch(harness, now - fault.start)
            if now >= self.lift_at:
                fault.end = now
                fault.note = "; ".join(filter(None, [fault.note, self.action.lift()]))
            return
        if self.action.recovered(harness):
            fault.recovered = now
        elif now - fault.end <= 2 * RECOVERY_S:
            return  # keep watching; past twice the bound the verdict fails it anyway
        seen = sorted(self.seen - {STREAMING})
        fault.note = "; ".join(filter(None, [fault.note, f"states seen: {', '.join(seen) or 'streaming only'}"]))
        self.active = None
        self.next_at = now + self.rng.uniform(0.5, 1.5) * self.every_s

    def close(self, now: float) -> None:
        """The run ends: a fault still in force is lifted (and left unrecovered)."""
        if self.active is not None and self.active.end is None:
            self.active.end = now
            self.action.lift()


class CameraKill:
    """SIGKILL the camera's server (power cut), start it again on the same port at lift."""

    kind = "camera_kill"
    fault, repair = "kill", "start"  # the RtspServer methods that begin and lift it

    def __init__(self, server: object, target: str) -> None:
        self.server = server
        self.target = target

    def begin(self) -> str:
        getattr(self.server, self.fault)()
        return ""

    def lift(self) -> str:
        getattr(self.server, self.repair)()
        return ""

    def recovered(self, harness: Harness) -> bool:
        return harness.state(self.target) == STREAMING


class CameraStall(CameraKill):
    """SIGSTOP the camera's server: its TCP connection stays up, no packet comes; SIGCONT at lift."""

    kind = "camera_stall"
    fault, repair = "pause", "resume"


class RedisRestart:
    """SIGKILL redis-server, start it again on the same port and data (appendfsync always) at
    lift; recovered once the consumer group receives a message again."""

    kind = "redis_restart"
    target = "redis"

    def __init__(self, server: object) -> None:
        self.server = server
        self.consumed_at_lift = 0

    def begin(self) -> str:
        self.server.kill()  # type: ignore[attr-defined]
        return ""

    def lift(self) -> str:
        self.server.start()  # type: ignore[attr-defined]
        self.consumed_at_lift = -1  # read at the next recovered() call
        return ""

    def recovered(self, harness: Harness) -> bool:
        if self.consumed_at_lift < 0:
            self.consumed_at_lift = harness.consumed()
            return False
        return harness.consumed() > self.consumed_at_lift


class ApiAddRemove:
    """POST a camera through the control API, DELETE it at lift; recovered once it streamed
    and its DELETE answered 204 and it is gone from GET /sources."""

    kind = "api_add_remove"

    def __init__(self, api: object, uri: str) -> None:
        self.api = api
        self.uri = uri
        self.count = 0
        self.target = "visitor-0"
        self.streamed: float | None = None  # seconds from the POST to streaming
        self.deleted: int | None = None

    def begin(self) -> str:
        self.target = f"visitor-{self.count}"
        self.count += 1
        self.streamed, self.deleted = None, None
        status = self.api.add({"uri": self.uri, "name": self.target, **self.api.camera_settings})  # type: ignore[attr-defined]
        return f"POST {status}"

    def lift(self) -> str:
        self.deleted = self.api.remove(self.target)  # type: ignore[attr-defined]
        streamed = f"streamed {self.streamed:.1f} s after the POST" if self.streamed is not None else "never streamed"
        return f"{streamed}; DELETE {self.deleted}"

    def recovered(self, harness: Harness) -> bool:
        in_time = self.streamed is not None and self.streamed <= RECOVERY_S
        return in_time and self.deleted == 204 and harness.state(self.target) is None

    def watch(self, harness: Harness, since_s: float) -> None:
        """Called every tick while the camera is in: it must stream before the DELETE."""
        if self.streamed is None and harness.state(self.target) == STREAMING:
            self.streamed = since_s
