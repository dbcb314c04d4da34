"""CloudWatch statistics over the world's stored metric data: one definition for GetMetricData, GetMetricStatistics
and the alarm evaluation (`medic_tools.world.alarms`), so all three see the same numbers.

What a period's data can hold, and how each kind counts (CloudWatch API reference, PutMetricData and MetricDatum):

* a single `Value`: one sample (moto's `MetricDatum`);
* a `StatisticValues` set: SampleCount samples summarized by Sum, Minimum and Maximum (moto's
  `MetricAggregatedDatum`);
* a `Values`/`Counts` member: each distinct value with the number of times it occurred ("Each unique value is listed
  just once in this array, and the corresponding number in the Counts array specifies the number of times that value
  occurred during the period"). The world keeps it whole, as one `WeightedDatum` (moto expanded each value `count`
  times into separate datums); a count is a weight, so `Counts: [2.5]` weighs 2.5 samples.

Statistics: SampleCount (the samples' total weight), Sum, Average, Minimum, Maximum, percentiles `pNN[.NN]` and
trimmed means `tmNN[.NN]` (the mean of the lowest NN % of the samples). A percentile is the nearest rank over the
weighted samples: the smallest value whose cumulative weight reaches p/100 × SampleCount (for whole counts, the
value at rank ceil(p/100 × n) of the expanded, sorted samples, rank 1 at least; CloudWatch's own estimator is
approximate). Percentiles need raw samples (GetMetricStatistics and PutMetricData API reference): a statistic set
counts only when its Minimum equals its Maximum and its Sum is Minimum × SampleCount (a SampleCount of 1 with
Minimum, Maximum and Sum equal is the case of one sample), and "percentile statistics are not available for metrics
when any of the metric values are negative numbers"; such periods get no value, as on AWS.

Metrics match on namespace, name and the *exact* dimension set ("You must specify the same dimensions that were used
when the metrics were created", GetMetricStatistics), and on the unit when one is asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any, Final

from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, MetricDatumBase, cloudwatch_backends

from medic_tools.world.moto_ext import DEFAULT_ACCOUNT_ID, DEFAULT_REGION

_EXTENDED_STAT: Final = re.compile(r"^(p|tm)(\d{1,3}(?:\.\d+)?)$", re.IGNORECASE)

#: (value, weight) pairs, sorted by value.
Samples = list[tuple[float, float]]


class WeightedDatum(MetricAggregatedDatum):
    """One PutMetricData member sent as `Values`/`Counts`, kept whole: its distinct values and their weights.

    It is also a statistic set (Sum, Minimum, Maximum, SampleCount), so moto's own code that only knows statistic
    sets (ListMetrics, Metrics Insights SELECT queries) still counts it right. Duplicate values are merged and
    zero counts dropped: a value that occurred 0 times is no sample.

    >>> datum = WeightedDatum("AWS/Lambda", "Duration", [10.0, 2000.0, 10.0], [60, 1, 39], [], None)
    >>> datum.pairs, datum.sample_count, datum.sum
    (((10.0, 99.0), (2000.0, 1.0)), 100.0, 2990.0)
    """

    def __init__(
        self,
        namespace: str,
        name: str,
        values: Sequence[float],
        counts: Sequence[float],
        dimensions: list[dict[str, str]],
        timestamp: datetime | None,
        unit: Any = None,
    ) -> None:
        merged: dict[float, float] = {}
        for value, count in zip(values, counts, strict=True):
            if count > 0:
                merged[float(value)] = merged.get(float(value), 0.0) + float(count)
        self.pairs: tuple[tuple[float, float], ...] = tuple(sorted(merged.items()))
        super().__init__(
            namespace,
            name,
            min_stat=self.pairs[0][0] if self.pairs else 0.0,
            max_stat=self.pairs[-1][0] if self.pairs else 0.0,
            sample_count=math.fsum(count for _, count in self.pairs),
            sum_stat=math.fsum(value * count for value, count in self.pairs),
            dimensions=dimensions,
            timestamp=timestamp,
            unit=unit,
        )


@dataclass(frozen=True)
class PeriodPoint:
    """One period of a metric: its start, the statistic (None when it cannot be computed) and the sample count."""

    start: datetime
    value: float | None
    sample_count: float


def percentile_of(stat: str) -> Decimal | None:
    """The percentile of `pNN`/`tmNN` statistics (e.g. Decimal('99.9') for p99.9), None for the others."""
    match = _EXTENDED_STAT.match(stat)
    if match is None:
        return None
    try:
        value = Decimal(match.group(2))
    except InvalidOperation:
        return None
    return value if 0 <= value <= 100 else None


def _counted(data: Sequence[MetricDatumBase]) -> list[MetricDatumBase]:
    """The data that holds samples (a Values/Counts member whose counts are all 0 holds none)."""
    return [d for d in data if not isinstance(d, WeightedDatum) or d.pairs]


def raw_samples(data: Sequence[MetricDatumBase]) -> Samples | None:
    """A period's samples as sorted (value, weight) pairs; None when AWS computes no percentile from them."""
    samples: Samples = []
    for datum in data:
        if isinstance(datum, WeightedDatum):
            samples.extend(datum.pairs)
        elif isinstance(datum, MetricAggregatedDatum):
            low, high, count = float(datum.min), float(datum.max), float(datum.sample_count)
            if low != high or not math.isclose(float(datum.sum), low * count, rel_tol=1e-9, abs_tol=1e-12):
                return None
            if count > 0:
                samples.append((low, count))
        elif isinstance(datum, MetricDatum):
            samples.append((float(datum.value), 1.0))
    if not samples or any(value < 0 for value, _ in samples):
        return None
    samples.sort(key=itemgetter(0))
    return samples


