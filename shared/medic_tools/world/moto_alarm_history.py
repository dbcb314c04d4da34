"""CloudWatch alarm history in the embedded world: DescribeAlarmHistory, which moto 5.2.5 does not implement.

What is recorded, where CloudWatch records it (CloudWatch API reference: DescribeAlarmHistory, AlarmHistoryItem):

* A `StateUpdate` item on every state change: the world's alarm evaluation (`medic_tools.world.alarms`, stamped with
  the evaluation's moment, the state timestamp its event carries) and SetAlarmState (stamped when the call is served,
  as moto stamps the new state). `HistorySummary` "Alarm updated from OK to ALARM"; `HistoryData` the JSON AWS
  shows (the AWS CLI's `describe-alarm-history` example): `{"version": "1.0", "oldState": {...}, "newState": {...}}`,
  each state `stateValue`, `stateReason` and, when the state has one, `stateReasonData` as a JSON object (not a
  string, unlike the EventBridge event's `reasonData`). `HistoryData` is at most 4,095 characters (AlarmHistoryItem);
  when both states' reason data do not fit, the old state's is left out first, then the new state's (ours: AWS
  documents the limit, not what it drops).
* A `ConfigurationUpdate` item when an alarm is created or updated (PutMetricAlarm, PutCompositeAlarm) and deleted
  (DeleteAlarms): `HistorySummary` 'Alarm "NAME" created' (updated, deleted) and `HistoryData`
  `{"version": "1.0", "type": "Create" | "Update" | "Delete", "createdAlarm" | "updatedAlarm" | "deletedAlarm": {...}}`
  with the alarm's name, ARN, namespace, metric, statistic, period, threshold, comparison and evaluation periods (the
  field set is ours).
* "CloudWatch retains the history of an alarm even if you delete the alarm": the items live apart from the alarms,
  per account and Region, on moto's CloudWatch backend (a reset forgets them). No retention limit is modelled.

DescribeAlarmHistory, as its API reference describes its parameters:

* `AlarmName` (exact; none: every alarm), `AlarmTypes` ("If you omit this parameter, only metric alarms are
  returned"; `LogAlarm` matches nothing here), `HistoryItemType` (one of the five types; `Action` and the contributor
  types are never recorded: the world runs no alarm actions), `StartDate` and `EndDate` (both inclusive: ours),
  `ScanBy` (`TimestampDescending`, newest first, when omitted, as the AWS CLI example shows), `MaxRecords` (1–100;
  100 when omitted: ours), `NextToken` (opaque; a token this world did not issue for the same filters is
  `InvalidNextToken`). `AlarmContributorId` is accepted and matches nothing (no contributor alarms here).
* Each item: `AlarmName`, `AlarmType` (`MetricAlarm` or `CompositeAlarm`), `Timestamp` (to the millisecond),
  `HistoryItemType`, `HistorySummary`, `HistoryData`.
* Invalid values are `ValidationError` (400) worded as AWS words its constraint failures ("1 validation error
  detected: Value '101' at 'maxRecords' failed to satisfy constraint: ...").
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from moto.cloudwatch.exceptions import CloudWatchException, ValidationError
from moto.cloudwatch.models import Alarm, CloudWatchBackend, cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from medic_tools.world import moto_ext

HISTORY_ITEM_TYPES: Final = (
    "ConfigurationUpdate",
    "StateUpdate",
    "Action",
    "AlarmContributorStateUpdate",
    "AlarmContributorAction",
)
ALARM_TYPES: Final = ("CompositeAlarm", "MetricAlarm", "LogAlarm")
SCAN_BY: Final = ("TimestampDescending", "TimestampAscending")
MAX_RECORDS: Final = 100
HISTORY_DATA_MAX: Final = 4095

_installed = False


@dataclass(frozen=True)
class HistoryItem:
    """One AlarmHistoryItem as the world keeps it."""

    alarm_name: str
    alarm_type: str
    timestamp: datetime  # aware UTC, to the millisecond
    item_type: str
    summary: str
    data: str

    def as_response(self) -> dict[str, Any]:
        return {
            "AlarmName": self.alarm_name,
            "AlarmType": self.alarm_type,
            "Timestamp": self.timestamp,
            "HistoryItemType": self.item_type,
            "HistorySummary": self.summary,
            "HistoryData": self.data,
        }


class InvalidNextToken(CloudWatchException):
    code = "InvalidNextToken"


def history_of(backend: CloudWatchBackend) -> list[HistoryItem]:
    """The backend's history items, oldest first (created on first use; a reset makes a new backend)."""
    items: list[HistoryItem] | None = getattr(backend, "medic_alarm_history", None)
    if items is None:
        items = []
        backend.medic_alarm_history = items  # type: ignore[attr-defined]
    return items


