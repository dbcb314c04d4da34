"""Medic's own metrics as CloudWatch Embedded Metric Format (EMF): one JSON line on stdout per data point.

Lambda ships stdout to CloudWatch Logs, which extracts the metrics named in each line's `_aws` envelope: no
`PutMetricData` call, no client, no dependency. The functions below only build the document (pass `at` to
fix its timestamp); `emit` prints it.

    >>> when = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    >>> document = plan_outcome("spillover", "VERIFIED", at=when)
    >>> document["Plans"], document["Signal"], document["Outcome"], document["_aws"]["Timestamp"]
    (1, 'spillover', 'VERIFIED', 1795323600000)
    >>> latency("TimeToPlan", seconds_since("2026-11-22T04:59:30.000Z", when), "spillover", at=when)["TimeToPlan"]
    30.0

In the pipeline (`now` from the runtime's clock, `plan.state_timestamp` the alarm's transition):

    emit(plan_outcome(plan.signal, plan.status, at=now))
    emit(latency("TimeToPlan", seconds_since(plan.state_timestamp, now), plan.signal, at=now))
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from medic.clock import parse_iso

NAMESPACE = "Medic"
#: Count of plans by signal and outcome (the plan's state when it was counted).
PLANS = "Plans"
#: Seconds from the alarm's state change to the plan, to the change applied, to its verification.
LATENCIES = ("TimeToPlan", "TimeToApply", "TimeToVerify")
#: CloudWatch's limits, as the EMF specification states them.
MAX_NAME_LENGTH = 255
MAX_DIMENSIONS = 30
MAX_DIMENSION_VALUE_LENGTH = 1024
MAX_METRICS = 100
#: CloudWatch's standard units (`StandardUnit`): the only values `Unit` may take.
UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)


def plan_outcome(signal: str, outcome: str, *, at: datetime | None = None) -> dict[str, Any]:
    """One plan reached `outcome` (a plan state: PROPOSED, VERIFIED, FAILED, BLOCKED, …): `Plans` = 1 (Count),
    dimensions Signal and Outcome."""
    return metric_document({PLANS: (1, "Count")}, {"Signal": signal, "Outcome": outcome}, at=at)


def latency(name: str, seconds: float, signal: str, *, at: datetime | None = None) -> dict[str, Any]:
    """How long from the alarm's state change to a step: `name` is TimeToPlan, TimeToApply or TimeToVerify
    (Seconds), dimension Signal. A negative duration (clock skew between CloudWatch and Lambda) counts as 0."""
    if name not in LATENCIES:
        raise ValueError(f"unknown latency metric {name!r}; one of {', '.join(LATENCIES)}")
    if not math.isfinite(seconds):
        raise ValueError(f"{name}: {seconds!r} seconds is not a finite number")
    return metric_document({name: (max(0.0, float(seconds)), "Seconds")}, {"Signal": signal}, at=at)


def seconds_since(timestamp: str, now: datetime) -> float:
    """Seconds from an ISO timestamp of the log (e.g. the alarm's `state_timestamp`) to `now`."""
    return (now - parse_iso(timestamp)).total_seconds()


def metric_document(
    metrics: Mapping[str, tuple[float, str]],
    dimensions: Mapping[str, str],
    *,
    at: datetime | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """An EMF document: `metrics` (name → (value, unit)) under one dimension set, at `at` (default: now).

    Raises ValueError for what CloudWatch would drop: names over 255 characters, more than 30 dimensions, empty
    dimension values, non-finite values, unknown units, a dimension and a metric of the same name."""
    if not 1 <= len(metrics) <= MAX_METRICS:
        raise ValueError(f"an EMF document holds 1 to {MAX_METRICS} metrics, not {len(metrics)}")
    if len(dimensions) > MAX_DIMENSIONS:
        raise ValueError(f"at most {MAX_DIMENSIONS} dimensions, not {len(dimensions)}")
    for name in (namespace, *metrics, *dimensions):
        if not 1 <= len(name) <= MAX_NAME_LENGTH or name == "_aws":
            raise ValueError(f"invalid name {name!r}: 1 to {MAX_NAME_LENGTH} characters, not _aws")
    if set(metrics) & set(dimensions):
        raise ValueError(f"a metric and a dimension share the name {sorted(set(metrics) & set(dimensions))}")
    for key, text in dimensions.items():
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_DIMENSION_VALUE_LENGTH:
            raise ValueError(f"dimension {key}: {text!r} is not a string of 1 to {MAX_DIMENSION_VALUE_LENGTH} chars")
    for name, (value, unit) in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"metric {name}: {value!r} is not a finite number")
        if unit not in UNITS:
            raise ValueError(f"metric {name}: unknown unit {unit!r}")
    when = at or datetime.now(UTC)
    timestamp = int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)
    directive = {
        "Namespace": namespace,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
    }
    return {
        "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [directive]},
        **dimensions,
        **{name: value for name, (value, _) in metrics.items()},
    }


def emit(document: Mapping[str, Any], stream: IO[str] | None = None) -> None:
    """Print `document` as one JSON line on `stream` (default: stdout, which Lambda ships to CloudWatch Logs)."""
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(document, separators=(",", ":")) + "\n")
    out.flush()
