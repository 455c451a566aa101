"""The profile chart: throughput, latency and queue depths of a run over time (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend


def _series(points: list[dict[str, Any]], key: str) -> dict[str, tuple[list[float], list[float]]]:
    """name -> (times, values) of one figure, skipping samples where it had no value."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for point in points:
        for name, value in point[key].items():
            if value is not None:
                times, values = out.setdefault(name, ([], []))
                times.append(point["t"])
                values.append(value)
    return out


def write_chart(points: list[dict[str, Any]], path: Path, title: str) -> None:
    figure = Figure(figsize=(11, 10), layout="constrained")
    fps_axes, latency_axes, queue_axes = figure.subplots(3, 1, sharex=True)
    figure.suptitle(title)

    for name, (times, values) in _series(points, "fps").items():
        fps_axes.plot(times, values, label=name)
    fps_axes.set_ylabel("frames/s")
    fps_axes.set_title("throughput per stage", loc="left")

    for name, (times, values) in _series(points, "service_p50_ms").items():
        latency_axes.plot(times, values, label=f"{name} service")
    for name, (times, values) in _series(points, "latency_p50_ms").items():
        latency_axes.plot(times, values, linestyle="--", label=f"end to end {name}")
    latency_axes.set_yscale("log")
    latency_axes.set_ylabel("ms (p50 per sample)")
    latency_axes.set_title("service time per frame per stage; end-to-end latency per source", loc="left")

    for name, (times, values) in _series(points, "queue_depth").items():
        queue_axes.step(times, values, where="post", label=name)
    queue_axes.set_ylabel("items")
    queue_axes.set_xlabel("seconds since start")
    queue_axes.set_title("queue depths", loc="left")

    for axes in (fps_axes, latency_axes, queue_axes):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.savefig(path, dpi=100)
