"""CloudWatch series for the facts: what to read (`SeriesSpec`), read in one `GetMetricData`, described for humans.

Every metric a triage needs is read in one request (paginated), one query per distinct series, whatever the number
of facts that reduce it. A series comes back as (timestamp, value) pairs, oldest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from medic.aws import AwsClients
from medic.facts.model import METRIC_PERIOD_S, METRIC_WINDOW

Points = list[tuple[datetime, float]]


@dataclass(frozen=True)
class SeriesSpec:
    """One CloudWatch series: namespace, metric, the exact dimension set, statistic (period: METRIC_PERIOD_S)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str

    @classmethod
    def lambda_(cls, name: str, stat: str, **dimensions: str) -> SeriesSpec:
        return cls("AWS/Lambda", name, tuple(dimensions.items()), stat)

    def describe(self) -> str:
        """``ConcurrentExecutions Maximum {FunctionName=checkout, Resource=checkout:live}`` (``{}``: account-level)."""
        dims = ", ".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.name} {self.stat} {{{dims}}}"


def window() -> str:
    """The window and period, as the sources say it: ``15m@60s``."""
    return f"{int(METRIC_WINDOW.total_seconds() // 60)}m@{METRIC_PERIOD_S}s"


def align_up(when: datetime, period_s: int) -> datetime:
    """The end of the period `when` falls in (a period boundary at or after `when`)."""
    epoch = when.timestamp()
    return datetime.fromtimestamp(math.ceil(epoch / period_s) * period_s, tz=when.tzinfo)


def window_start(now: datetime) -> datetime:
    return align_up(now, METRIC_PERIOD_S) - METRIC_WINDOW


def read_series(
    clients: AwsClients, wanted: list[SeriesSpec], now: datetime, lookback: timedelta = METRIC_WINDOW
) -> dict[SeriesSpec, Points]:
    """One GetMetricData (paginated) for every distinct series, from `now - lookback` (period-aligned) to now."""
    distinct = list(dict.fromkeys(wanted))
    if not distinct:
        return {}
    end = align_up(now, METRIC_PERIOD_S)
    start = end - lookback
    ids = {spec: f"m{index}" for index, spec in enumerate(distinct)}
    queries = [
        {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": spec.namespace,
                    "MetricName": spec.name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in spec.dimensions],
                },
                "Period": METRIC_PERIOD_S,
                "Stat": spec.stat,
            },
            "ReturnData": True,
        }
        for spec, query_id in ids.items()
    ]
    results: dict[str, Points] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        if token:
            kwargs["NextToken"] = token
        response = clients.cloudwatch.get_metric_data(**kwargs)
        for result in response["MetricDataResults"]:
            pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
            results.setdefault(result["Id"], []).extend((t, float(v)) for t, v in pairs)
        token = response.get("NextToken")
        if not token:
            break
    return {spec: sorted(results.get(query_id, [])) for spec, query_id in ids.items()}


def in_window(points: Points, now: datetime) -> Points:
    """The points of the decision window (a baseline read reaches further back)."""
    start = window_start(now)
    return [(t, v) for t, v in points if t >= start]
