"""Training progress: a rich bar with the loss components and ETA; plain lines when the
output is not a terminal (background runs, CI logs)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

PLAIN_EVERY_S = 30.0  # one status line per this many seconds when not on a terminal


def describe(record: dict[str, Any]) -> str:
    parts = [f"loss {record['loss']:.3f}"]
    parts += [f"{k.removeprefix('loss_')} {v:.3f}" for k, v in record.items() if k.startswith("loss_")]
    parts += [f"lr {record['lr']:.2e}", f"{record['images_per_s']:.1f} img/s"]
    return " ".join(parts)


class TrainProgress:
    def __init__(self, console: Console, total: int, start: int) -> None:
        self.console = console
        self.total = total
        self.interactive = console.is_terminal
        self.bar = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=not self.interactive,
        )
        self.task = self.bar.add_task("train", total=total, completed=start, info="")
        self.last_plain = 0.0
        self.started = time.monotonic()
        self.start = start

    def __enter__(self) -> TrainProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def update(self, step: int, record: dict[str, Any]) -> None:
        info = describe(record)
        self.bar.update(self.task, completed=step, info=info)
        now = time.monotonic()
        if not self.interactive and (now - self.last_plain >= PLAIN_EVERY_S or step == self.total):
            self.last_plain = now
            rate = (step - self.start) / max(now - self.started, 1e-9)
            eta = (self.total - step) / rate if rate else float("inf")
            self.console.print(f"step {step}/{self.total} {info} ETA {eta / 60:.1f} min", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)
