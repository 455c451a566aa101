"""The fixed-size histogram behind every latency figure: percentiles, intervals, export."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.core.histogram import BUCKETS, LogHistogram, bucket_of, lower_edge, upper_edge

BUCKET_WIDTH = 10 ** (1 / 20) - 1  # relative width of one bucket, about 12 %


def filled(values) -> LogHistogram:
    histogram = LogHistogram()
    for value in values:
        histogram.observe(float(value))
    return histogram


@pytest.mark.parametrize("distribution", ["uniform", "lognormal", "bimodal"])
def test_percentiles_are_within_one_bucket_of_the_exact_ones(distribution):
    rng = np.random.default_rng(0)
    values = {
        "uniform": rng.uniform(0.001, 0.2, 20_000),
        "lognormal": rng.lognormal(math.log(0.05), 1.0, 20_000),
        "bimodal": np.concatenate([rng.normal(0.004, 0.0003, 15_000), rng.normal(0.9, 0.05, 5_000)]),
    }[distribution]
    snapshot = filled(values).snapshot()
    assert snapshot.count == len(values)
    assert snapshot.sum == pytest.approx(values.sum())
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(values, q))
        assert snapshot.percentile(q) == pytest.approx(exact, rel=BUCKET_WIDTH)


def test_equal_values_give_exact_percentiles_and_empty_gives_none():
    assert LogHistogram().snapshot().percentile(0.5) is None
    assert LogHistogram().snapshot().summary_ms()["p99"] is None
    snapshot = filled([0.0123] * 7).snapshot()
    assert [snapshot.percentile(q) for q in (0.0, 0.5, 0.99, 1.0)] == [0.0123] * 4


def test_extremes_are_the_smallest_and_largest_values():
    snapshot = filled([0.002, 0.5, 3e-7, 2e5]).snapshot()  # below and above the bucket range too
    assert snapshot.percentile(0.0) == 3e-7
    assert snapshot.percentile(1.0) == 2e5
    assert snapshot.counts[0] == 1 and snapshot.counts[-1] == 1


def test_weighted_observations_count_once_per_frame():
    histogram = LogHistogram()
    histogram.observe(0.010, n=3)  # a batch of 3 frames, 30 ms
    histogram.observe(0.100)
    snapshot = histogram.snapshot()
    assert snapshot.count == 4
    assert snapshot.sum == pytest.approx(0.130)
    assert snapshot.percentile(0.5) == pytest.approx(0.010, rel=BUCKET_WIDTH)
    summary = snapshot.summary_ms()  # in milliseconds
    assert (summary["count"], summary["mean"], summary["max"]) == (4, 32.5, 100.0)
    assert summary["p50"] == pytest.approx(10.0, rel=BUCKET_WIDTH)
    assert summary["p99"] == pytest.approx(100.0, rel=BUCKET_WIDTH)


def test_since_gives_the_interval_only():
    histogram = filled([0.001] * 100)
    earlier = histogram.snapshot()
    for _ in range(10):
        histogram.observe(0.5)
    interval = histogram.snapshot().since(earlier)
    assert interval.count == 10
    assert interval.sum == pytest.approx(5.0)
    assert interval.percentile(0.5) == pytest.approx(0.5, rel=BUCKET_WIDTH)


def test_buckets_tile_the_range_without_gaps():
    for index in range(1, BUCKETS - 1):
        assert upper_edge(index) == pytest.approx(lower_edge(index + 1))
        middle = math.sqrt(lower_edge(index) * upper_edge(index))
        assert bucket_of(middle) == index
    assert bucket_of(0.0) == 0 and bucket_of(1e9) == BUCKETS - 1


def test_cumulative_counts_at_prometheus_bounds():
    snapshot = filled([0.0005, 0.002, 0.002, 0.02, 5.0]).snapshot()
    assert snapshot.cumulative([0.001, 0.01, 0.1, 1.0, 10.0]) == [1, 3, 4, 4, 5]

