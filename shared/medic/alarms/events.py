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

The models live by part: :mod:`medic.alarms.configuration` (the metrics, the kind of alarm), :mod:`medic.alarms.state`
(the state and its ``reasonData``), :mod:`medic.alarms.base` (what they share); this module holds the envelope
and :func:`parse_alarm_event`, and every model name is importable from here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from medic.alarms.base import EventModel, FieldProblemError, json_type, short
from medic.alarms.configuration import AlarmConfiguration, AlarmKind, Metric, MetricQuery, MetricStat
from medic.alarms.state import (
    AlarmState,
    AlarmStateValue,
    EvaluatedDatapoint,
    ReasonData,
    TriggeringAlarm,
    TriggeringAlarmState,
)
from medic.errors import EventError

__all__ = [
    "ALARM_STATE_CHANGE",
    "CLOUDWATCH_SOURCE",
    "ROOT_FIELD",
    "AlarmConfiguration",
    "AlarmDetail",
    "AlarmKind",
    "AlarmState",
    "AlarmStateChangeEvent",
    "AlarmStateValue",
    "EvaluatedDatapoint",
    "Metric",
    "MetricQuery",
    "MetricStat",
    "ReasonData",
    "TriggeringAlarm",
    "TriggeringAlarmState",
    "parse_alarm_event",
]

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
CLOUDWATCH_SOURCE = "aws.cloudwatch"
ROOT_FIELD = "(root)"
"""The ``field`` of an :class:`EventError` about the input as a whole (not JSON, not an object)."""

_ALARM_ARN = re.compile(r"^arn:aws[a-z-]*:cloudwatch:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):alarm:(?P<name>.+)$")


class AlarmDetail(EventModel):
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


class AlarmStateChangeEvent(EventModel):
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
            raise FieldProblemError("0", f"expected a CloudWatch alarm ARN, got {short(value[0])}")
        return value

    @model_validator(mode="after")
    def _arn_names_the_alarm(self) -> AlarmStateChangeEvent:
        named = _alarm_name_in(self.resources[0])
        if named != self.detail.alarm_name:
            raise FieldProblemError(
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
            raise EventError(key, source, f"expected {expected!r}, got {short(data[key])}")
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
        raise EventError(ROOT_FIELD, source, f"expected a JSON object, got {json_type(raw)}")
    return dict(raw)


def _event_error(exc: ValidationError, source: str) -> EventError:
    error = exc.errors(include_url=False)[0]
    path = [str(part) for part in error["loc"]]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblemError):
        path += [part for part in cause.field.split(".") if part]
        problem = cause.problem
    else:
        message = str(error["msg"])
        problem = message[:1].lower() + message[1:]
        if error["type"] != "missing" and not isinstance(error.get("input"), Mapping | list):
            problem += f" (got {short(error.get('input'))})"
    return EventError(".".join(path) or ROOT_FIELD, source, problem)


def _alarm_name_in(arn: str) -> str:
    match = _ALARM_ARN.match(arn)
    return match.group("name") if match else ""
