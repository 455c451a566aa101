"""The soak's curves in one PNG: RSS, fds, threads, queue depth, spool bytes, messages and
the sources' states over time, each fault marked where it began and ended."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the figure goes to a file
import matplotlib.pyplot as plt  # noqa: E402

from bench.soak_verdict import Fault  # noqa: E402

STATES = ["failed", "reconnecting", "connecting", "stalled", "paused", "finished", "streaming"]
FAULT_COLORS = {"camera_kill": "tab:red", "camera_stall": "tab:orange", "redis_restart": "tab:purple",
                "api_add_remove": "tab:green"}
SERIES = [("rss_mb", "RSS (MB)"), ("fds", "open fds"), ("threads", "threads"),
          ("queue_depth", "frames queued (all queues)"), ("spool_bytes", "spool (bytes)")]


def plot(samples: list[dict[str, float]], states: list[tuple[float, str, str]], faults: list[Fault],
         warmup_s: float, path: Path, title: str) -> Path:
    rows = len(SERIES) + 2
    figure, axes = plt.subplots(rows, 1, figsize=(11, 2.1 * rows), sharex=True)
    times = [s["t"] for s in samples]
    for axis, (key, label) in zip(axes, SERIES):
        axis.plot(times, [s[key] for s in samples], marker=".", linewidth=1)
        axis.set_ylabel(label, fontsize=8)
    messages = axes[len(SERIES)]
    messages.plot(times, [s["produced"] for s in samples], label="produced (JSONL)")
    messages.plot(times, [s["consumed"] for s in samples], label="consumed (Redis group)", linestyle="--")
    messages.set_ylabel("messages", fontsize=8)
    messages.legend(fontsize=7, loc="upper left")
    _states(axes[-1], states)
    for axis in axes:
        axis.axvspan(0, warmup_s, color="0.9", zorder=0)
        for fault in faults:
            color = FAULT_COLORS.get(fault.kind, "black")
            axis.axvline(fault.start, color=color, linewidth=0.8, alpha=0.8)
            if fault.end is not None:
                axis.axvspan(fault.start, fault.end, color=color, alpha=0.12)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=c, label=k) for k, c in FAULT_COLORS.items()]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="0.9", label="warm-up"))
    axes[0].legend(handles=handles, fontsize=7, ncol=5, loc="upper left")
    axes[0].set_title(title, fontsize=9)
    axes[-1].set_xlabel("seconds since the soak started")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _states(axis: plt.Axes, states: list[tuple[float, str, str]]) -> None:
    """One step line per source on a categorical axis of states."""
    sources = sorted({s for _, s, _ in states})
    for i, source in enumerate(sources):
        points = [(t, STATES.index(state) if state in STATES else -1) for t, s, state in states if s == source]
        offset = (i - len(sources) / 2) * 0.06  # sources in the same state stay apart
        axis.step([t for t, _ in points], [y + offset for _, y in points], where="post", label=source, linewidth=1)
    axis.set_yticks(range(len(STATES)), STATES, fontsize=7)
    axis.set_ylim(-1, len(STATES))
    axis.set_ylabel("source state", fontsize=8)
    axis.legend(fontsize=7, ncol=len(sources) or 1, loc="lower left")
