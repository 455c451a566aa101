"""A fixed-size log-bucket histogram of durations, and percentiles read from it.

Metrics are always on and runs can last for days, so a stage must not keep its samples.
Durations (seconds) fall into 20 buckets per decade from 1 us to 10^4 s (plus one bucket
below and one above): 202 integers whatever the run length. A percentile is interpolated
inside its bucket and clipped to the smallest and largest value seen, so it is within one
bucket width (12 %) of the exact value, and exact when all samples are equal.

Bucket edges are powers of 10^(1/20), so the half-decade edges Prometheus histograms use
(1 ms, 3.16 ms, 10 ms, ...) are bucket edges and export without approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

PER_DECADE = 20
LOWEST_EXP = -6  # 1 microsecond
HIGHEST_EXP = 4  # 10 000 seconds
BUCKETS = (HIGHEST_EXP - LOWEST_EXP) * PER_DECADE + 2  # + below-lowest and above-highest


def lower_edge(index: int) -> float:
    """Smallest value of bucket `index` (0 for the bucket below the lowest edge)."""
    return 0.0 if index == 0 else 10.0 ** (LOWEST_EXP + (index - 1) / PER_DECADE)


def upper_edge(index: int) -> float:
    """Smallest value of the next bucket (infinity for the last bucket)."""
    return math.inf if index == BUCKETS - 1 else lower_edge(index + 1)


def bucket_of(value: float) -> int:
    if value < 10.0**LOWEST_EXP:
        return 0
    index = int((math.log10(value) - LOWEST_EXP) * PER_DECADE) + 1
    return min(index, BUCKETS - 1)


class LogHistogram:
    """Counts durations into fixed buckets. Written by one thread; read via `snapshot()`.

    One writer means no lock on the hot path: each stage's histograms are only ever
    updated by the stage's own thread, and a reader copies the counts (one C-level list
    copy, atomic under the GIL).
    """

    __slots__ = ("counts", "sum", "min", "max")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.sum = 0.0
        self.min = math.inf
        self.max = 0.0

    def observe(self, value: float, n: int = 1) -> None:
        """Record `value` seconds, `n` times (a batch's per-frame share counts once per frame)."""
        self.counts[bucket_of(value)] += n
        self.sum += value * n
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(tuple(self.counts), self.sum, self.min, self.max)


@dataclass(frozen=True)
class HistogramSnapshot:
    counts: tuple[int, ...]
    sum: float
    min: float  # inf when empty
    max: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def since(self, earlier: HistogramSnapshot) -> HistogramSnapshot:
        """What was recorded after `earlier` (a snapshot of the same histogram).

        min and max stay the whole run's: they still bound the interval's values.
        """
        counts = tuple(a - b for a, b in zip(self.counts, earlier.counts))
        return HistogramSnapshot(counts, self.sum - earlier.sum, self.min, self.max)

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1) in seconds; None when nothing was recorded."""
        total = self.count
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index, n in enumerate(self.counts):
            if n and seen + n >= rank:
                low = max(lower_edge(index), self.min)
                high = min(upper_edge(index), self.max)
                if high <= low:
                    return low
                return low + (high - low) * max(0.0, rank - seen) / n
            seen += n
        return self.max

    def cumulative(self, bounds: Sequence[float]) -> list[int]:
        """How many values fell below each bound; bounds must be bucket edges."""
        out = []
        for bound in bounds:
            last = round((math.log10(bound) - LOWEST_EXP) * PER_DECADE)  # buckets 0..last end at `bound`
            out.append(sum(self.counts[: last + 1]))
        return out

    def summary_ms(self) -> dict[str, float | int | None]:
        """count, mean, p50, p95, p99 and max in milliseconds (None when empty)."""
        total = self.count

        def ms(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds * 1000.0, 3)

        return {
            "count": total,
            "mean": ms(self.sum / total) if total else None,
            "p50": ms(self.percentile(0.50)),
            "p95": ms(self.percentile(0.95)),
            "p99": ms(self.percentile(0.99)),
            "max": ms(self.max) if total else None,
        }
