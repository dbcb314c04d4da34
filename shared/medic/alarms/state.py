"""An alarm's state (``detail.state`` / ``detail.previousState``) and its ``reasonData``, which arrives as a JSON
*string*: decoded into :class:`ReasonData` (metric, metric math, anomaly detection and composite alarms each give
their own fields), and a malformed one never fails the event: it is kept raw in :attr:`AlarmState.reason_data_raw`
with the reason in :attr:`AlarmState.reason_data_problem`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, model_validator

from medic.alarms.base import EventModel, json_type

AlarmStateValue = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


class EvaluatedDatapoint(EventModel):
    """A datapoint the alarm evaluated; ``value`` and ``sample_count`` are absent for missing data."""

    timestamp: datetime
    sample_count: float | None = None
    value: float | None = None


class TriggeringAlarmState(EventModel):
    value: str
    timestamp: datetime | None = None


class TriggeringAlarm(EventModel):
    """A child alarm named in a composite alarm's ``reasonData.triggeringAlarms``."""

    arn: str
    state: TriggeringAlarmState | None = None


class ReasonData(EventModel):
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


class AlarmState(EventModel):
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


def _decode_reason_data(raw: object) -> tuple[ReasonData | None, str | None]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            return None, f"reasonData is not JSON ({exc})"
        except RecursionError:
            return None, "reasonData is nested too deeply"
    if not isinstance(raw, Mapping):
        return None, f"reasonData should be a JSON object, got {json_type(raw)}"
    try:
        return ReasonData.model_validate(dict(raw)), None
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        return None, f"reasonData.{where}: {error['msg']}"
