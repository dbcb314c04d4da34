"""The alarm's ``detail.configuration``: its metrics (``metricStat`` queries and metric-math ``expression`` ones) or a
composite alarm's rule, what kind of alarm that makes (metric, metric math, anomaly detection, composite) and the one
metric it is about (:attr:`AlarmConfiguration.primary_metric`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from medic.alarms.base import EventModel, FieldProblemError

AlarmKind = Literal["metric", "metric_math", "anomaly_detection", "composite"]

_ANOMALY_BAND = re.compile(r"\bANOMALY_DETECTION_BAND\s*\(")
_ALL_METRICS = re.compile(r"\bMETRICS\s*\(")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_IDENTIFIER = re.compile(r"\b[a-z][A-Za-z0-9_]*\b")
_PERCENTILE = re.compile(r"^(?:p|tm|wm|tc|ts)(\d{1,2}(?:\.\d+)?|100)$", re.IGNORECASE)


class Metric(EventModel):
    """A CloudWatch metric: ``namespace``, ``name`` and its ``dimensions`` as a mapping."""

    namespace: str
    name: str
    dimensions: dict[str, str] = Field(default_factory=dict)

    @field_validator("dimensions", mode="before")
    @classmethod
    def _dimensions_as_mapping(cls, value: Any) -> Any:
        # Events carry {"FunctionName": "checkout"}; the API shape [{"Name": .., "Value": ..}] is accepted too.
        if value is None:
            return {}
        if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
            pairs = [(item.get("Name", item.get("name")), item.get("Value", item.get("value"))) for item in value]
            if all(isinstance(key, str) for key, _ in pairs):
                return dict(pairs)
        return value

    def describe(self) -> str:
        """One line, e.g. ``AWS/Lambda Throttles {FunctionName=checkout}``."""
        dims = ", ".join(f"{key}={value}" for key, value in sorted(self.dimensions.items()))
        return f"{self.namespace} {self.name} {{{dims}}}"


class MetricStat(EventModel):
    """A metric with the statistic and period the alarm evaluates (``stat`` is e.g. ``Sum``, ``p99``)."""

    metric: Metric
    period: int = Field(gt=0)
    stat: str
    unit: str | None = None

    @property
    def percentile(self) -> float | None:
        """The percentile of a tail statistic (``p99`` → 99.0, ``tm99.9`` → 99.9), else ``None``."""
        match = _PERCENTILE.match(self.stat)
        return float(match.group(1)) if match else None

    def describe(self) -> str:
        """One line, e.g. ``AWS/Lambda Duration {FunctionName=checkout} p99/60s``."""
        return f"{self.metric.describe()} {self.stat}/{self.period}s"


class MetricQuery(EventModel):
    """One entry of ``configuration.metrics``: a metric (``metricStat``) or an ``expression``."""

    id: str
    metric_stat: MetricStat | None = None
    expression: str | None = None
    label: str | None = None
    return_data: bool = True
    period: int | None = None
    account_id: str | None = None

    @model_validator(mode="after")
    def _stat_or_expression(self) -> MetricQuery:
        if (self.metric_stat is None) == (self.expression is None):
            raise FieldProblemError("", "a metric query has exactly one of metricStat or expression")
        return self


class AlarmConfiguration(EventModel):
    """``detail.configuration``: the metric queries of a metric alarm, or the rule of a composite alarm."""

    description: str | None = None
    metrics: list[MetricQuery] = Field(default_factory=list)
    alarm_rule: str | None = None
    actions_suppressor: str | None = None
    actions_suppressor_wait_period: int | None = None
    actions_suppressor_extension_period: int | None = None

    @model_validator(mode="after")
    def _watches_something(self) -> AlarmConfiguration:
        if self.alarm_rule is None and not self.metrics:
            raise FieldProblemError(
                "metrics", "a metric alarm lists at least one query (a composite alarm has alarmRule)"
            )
        seen: set[str] = set()
        for index, query in enumerate(self.metrics):
            if query.id in seen:
                raise FieldProblemError(f"metrics.{index}.id", f"duplicate query id {query.id!r}")
            seen.add(query.id)
        return self

    @property
    def kind(self) -> AlarmKind:
        """``composite`` (has ``alarmRule``), ``anomaly_detection`` (an ``ANOMALY_DETECTION_BAND``
        expression), ``metric_math`` (any other expression) or ``metric``."""
        if self.alarm_rule is not None:
            return "composite"
        expressions = [query.expression for query in self.metrics if query.expression is not None]
        if any(_ANOMALY_BAND.search(expression) for expression in expressions):
            return "anomaly_detection"
        return "metric_math" if expressions else "metric"

    @property
    def metric_stats(self) -> list[MetricStat]:
        """Every ``metricStat`` query, in configuration order."""
        return [query.metric_stat for query in self.metrics if query.metric_stat is not None]

    @property
    def primary_metric(self) -> MetricStat | None:
        """The one metric the alarm is about.

        - metric: the (returned) ``metricStat``;
        - anomaly detection: the metric inside ``ANOMALY_DETECTION_BAND(m1, …)``;
        - metric math: the first ``metricStat`` feeding the returned expression (directly or through
          other expressions; ``METRICS()`` means all of them);
        - composite, or an expression with no metric query (e.g. Metrics Insights SQL): ``None``.
        """
        kind = self.kind
        if kind == "composite":
            return None
        if kind == "metric":
            returned = [query.metric_stat for query in self.metrics if query.metric_stat and query.return_data]
            return returned[0] if returned else _first(self.metric_stats)
        expressions = [query for query in self.metrics if query.expression is not None]
        if kind == "anomaly_detection":
            root = next(query for query in expressions if _ANOMALY_BAND.search(query.expression or ""))
        else:
            root = next((query for query in expressions if query.return_data), expressions[0])
        fed = self._metric_stats_feeding(root)
        return fed[0] if fed else _first(self.metric_stats)

    def _metric_stats_feeding(self, root: MetricQuery) -> list[MetricStat]:
        by_id = {query.id: query for query in self.metrics}
        feeding: set[str] = set()
        pending = [root]
        while pending:
            query = pending.pop()
            for ref in _references(query.expression or "", by_id):
                if ref not in feeding:
                    feeding.add(ref)
                    pending.append(by_id[ref])
        return [query.metric_stat for query in self.metrics if query.metric_stat and query.id in feeding]


def _references(expression: str, by_id: Mapping[str, MetricQuery]) -> list[str]:
    """The query ids an expression reads (``METRICS()`` reads every metricStat query)."""
    if _ALL_METRICS.search(expression):
        return [query_id for query_id, query in by_id.items() if query.metric_stat is not None]
    unquoted = _QUOTED.sub(" ", expression)
    return [name for name in dict.fromkeys(_IDENTIFIER.findall(unquoted)) if name in by_id]


def _first(stats: list[MetricStat]) -> MetricStat | None:
    return stats[0] if stats else None