def _rank(samples: Samples, percentile: Decimal) -> float:
    """The cumulative weight a percentile needs: ceil(p/100 × n), 1 at least, when every weight is whole (the rank
    of nearest rank over the expanded samples); p/100 × n otherwise."""
    total = math.fsum(weight for _, weight in samples)
    needed = percentile * Decimal(total) / 100
    if all(weight.is_integer() for _, weight in samples):
        return float(max(1, math.ceil(needed)))
    return float(needed)


def weighted_percentile(samples: Samples, percentile: Decimal) -> float:
    """The smallest value whose cumulative weight reaches the percentile's rank (nearest rank)."""
    rank = _rank(samples, percentile)
    cumulative = 0.0
    for value, weight in samples:
        cumulative += weight
        if cumulative >= rank:
            return value
    return samples[-1][0]


def weighted_trimmed_mean(samples: Samples, percentile: Decimal) -> float:
    """The mean of the lowest samples up to the percentile's rank (tm99: the lowest 99 %)."""
    rank = _rank(samples, percentile) or samples[0][1]
    left, total = rank, 0.0
    for value, weight in samples:
        taken = min(weight, left)
        total += value * taken
        left -= taken
        if left <= 0:
            break
    return total / rank


def sample_count(data: Sequence[MetricDatumBase]) -> float:
    """SampleCount of a period's data."""
    return math.fsum(
        1.0 if isinstance(d, MetricDatum) else float(d.sample_count)
        for d in data
        if isinstance(d, MetricDatum | MetricAggregatedDatum)
    )


def statistic_value(data: Sequence[MetricDatumBase], stat: str) -> float | None:
    """A CloudWatch statistic over one period's data; None when AWS would return no value."""
    data = _counted(data)
    if not data:
        return None
    singles = [float(d.value) for d in data if isinstance(d, MetricDatum)]
    sets = [d for d in data if isinstance(d, MetricAggregatedDatum)]
    count = sample_count(data)
    total = math.fsum(singles) + math.fsum(float(s.sum) for s in sets)
    if stat == "SampleCount":
        return count
    if stat == "Sum":
        return total
    if stat == "Average":
        return total / count if count else None
    if stat == "Minimum":
        return min(singles + [float(s.min) for s in sets])
    if stat == "Maximum":
        return max(singles + [float(s.max) for s in sets])
    percentile = percentile_of(stat)
    if percentile is None:
        return None
    samples = raw_samples(data)
    if samples is None:
        return None
    if stat[:2].lower() == "tm":
        return weighted_trimmed_mean(samples, percentile)
    return weighted_percentile(samples, percentile)


def naive_utc(moment: datetime) -> datetime:
    """`moment` in UTC without tzinfo, as moto stores timestamps."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def period_buckets(
    data: Iterable[MetricDatumBase],
    *,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str],
    period: int,
    start: datetime,
    end: datetime,
    unit: str | None = None,
) -> dict[datetime, list[MetricDatumBase]]:
    """One metric's data in [start, end) by period start (naive UTC times), the periods without data left out."""
    wanted = frozenset(dimensions.items())
    step = timedelta(seconds=period)
    buckets: dict[int, list[MetricDatumBase]] = {}
    for datum in data:
        if datum.namespace != namespace or datum.name != metric_name or (unit and datum.unit != unit):
            continue
        if frozenset((d.name, d.value) for d in datum.dimensions) != wanted:
            continue
        moment = naive_utc(datum.timestamp)
        if start <= moment < end:
            buckets.setdefault((moment - start) // step, []).append(datum)
    return {start + index * step: bucket for index, bucket in sorted(buckets.items()) if _counted(bucket)}


def period_points(
    data: Iterable[MetricDatumBase],
    *,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str],
    stat: str,
    period: int,
    start: datetime,
    end: datetime,
    unit: str | None = None,
) -> list[PeriodPoint]:
    """The periods in [start, end) that hold data for one metric, with `stat` computed over each."""
    buckets = period_buckets(
        data,
        namespace=namespace,
        metric_name=metric_name,
        dimensions=dimensions,
        period=period,
        start=start,
        end=end,
        unit=unit,
    )
    return [
        PeriodPoint(start=moment, value=statistic_value(bucket, stat), sample_count=sample_count(bucket))
        for moment, bucket in buckets.items()
    ]


def metric_points(
    *,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str],
    stat: str,
    period: int,
    start: datetime,
    end: datetime,
    unit: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
    region: str = DEFAULT_REGION,
) -> list[PeriodPoint]:
    """The periods in [start, end) that hold data for one metric, as GetMetricData computes them."""
    backend = cloudwatch_backends[account_id][region]
    return period_points(
        backend.get_all_metrics(),
        namespace=namespace,
        metric_name=metric_name,
        dimensions=dimensions,
        stat=stat,
        period=period,
        start=naive_utc(start),
        end=naive_utc(end),
        unit=unit,
    )
