"""The CloudWatch series a modelled account emits, minute by minute (docs/WORKLOAD.md, "What the world emits").

AWS/Lambda, at the dimensions Lambda uses (Lambda developer guide, "Types of metrics for Lambda functions" and
"Monitoring concurrency"; SAM's canary alarms show the ExecutedVersion set): across all functions (no dimension),
{FunctionName}, {FunctionName, Resource} for a qualified invocation (alias or version) and {FunctionName, Resource,
ExecutedVersion} for an alias' invocations.

* Invocations, Errors (SampleCount = invocations, so Average is the error rate), Throttles, Duration (Values/Counts:
  a bounded sample of at most 150 values whose counts add up to the invocations: every statistic, percentiles
  included, is the one of all invocations), ConcurrentExecutions (a sample a second: Maximum is the peak).
* Across all functions only: UnreservedConcurrentExecutions, ClaimedAccountConcurrency.
* For an alias with PC: ProvisionedConcurrencyInvocations and ProvisionedConcurrencySpilloverInvocations
  ({FunctionName, Resource} and {FunctionName}), ProvisionedConcurrentExecutions (both),
  ProvisionedConcurrencyUtilization ({FunctionName, Resource}).
* Asynchronous invocations: AsyncEventsReceived, AsyncEventAge (the time from queueing to the invocation),
  AsyncEventsDropped, at {FunctionName}.
* AWS/SQS {QueueName}: NumberOfMessagesSent/Received/Deleted, ApproximateNumberOfMessagesVisible/NotVisible,
  ApproximateAgeOfOldestMessage. AWS/RDS {DBInstanceIdentifier}: DatabaseConnections.

Throttles are not emitted at ExecutedVersion (a refused request ran no version). A minute without invocations has
no Invocations/Errors/Duration datum, as on AWS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medic_tools.world.workload.config import AccountConfig
from medic_tools.world.workload.physics import noise_points
from medic_tools.world.workload.trace import Cell, CellKey, Gauge, GaugeKey, Trace

#: "Values ... You can include up to 150 unique values in each PutMetricData action" (CloudWatch API, MetricDatum).
MAX_VALUES = 150
POINTS_PER_CLASS = 12
LAMBDA = "AWS/Lambda"
Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Datum:
    """One minute of one series: `values`/`counts`, a StatisticValues set (`stats`: min, max, sum, count) or a
    single `value`."""

    namespace: str
    metric: str
    dimensions: Dimensions
    minute: int
    value: float | None = None
    values: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    stats: tuple[float, float, float, float] | None = None
    unit: str | None = None

    def put_request(self, start: datetime) -> dict[str, Any]:
        """The MetricData member for PutMetricData (stamped in the middle of its minute)."""
        member: dict[str, Any] = {
            "MetricName": self.metric,
            "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
            "Timestamp": start + timedelta(seconds=self.minute * 60 + 30),
        }
        if self.values:
            member["Values"], member["Counts"] = list(self.values), list(self.counts)
        elif self.stats is not None:
            low, high, total, count = self.stats
            member["StatisticValues"] = {"Minimum": low, "Maximum": high, "Sum": total, "SampleCount": count}
        else:
            member["Value"] = self.value
        if self.unit:
            member["Unit"] = self.unit
        return member


def duration_sample(cell: Cell, sigma: float, timeout_ms: float) -> list[tuple[float, float]]:
    """(value, count) pairs standing for every invocation of a cell: each class's median × the noise quantiles."""
    pairs: list[tuple[float, float]] = []
    for key, count in cell.durations.items():
        median = key[1] + key[2] + key[3] + key[4]
        points = noise_points(sigma, min(count, POINTS_PER_CLASS))
        share, extra = divmod(count, len(points))
        for index, multiplier in enumerate(points):
            weight = share + (1 if index < extra else 0)
            if weight:
                pairs.append((round(min(median * multiplier, timeout_ms), 2), float(weight)))
    return pairs


def compress(pairs: Iterable[tuple[float, float]], limit: int = MAX_VALUES) -> tuple[list[float], list[float]]:
    """Merge equal values, then neighbouring ones (weighted means of equal-count slices) down to `limit` values."""
    merged: dict[float, float] = {}
    for value, count in pairs:
        merged[value] = merged.get(value, 0.0) + count
    ordered = sorted(merged.items())
    if len(ordered) <= limit:
        return [v for v, _ in ordered], [c for _, c in ordered]
    total = sum(c for _, c in ordered)
    values: list[float] = []
    counts: list[float] = []
    bucket_value = bucket_count = 0.0
    for value, count in ordered:
        bucket_value += value * count
        bucket_count += count
        if bucket_count >= total / limit or (value, count) == ordered[-1]:
            values.append(round(bucket_value / bucket_count, 2))
            counts.append(bucket_count)
            bucket_value = bucket_count = 0.0
    return values, counts


