"""Typed, frozen models of the EventBridge "CloudWatch Alarm State Change" event.

The shapes follow the CloudWatch user guide ("Alarm events and EventBridge": single-metric, metric math,
anomaly detection and composite alarms) and events captured in the wild. ``reasonData`` arrives as a JSON
*string*; it is decoded into :class:`ReasonData` and a malformed one never fails the event: it is kept
raw in :attr:`AlarmState.reason_data_raw` with the reason in :attr:`AlarmState.reason_data_problem`.

Use :func:`parse_alarm_event` at the edge; it raises only :class:`~medic.errors.EventError`, naming the
first failing field with a dotted path.

Example::

    >>> event = parse_alarm_event(open("events/spillover-alarm.json").read())  # doctest: +SKIP
    >>> event.alarm_name, event.detail.state.value, event.detail.configuration.kind  # doctest: +SKIP
    ('checkout-live-spillover', 'ALARM', 'metric')
    >>> event.detail.configuration.primary_metric.metric.name  # doctest: +SKIP
    'ProvisionedConcurrencySpilloverInvocations'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from medic.errors import EventError

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
CLOUDWATCH_SOURCE = "aws.cloudwatch"
ROOT_FIELD = "(root)"
"""The ``field`` of an :class:`EventError` about the input as a whole (not JSON, not an object)."""

AlarmStateValue = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
AlarmKind = Literal["metric", "metric_math", "anomaly_detection", "composite"]

_ALARM_ARN = re.compile(r"^arn:aws[a-z-]*:cloudwatch:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):alarm:(?P<name>.+)$")
_ANOMALY_BAND = re.compile(r"\bANOMALY_DETECTION_BAND\s*\(")
_ALL_METRICS = re.compile(r"\bMETRICS\s*\(")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_IDENTIFIER = re.compile(r"\b[a-z][A-Za-z0-9_]*\b")
_PERCENTILE = re.compile(r"^(?:p|tm|wm|tc|ts)(\d{1,2}(?:\.\d+)?|100)$", re.IGNORECASE)


class _FieldProblemError(ValueError):
    """A validator's complaint about a field below the one being validated (``field`` is relative)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


class _EventModel(BaseModel):
    # defer_build: the nested models are validated inside AlarmStateChangeEvent's schema; building a validator of
    # their own at import would cost every cold start (they build on first direct use).
    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", alias_generator=to_camel, defer_build=True
    )


class Metric(_EventModel):
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


class MetricStat(_EventModel):
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


class MetricQuery(_EventModel):
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
            raise _FieldProblemError("", "a metric query has exactly one of metricStat or expression")
        return self


class EvaluatedDatapoint(_EventModel):
    """A datapoint the alarm evaluated; ``value`` and ``sample_count`` are absent for missing data."""

    timestamp: datetime
    sample_count: float | None = None
    value: float | None = None


class TriggeringAlarmState(_EventModel):
    value: str
    timestamp: datetime | None = None


class TriggeringAlarm(_EventModel):
    """A child alarm named in a composite alarm's ``reasonData.triggeringAlarms``."""

    arn: str
    state: TriggeringAlarmState | None = None


class ReasonData(_EventModel):
    """The decoded ``reasonData`` of an alarm state.

    Metric alarms give ``statistic`` (absent for metric math), ``period``, ``recent_datapoints``,
    ``threshold`` and, in newer events, ``evaluated_datapoints``; anomaly detection alarms give
    ``recent_lower_thresholds`` / ``recent_upper_thresholds`` instead of ``threshold``; composite alarms
    give ``triggering_alarms``. Percentile alarms may name their statistic ``extendedStatistic``.
    """

    version: str | None = None
    query_date: datetime | None = None
    start_date: datetime | None = None
    statistic: str | None = Field(default=None, validation_alias=AliasChoices("statistic", "extendedStatistic"))
    unit: str | None = None
    period: int | None = None
    recent_datapoints: list[float] = Field(default_factory=list)
    threshold: float | None = None
    evaluated_datapoints: list[EvaluatedDatapoint] = Field(default_factory=list)
    recent_lower_thresholds: list[float] = Field(default_factory=list)
    recent_upper_thresholds: list[float] = Field(default_factory=list)
    triggering_alarms: list[TriggeringAlarm] = Field(default_factory=list)


