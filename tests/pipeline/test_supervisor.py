"""The one supervisor: exit codes, signals (stop, then abort), joining with a grace period."""

from __future__ import annotations

import signal
import threading

import pytest

from pipeline.core.context import RunContext
from pipeline.core.signals import Signals
from pipeline.run.supervisor import exit_code, join
from stages.base import Stage


@pytest.mark.parametrize(
    "failed, signal_name, incomplete, code",
    [(False, None, False, 0), (False, "SIGINT", False, 130), (False, "SIGTERM", True, 143),
     (True, "SIGINT", False, 1), (False, None, True, 1), (True, None, False, 1)],
)
def test_exit_codes(failed, signal_name, incomplete, code):
    assert exit_code(failed, signal_name, incomplete) == code


def test_first_signal_stops_second_aborts_and_handlers_come_back():
    ctx = RunContext()
    signals = Signals.of(ctx)
    before = signal.getsignal(signal.SIGTERM)
    with signals.installed():
        signal.raise_signal(signal.SIGTERM)
        assert ctx.stop_reading.is_set() and not ctx.abort.is_set()
        signal.raise_signal(signal.SIGINT)
        assert ctx.abort.is_set()
    assert signals.received == "SIGTERM"  # the first one decides the exit code
    assert signal.getsignal(signal.SIGTERM) is before


def test_handlers_are_left_alone_outside_the_main_thread():
    signals = Signals(threading.Event())
    seen = []

    def install() -> None:
        with signals.installed():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert seen and seen[0] is not signals


class Draining(Stage):
    """Ends once asked to stop (it drains at once), or on abort when `drains` is False."""

    def __init__(self, name: str, ctx: RunContext, drains: bool = True, detached: bool = False) -> None:
        super().__init__(name, ctx)
        self.drains = drains
        self.detached_on_stop = detached
        self.stops = 0
        self.release = threading.Event()  # for a stage stuck even past the abort

    def on_stop(self) -> None:
        self.stops += 1

    def work(self) -> None:
        while not (self.drains and self.stops) and not self.ctx.abort.is_set():
            self.ctx.stop_reading.wait(0.01)
        if self.detached_on_stop or not self.drains:
            self.release.wait(10)


def started(*stages: Draining) -> list[Draining]:
    for stage in stages:
        stage.start()
    return list(stages)


def test_stop_calls_on_stop_once_and_stages_drain_within_the_grace_period():
    ctx = RunContext()
    stages = started(Draining("a", ctx), Draining("b", ctx))
    ctx.stop_reading.set()
    ticks = []
    assert join(stages, ctx, grace_s=5, tick=lambda: ticks.append(1)) == []
    assert [s.stops for s in stages] == [1, 1] and not ctx.abort.is_set() and ticks


def test_past_the_grace_period_the_run_aborts_and_stuck_stages_are_named():
    ctx = RunContext()
    slow = Draining("slow", ctx, drains=False)
    stages = started(Draining("quick", ctx), slow)
    ctx.stop_reading.set()
    try:
        assert join(stages, ctx, grace_s=0.2) == ["slow"]
        assert ctx.abort.is_set()
    finally:
        slow.release.set()


def test_detached_stages_are_not_waited_for_after_stop():
    ctx = RunContext()
    reader = Draining("live", ctx, detached=True)
    stages = started(reader, Draining("sink", ctx))
    ctx.stop_reading.set()
    try:
        assert join(stages, ctx, grace_s=5) == ["live"]  # left behind, not stuck: no abort
        assert not ctx.abort.is_set()
    finally:
        reader.release.set()