def _millisecond(moment: datetime) -> datetime:
    aware = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.replace(microsecond=aware.microsecond // 1000 * 1000)


def _alarm_type(alarm: Alarm) -> str:
    return "CompositeAlarm" if alarm.rule is not None else "MetricAlarm"


def _state(value: str, reason: str, reason_data: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {"stateValue": value, "stateReason": reason}
    if reason_data and reason_data != "{}":
        with contextlib.suppress(ValueError):  # SetAlarmState validates it as JSON; anything else has none to show
            state["stateReasonData"] = json.loads(reason_data)
    return state


def state_history_data(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The StateUpdate item's HistoryData, within AlarmHistoryItem's 4,095 characters (see the module's note)."""
    data: dict[str, Any] = {"version": "1.0", "oldState": old, "newState": new}
    text = json.dumps(data, separators=(",", ":"))
    for state in ("oldState", "newState"):
        if len(text) <= HISTORY_DATA_MAX:
            break
        data[state] = {k: v for k, v in data[state].items() if k != "stateReasonData"}
        text = json.dumps(data, separators=(",", ":"))
    return text


def record_state_update(
    alarm: Alarm,
    old: tuple[str, str, str | None],
    moment: datetime,
    account_id: str = moto_ext.DEFAULT_ACCOUNT_ID,
    region: str = moto_ext.DEFAULT_REGION,
) -> HistoryItem:
    """Record `alarm`'s change from `old` (value, reason, reason data) to its current state, at `moment`."""
    new = (str(alarm.state_value), str(alarm.state_reason), alarm.state_reason_data)
    item = HistoryItem(
        alarm_name=alarm.name,
        alarm_type=_alarm_type(alarm),
        timestamp=_millisecond(moment),
        item_type="StateUpdate",
        summary=f"Alarm updated from {old[0]} to {new[0]}",
        data=state_history_data(_state(*old), _state(*new)),
    )
    history_of(cloudwatch_backends[account_id][region]).append(item)
    return item


def _configuration(alarm: Alarm) -> dict[str, Any]:
    configuration: dict[str, Any] = {"alarmName": alarm.name, "alarmArn": alarm.alarm_arn}
    if alarm.rule is not None:
        configuration["alarmRule"] = alarm.rule
        return configuration
    configuration.update(
        {
            "namespace": alarm.namespace,
            "metricName": alarm.metric_name,
            "dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
            "statistic": alarm.statistic or alarm.extended_statistic,
            "period": alarm.period,
            "threshold": alarm.threshold,
            "comparisonOperator": alarm.comparison_operator,
            "evaluationPeriods": alarm.evaluation_periods,
            "datapointsToAlarm": alarm.datapoints_to_alarm,
            "treatMissingData": alarm.treat_missing_data,
        }
    )
    return {key: value for key, value in configuration.items() if value is not None}


def _record_configuration(backend: CloudWatchBackend, alarm: Alarm, change: str) -> None:
    noun = {"Create": "created", "Update": "updated", "Delete": "deleted"}[change]
    key = {"Create": "createdAlarm", "Update": "updatedAlarm", "Delete": "deletedAlarm"}[change]
    document = {"version": "1.0", "type": change, key: _configuration(alarm)}
    data = json.dumps(document, separators=(",", ":"), default=str)
    history_of(backend).append(
        HistoryItem(
            alarm_name=alarm.name,
            alarm_type=_alarm_type(alarm),
            timestamp=_millisecond(datetime.now(UTC)),
            item_type="ConfigurationUpdate",
            summary=f'Alarm "{alarm.name}" {noun}',
            data=data[:HISTORY_DATA_MAX],
        )
    )


# ---------------------------------------------------------------------------------------------------------------
# Where moto changes alarms

#: moto's methods (as the other extensions left them) that the wrappers below call: taken at `install()`, so that the
#: wrappers wrap whatever was installed before them (`moto_cloudwatch`'s PutMetricAlarm keeps an updated alarm's state).
_wrapped: dict[str, Any] = {}


def _put_metric_alarm(self: CloudWatchBackend, *args: Any, **kwargs: Any) -> Alarm:
    name = kwargs["name"] if "name" in kwargs else args[0]
    existed = name in self.alarms
    alarm: Alarm = _wrapped["put_metric_alarm"](self, *args, **kwargs)
    _record_configuration(self, alarm, "Update" if existed else "Create")
    return alarm


def _delete_alarms(self: CloudWatchBackend, alarm_names: list[str]) -> None:
    deleted = [self.alarms[name] for name in alarm_names if name in self.alarms]
    _wrapped["delete_alarms"](self, alarm_names)
    for alarm in deleted:
        _record_configuration(self, alarm, "Delete")


def _set_alarm_state(self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
    alarm = self.alarms.get(alarm_name)
    old = (str(alarm.state_value), str(alarm.state_reason), alarm.state_reason_data) if alarm is not None else None
    _wrapped["set_alarm_state"](self, alarm_name, reason, reason_data, state_value)
    if alarm is not None and old is not None:
        record_state_update(alarm, old, alarm.state_updated_timestamp, self.account_id, self.region_name)


# ---------------------------------------------------------------------------------------------------------------
# DescribeAlarmHistory


def _constraint(value: object, member: str, constraint: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    )


def _enum(value: object, member: str, allowed: tuple[str, ...]) -> ValidationError:
    return _constraint(value, member, f"Member must satisfy enum value set: [{', '.join(allowed)}]")


def _aware(moment: Any) -> datetime | None:
    if moment is None:
        return None
    when: datetime = datetime.fromisoformat(moment.replace("Z", "+00:00")) if isinstance(moment, str) else moment
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _token(offset: int, query: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "q": query}).encode()).decode()


def _offset(token: str, query: str) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = decoded["o"] if decoded["q"] == query else None
    except (ValueError, binascii.Error, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidNextToken("The service returned an error with Error Code InvalidNextToken.")
    return offset


def _describe_alarm_history(self: CloudWatchResponse) -> ActionResult:
    name = self._get_param("AlarmName")
    types: list[str] = list(self._get_param("AlarmTypes") or ["MetricAlarm"])
    item_type = self._get_param("HistoryItemType")
    scan_by = self._get_param("ScanBy") or "TimestampDescending"
    raw_max = self._get_param("MaxRecords")
    for index, alarm_type in enumerate(types, start=1):
        if alarm_type not in ALARM_TYPES:
            raise _enum(alarm_type, f"alarmTypes.{index}.member", ALARM_TYPES)
    if item_type is not None and item_type not in HISTORY_ITEM_TYPES:
        raise _enum(item_type, "historyItemType", HISTORY_ITEM_TYPES)
    if scan_by not in SCAN_BY:
        raise _enum(scan_by, "scanBy", SCAN_BY)
    max_records = MAX_RECORDS if raw_max is None else int(raw_max)
    if max_records < 1:
        raise _constraint(max_records, "maxRecords", "Member must have value greater than or equal to 1")
    if max_records > MAX_RECORDS:
        raise _constraint(max_records, "maxRecords", f"Member must have value less than or equal to {MAX_RECORDS}")
    start, end = _aware(self._get_param("StartDate")), _aware(self._get_param("EndDate"))
    contributor = self._get_param("AlarmContributorId")
    query = hashlib.sha256(
        json.dumps([name, sorted(types), item_type, scan_by, str(start), str(end), contributor]).encode()
    ).hexdigest()[:16]
    items = [
        item
        for item in history_of(self.cloudwatch_backend)
        if (name is None or item.alarm_name == name)
        and item.alarm_type in types
        and (item_type is None or item.item_type == item_type)
        and (start is None or item.timestamp >= start)
        and (end is None or item.timestamp <= end)
        and contributor is None
    ]
    items.sort(key=lambda item: item.timestamp, reverse=scan_by == "TimestampDescending")
    token = self._get_param("NextToken")
    offset = _offset(token, query) if token else 0
    page = items[offset : offset + max_records]
    result: dict[str, Any] = {"AlarmHistoryItems": [item.as_response() for item in page]}
    if offset + max_records < len(items):
        result["NextToken"] = _token(offset + max_records, query)
    return ActionResult(result)


def install() -> None:
    """Patch moto's CloudWatch in this process (idempotent; after `moto_cloudwatch.install`, whose PutMetricAlarm
    this one wraps)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with moto_ext._LOCK:
        if _installed:
            return
        for method in ("put_metric_alarm", "delete_alarms", "set_alarm_state"):
            _wrapped[method] = getattr(CloudWatchBackend, method)
        CloudWatchBackend.put_metric_alarm = _put_metric_alarm  # type: ignore[method-assign]
        CloudWatchBackend.delete_alarms = _delete_alarms  # type: ignore[method-assign]
        CloudWatchBackend.set_alarm_state = _set_alarm_state  # type: ignore[method-assign]
        CloudWatchResponse.describe_alarm_history = _describe_alarm_history  # type: ignore[attr-defined]
        _installed = True