def _levels(key: CellKey) -> list[Dimensions]:
    function, resource, version = key
    levels: list[Dimensions] = [(), (("FunctionName", function),)]
    if resource is not None:
        levels.append((("FunctionName", function), ("Resource", resource)))
        if not resource.rsplit(":", 1)[-1].isdigit():
            levels.append((("FunctionName", function), ("Resource", resource), ("ExecutedVersion", version)))
    return levels


def _stats(gauge: Gauge) -> tuple[float, float, float, float]:
    return gauge.minimum, gauge.maximum, gauge.total, gauge.samples


def series(trace: Trace, config: AccountConfig, first: int, last: int) -> list[Datum]:
    """Every datum of minutes [first, last), the omitted series left out."""
    sigma = {f.name: f.workload.duration.noise if f.workload else 0.0 for f in config.functions}
    timeout = {f.name: f.timeout_s * 1000.0 for f in config.functions}
    data: list[Datum] = []
    for minute in range(first, last):
        data.extend(_lambda_minute(trace, minute, sigma, timeout))
        for key, gauge in trace.gauges.get(minute, {}).items():
            unit = None if key.metric == "ProvisionedConcurrencyUtilization" else _unit(key)
            data.append(Datum(key.namespace, key.metric, key.dimensions, minute, stats=_stats(gauge), unit=unit))
        for key, total in trace.counters.get(minute, {}).items():
            data.append(Datum(key.namespace, key.metric, key.dimensions, minute, value=total, unit=_unit(key)))
    return [datum for datum in data if not _omitted(datum, config)]


def _unit(key: GaugeKey) -> str:
    return (
        "Seconds"
        if key.metric in ("ApproximateAgeOfOldestMessage",)
        else ("Milliseconds" if key.metric == "AsyncEventAge" else "Count")
    )


def _lambda_minute(trace: Trace, minute: int, sigma: dict[str, float], timeout: dict[str, float]) -> list[Datum]:
    totals: dict[Dimensions, dict[str, float]] = {}
    samples: dict[Dimensions, list[tuple[float, float]]] = {}
    provisioned = trace.provisioned.get(minute, {})
    pc_levels: set[Dimensions] = set()
    for key, cell in trace.cells.get(minute, {}).items():
        pairs = duration_sample(cell, sigma.get(key[0], 0.0), timeout.get(key[0], 900_000.0))
        with_pc = key[1] is not None and (key[0], key[1].rsplit(":", 1)[-1]) in provisioned
        for level in _levels(key):
            sums = totals.setdefault(level, {})
            for name, value in (
                ("invocations", cell.invocations),
                ("errors", cell.errors),
                ("throttles", cell.throttles),
                ("pc", cell.pc_invocations),
                ("spillover", cell.spillover),
            ):
                sums[name] = sums.get(name, 0.0) + value
            samples.setdefault(level, []).extend(pairs)
            if with_pc and len(level) in (1, 2):
                pc_levels.add(level)
    data: list[Datum] = []
    for level, sums in totals.items():
        invocations, errors, throttles = sums["invocations"], sums["errors"], sums["throttles"]
        if invocations:
            data.append(
                Datum(LAMBDA, "Invocations", level, minute, stats=(1, 1, invocations, invocations), unit="Count")
            )
            data.append(
                Datum(
                    LAMBDA,
                    "Errors",
                    level,
                    minute,
                    stats=(0 if errors < invocations else 1, 1 if errors else 0, errors, invocations),
                    unit="Count",
                )
            )
            values, counts = compress(samples[level])
            data.append(
                Datum(
                    LAMBDA, "Duration", level, minute, values=tuple(values), counts=tuple(counts), unit="Milliseconds"
                )
            )
        if len(level) < 3 and (throttles or invocations):
            stats = (1.0, 1.0, throttles, throttles) if throttles else None
            data.append(
                Datum(LAMBDA, "Throttles", level, minute, value=None if stats else 0.0, stats=stats, unit="Count")
            )
        if level in pc_levels and (invocations or throttles):
            data.append(
                Datum(LAMBDA, "ProvisionedConcurrencyInvocations", level, minute, value=sums["pc"], unit="Count")
            )
            data.append(
                Datum(
                    LAMBDA,
                    "ProvisionedConcurrencySpilloverInvocations",
                    level,
                    minute,
                    value=sums["spillover"],
                    unit="Count",
                )
            )
    return data


def _omitted(datum: Datum, config: AccountConfig) -> bool:
    for rule in config.omit:
        if rule.namespace != datum.namespace or rule.metric != datum.metric:
            continue
        if rule.dimensions is None or sorted(rule.dimensions) == sorted(name for name, _ in datum.dimensions):
            return True
    return False
