"""CloudWatch statistics over weighted Values/Counts data equal the statistics over the same data expanded."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, MetricDatumBase

from medic_tools.world.metric_statistics import WeightedDatum, raw_samples, statistic_value

T0 = datetime(2026, 1, 5, 12, 0)
PERCENTILES = ("p0", "p1", "p50", "p90", "p95", "p99", "p99.9", "p100", "tm50", "tm90", "tm99", "tm100")
EXACT = ("SampleCount", "Minimum", "Maximum", *(p for p in PERCENTILES if p.startswith("p")))
APPROXIMATE = ("Sum", "Average", *(p for p in PERCENTILES if p.startswith("tm")))


def weighted(values: list[float], counts: list[int]) -> WeightedDatum:
    return WeightedDatum("AWS/Lambda", "Duration", values, [float(c) for c in counts], [], T0)


def single(value: float) -> MetricDatum:
    return MetricDatum("AWS/Lambda", "Duration", value, [], T0)


def expected(samples: list[float], stat: str) -> float:
    """The statistic over raw samples, computed the plain way (nearest rank over the sorted, expanded list)."""
    ordered = sorted(samples)
    if stat == "SampleCount":
        return float(len(ordered))
    if stat == "Sum":
        return math.fsum(ordered)
    if stat == "Average":
        return math.fsum(ordered) / len(ordered)
    if stat == "Minimum":
        return ordered[0]
    if stat == "Maximum":
        return ordered[-1]
    percentile = Decimal(stat.lstrip("ptm"))
    rank = max(1, math.ceil(percentile * len(ordered) / 100))
    return math.fsum(ordered[:rank]) / rank if stat.startswith("tm") else ordered[rank - 1]


durations = st.floats(min_value=0, max_value=30_000, allow_nan=False).map(lambda v: round(v, 2))
members = st.lists(st.tuples(durations, st.integers(min_value=0, max_value=400)), min_size=1, max_size=150)


@settings(max_examples=300)
@given(st.lists(members, min_size=1, max_size=4), st.lists(durations, max_size=5))
def test_weighted_statistics_equal_the_expanded_ones(
    period: list[list[tuple[float, int]]], singles: list[float]
) -> None:
    data: list[MetricDatumBase] = [weighted([v for v, _ in m], [c for _, c in m]) for m in period]
    data += [single(v) for v in singles]
    samples = [v for m in period for v, c in m for _ in range(c)] + singles

    if not samples:
        assert all(statistic_value(data, stat) is None for stat in (*EXACT, *APPROXIMATE))
        return
    for stat in EXACT:
        assert statistic_value(data, stat) == expected(samples, stat), stat
    for stat in APPROXIMATE:
        assert math.isclose(statistic_value(data, stat) or 0.0, expected(samples, stat), rel_tol=1e-9, abs_tol=1e-9)


def test_a_datum_merges_duplicates_and_drops_zero_counts() -> None:
    datum = weighted([20.0, 5.0, 20.0, 7.0], [1, 2, 3, 0])

    assert datum.pairs == ((5.0, 2.0), (20.0, 4.0))
    assert (datum.sample_count, datum.sum, datum.min, datum.max) == (6.0, 90.0, 5.0, 20.0)


def test_counts_are_weights() -> None:
    data: list[MetricDatumBase] = [WeightedDatum("AWS/Lambda", "Duration", [1.0, 10.0], [0.5, 1.5], [], T0)]

    assert statistic_value(data, "SampleCount") == 2.0
    assert statistic_value(data, "Average") == 7.75
    # p50 needs a cumulative weight of 1.0: 0.5 at 1.0 is not enough, 2.0 at 10.0 is.
    assert statistic_value(data, "p50") == 10.0
    assert statistic_value(data, "p25") == 1.0


def test_percentiles_need_raw_samples_and_no_negative_value() -> None:
    def statistic_set(count: float, total: float, low: float, high: float) -> MetricAggregatedDatum:
        return MetricAggregatedDatum("AWS/Lambda", "Duration", low, high, count, total, [], T0)

    assert raw_samples([statistic_set(4, 12, 3, 3)]) == [(3.0, 4.0)]
    assert raw_samples([statistic_set(1, 7, 7, 7)]) == [(7.0, 1.0)]
    assert raw_samples([statistic_set(10, 30, 1, 5)]) is None  # a summary of spread values
    assert raw_samples([statistic_set(2, 7, 3, 3)]) is None  # Sum is not Minimum x SampleCount
    assert raw_samples([weighted([-1.0, 4.0], [1, 1])]) is None
    assert statistic_value([weighted([-1.0, 4.0], [1, 1])], "Minimum") == -1.0


def test_a_member_whose_counts_are_all_zero_holds_no_sample() -> None:
    assert statistic_value([weighted([3.0], [0])], "SampleCount") is None
    assert statistic_value([weighted([3.0], [0]), single(5.0)], "p50") == 5.0
