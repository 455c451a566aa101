"""Loss-curve PNG from a training log (JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def smooth(values: list[float], window: int) -> np.ndarray:
    if len(values) < window or window < 2:
        return np.asarray(values)
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_curves(log: Path, out: Path, title: str = "") -> None:
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    steps_records = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval" in r]
    figure, loss_axis = plt.subplots(figsize=(9, 5))
    window = max(1, len(steps_records) // 100)
    keys = ["loss"] + sorted({k for r in steps_records for k in r if k.startswith("loss_")})
    for key in keys:
        values = [r[key] for r in steps_records if key in r]
        steps = [r["step"] for r in steps_records if key in r]
        smoothed = smooth(values, window)
        loss_axis.plot(steps[len(steps) - len(smoothed) :], smoothed, label=key, linewidth=2 if key == "loss" else 1)
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel(f"loss (moving average of {window})")
    loss_axis.set_yscale("log")
    loss_axis.legend(loc="upper left", fontsize=8)
    if evals:
        ap_axis = loss_axis.twinx()
        for kind, style in (("bbox", "o-"), ("segm", "s--")):
            points = [(r["step"], r["eval"][kind]["AP"]) for r in evals if kind in r["eval"]]
            if points:
                ap_axis.plot(*zip(*points), style, color="black", label=f"{kind} AP")
        ap_axis.set_ylabel("COCO AP@[.5:.95] (val)")
        ap_axis.set_ylim(0, 1)
        ap_axis.legend(loc="upper right", fontsize=8)
    loss_axis.set_title(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