class AlarmState(_EventModel):
    """``detail.state`` / ``detail.previousState``.

    ``reason_data`` is ``None`` when the event has no ``reasonData`` or when it cannot be decoded; in the
    second case ``reason_data_raw`` keeps the original string and ``reason_data_problem`` says why.
    """

    value: AlarmStateValue
    reason: str = ""
    reason_data: ReasonData | None = None
    reason_data_raw: str | None = None
    reason_data_problem: str | None = None
    timestamp: datetime
    actions_suppressed_by: str | None = None
    actions_suppressed_reason: str | None = None
    evaluation_state: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _decode_reason_data(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        key = "reasonData" if "reasonData" in data else "reason_data"
        raw = data.get(key)
        if raw is None or isinstance(raw, ReasonData):
            return data
        decoded, problem = _decode_reason_data(raw)
        fields = {k: v for k, v in data.items() if k not in ("reasonData", "reason_data")}
        fields["reasonData"] = decoded
        if isinstance(raw, str):
            fields["reasonDataRaw"] = raw
        fields["reasonDataProblem"] = problem
        return fields


class AlarmConfiguration(_EventModel):
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
            raise _FieldProblemError(
                "metrics", "a metric alarm lists at least one query (a composite alarm has alarmRule)"
            )
        seen: set[str] = set()
        for index, query in enumerate(self.metrics):
            if query.id in seen:
                raise _FieldProblemError(f"metrics.{index}.id", f"duplicate query id {query.id!r}")
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


class AlarmDetail(_EventModel):
    """``detail`` of the event. ``alarm_tags`` is filled only when the alarm propagates its tags
    (``alarmTagsStatus`` then says whether the list is complete)."""

    alarm_name: str
    state: AlarmState
    previous_state: AlarmState | None = None
    configuration: AlarmConfiguration
    alarm_tags: dict[str, str] = Field(default_factory=dict)
    alarm_tags_status: str | None = None

    @field_validator("alarm_tags", mode="before")
    @classmethod
    def _tags_as_mapping(cls, value: Any) -> Any:
        # EventBridge sends an object; accept the [{"key": .., "value": ..}] list shape as well.
        if value is None:
            return {}
        if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
            pairs = [(item.get("key", item.get("Key")), item.get("value", item.get("Value"))) for item in value]
            if all(isinstance(key, str) for key, _ in pairs):
                return dict(pairs)
        return value


class AlarmStateChangeEvent(_EventModel):
    """The EventBridge envelope of a CloudWatch alarm state change."""

    version: str
    id: str
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    source: Literal["aws.cloudwatch"]
    account: str
    time: datetime
    region: str
    resources: list[str] = Field(min_length=1)
    detail: AlarmDetail

    @field_validator("resources")
    @classmethod
    def _first_resource_is_an_alarm(cls, value: list[str]) -> list[str]:
        if not _ALARM_ARN.match(value[0]):
            raise _FieldProblemError("0", f"expected a CloudWatch alarm ARN, got {_short(value[0])}")
        return value

    @model_validator(mode="after")
    def _arn_names_the_alarm(self) -> AlarmStateChangeEvent:
        named = _alarm_name_in(self.resources[0])
        if named != self.detail.alarm_name:
            raise _FieldProblemError(
                "resources.0", f"alarm ARN names {named!r} but detail.alarmName is {self.detail.alarm_name!r}"
            )
        return self

    @property
    def alarm_arn(self) -> str:
        """The alarm's ARN (``resources[0]``, validated)."""
        return self.resources[0]

    @property
    def alarm_name(self) -> str:
        return self.detail.alarm_name


def parse_alarm_event(raw: Mapping[str, Any] | str | bytes, *, source: str = "event") -> AlarmStateChangeEvent:
    """Parse and validate a "CloudWatch Alarm State Change" event.

    ``raw`` is the decoded event (what Lambda hands a handler), or its JSON text. ``source`` names where it
    came from (a file name, or ``"event"``) in errors.

    Raises:
        EventError: for anything invalid, naming the first failing field, e.g. ``detail.state.value``.
            Nothing else is raised.

    Example::

        >>> parse_alarm_event('{"detail-type": "Scheduled Event", "source": "aws.events"}')
        Traceback (most recent call last):
        medic.errors.EventError: event: detail-type: expected 'CloudWatch Alarm State Change', got 'Scheduled Event'
    """
    data = _load_object(raw, source)
    for key, expected in (("detail-type", ALARM_STATE_CHANGE), ("source", CLOUDWATCH_SOURCE)):
        if key not in data:
            raise EventError(key, source, f"field required (expected {expected!r})")
        if data[key] != expected:
            raise EventError(key, source, f"expected {expected!r}, got {_short(data[key])}")
    try:
        return AlarmStateChangeEvent.model_validate(data)
    except ValidationError as exc:
        raise _event_error(exc, source) from exc


def _load_object(raw: object, source: str) -> dict[str, Any]:
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(ROOT_FIELD, source, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EventError(ROOT_FIELD, source, f"not JSON ({exc})") from exc
        except RecursionError as exc:
            raise EventError(ROOT_FIELD, source, "JSON nested too deeply") from exc
    if not isinstance(raw, Mapping):
        raise EventError(ROOT_FIELD, source, f"expected a JSON object, got {_json_type(raw)}")
    return dict(raw)


def _event_error(exc: ValidationError, source: str) -> EventError:
    error = exc.errors(include_url=False)[0]
    path = [str(part) for part in error["loc"]]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _FieldProblemError):
        path += [part for part in cause.field.split(".") if part]
        problem = cause.problem
    else:
        message = str(error["msg"])
        problem = message[:1].lower() + message[1:]
        if error["type"] != "missing" and not isinstance(error.get("input"), Mapping | list):
            problem += f" (got {_short(error.get('input'))})"
    return EventError(".".join(path) or ROOT_FIELD, source, problem)


def _decode_reason_data(raw: object) -> tuple[ReasonData | None, str | None]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            return None, f"reasonData is not JSON ({exc})"
        except RecursionError:
            return None, "reasonData is nested too deeply"
    if not isinstance(raw, Mapping):
        return None, f"reasonData should be a JSON object, got {_json_type(raw)}"
    try:
        return ReasonData.model_validate(dict(raw)), None
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        return None, f"reasonData.{where}: {error['msg']}"


def _references(expression: str, by_id: Mapping[str, MetricQuery]) -> list[str]:
    """The query ids an expression reads (``METRICS()`` reads every metricStat query)."""
    if _ALL_METRICS.search(expression):
        return [query_id for query_id, query in by_id.items() if query.metric_stat is not None]
    unquoted = _QUOTED.sub(" ", expression)
    return [name for name in dict.fromkeys(_IDENTIFIER.findall(unquoted)) if name in by_id]


def _alarm_name_in(arn: str) -> str:
    match = _ALARM_ARN.match(arn)
    return match.group("name") if match else ""


def _first(stats: list[MetricStat]) -> MetricStat | None:
    return stats[0] if stats else None


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
