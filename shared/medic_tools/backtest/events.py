"""The "CloudWatch Alarm State Change" event AWS sent for a past transition, rebuilt from the alarm's configuration
(DescribeAlarms) and the transition's history item (DescribeAlarmHistory, `HistoryItemType=StateUpdate`).

A StateUpdate item's `HistoryData` is JSON (the AWS CLI's `describe-alarm-history` example):
`{"version": "1.0", "oldState": {"stateValue", "stateReason", "stateReasonData"}, "newState": {...}}`, the reason
data as an object. The event (CloudWatch user guide, "Alarm events and EventBridge") takes:

* `detail.state`: the new state's value, reason and reason data (as the JSON *string* events carry), and the item's
  `Timestamp` as the state timestamp, to the millisecond ("2026-11-27T09:30:00.123+0000") — the plan id triage gave
  the transition derives from it (`medic.plan.plan_id`), which is how the remediation log is looked up;
* `detail.previousState`: the old state, with the previous item's timestamp when the backtest read it (the first
  transition of the period has none: `previousState` is then left out, which triage never reads);
* `detail.configuration`: the alarm's metrics (`metricStat` or `expression` queries) and description — **today's**
  configuration: an alarm changed since the transition is rebuilt as it is now;
* the envelope: `account` and `region` from the alarm's ARN, `time` the transition to the second, `resources` the
  ARN, and an `id` derived from the ARN and the timestamp (AWS's event id is not kept anywhere).

Not rebuilt: `alarmTags` (AWS adds them only for alarms with tag propagation; a `medic:signal` tag is not applied).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

_SUMMARY: Final = re.compile(r"from (?P<old>[A-Z_]+) to (?P<new>[A-Z_]+)")


@dataclass(frozen=True)
class StateChange:
    """One StateUpdate item: when, from which state to which (value, reason, reason data)."""

    alarm_name: str
    time: datetime  # aware UTC, to the millisecond
    old_value: str
    new_value: str
    new_reason: str = ""
    new_reason_data: Mapping[str, Any] | None = None
    old_reason: str = ""
    old_reason_data: Mapping[str, Any] | None = None
    problem: str = ""  # why HistoryData could not be read (the states then come from HistorySummary)


def state_timestamp(moment: datetime) -> str:
    """A state timestamp as CloudWatch writes it in events: "2026-11-27T09:30:00.123+0000"."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def parse_history_item(item: Mapping[str, Any]) -> StateChange:
    """A DescribeAlarmHistory StateUpdate item (as boto3 returns it) → `StateChange`. Unreadable `HistoryData` keeps
    the states `HistorySummary` names ("Alarm updated from OK to ALARM"), without reasons, and says so."""
    stamp = item["Timestamp"]
    moment = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    name = str(item.get("AlarmName", ""))
    try:
        data = json.loads(str(item.get("HistoryData", "")))
        old, new = data["oldState"], data["newState"]
        return StateChange(
            alarm_name=name,
            time=moment,
            old_value=str(old["stateValue"]),
            new_value=str(new["stateValue"]),
            new_reason=str(new.get("stateReason", "")),
            new_reason_data=_object(new.get("stateReasonData")),
            old_reason=str(old.get("stateReason", "")),
            old_reason_data=_object(old.get("stateReasonData")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        summary = _SUMMARY.search(str(item.get("HistorySummary", "")))
        problem = f"HistoryData unreadable ({type(exc).__name__}: {exc})"
        return StateChange(
            name, moment, summary["old"] if summary else "?", summary["new"] if summary else "?", problem=problem
        )


def _object(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, str):  # some writers keep it as a string, as events do
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def _state(value: str, reason: str, reason_data: Mapping[str, Any] | None, moment: datetime) -> dict[str, Any]:
    state: dict[str, Any] = {"value": value, "reason": reason}
    if reason_data:
        state["reasonData"] = json.dumps(reason_data, separators=(",", ":"))
    state["timestamp"] = state_timestamp(moment)
    return state


def _dimensions(dimensions: Any) -> dict[str, str]:
    return {str(d["Name"]): str(d["Value"]) for d in dimensions or []}


def configuration(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """`detail.configuration` of a metric alarm as DescribeAlarms describes it (a single metric or metric queries)."""
    metric_stats: list[dict[str, Any]] = []
    if alarm.get("Metrics"):
        for query in alarm["Metrics"]:
            entry: dict[str, Any] = {"id": query["Id"]}
            query_stat = query.get("MetricStat")
            if query_stat is not None:
                metric = query_stat["Metric"]
                entry["metricStat"] = {
                    "metric": {
                        "namespace": metric.get("Namespace", ""),
                        "name": metric.get("MetricName", ""),
                        "dimensions": _dimensions(metric.get("Dimensions")),
                    },
                    "period": query_stat["Period"],
                    "stat": query_stat["Stat"],
                    **({"unit": query_stat["Unit"]} if query_stat.get("Unit") else {}),
                }
            if query.get("Expression") is not None:
                entry["expression"] = query["Expression"]
            for key, name in (("Label", "label"), ("Period", "period"), ("AccountId", "accountId")):
                if query.get(key) is not None:
                    entry[name] = query[key]
            entry["returnData"] = bool(query.get("ReturnData", True))
            metric_stats.append(entry)
    else:
        stat: dict[str, Any] = {
            "metric": {
                "namespace": alarm.get("Namespace", ""),
                "name": alarm.get("MetricName", ""),
                "dimensions": _dimensions(alarm.get("Dimensions")),
            },
            "period": alarm.get("Period"),
            "stat": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
        }
        if alarm.get("Unit"):
            stat["unit"] = alarm["Unit"]
        # AWS shows a generated id for a single-metric alarm; a name-based UUID of the ARN keeps it stable.
        metric_stats.append(
            {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(alarm["AlarmArn"]))), "metricStat": stat, "returnData": True}
        )
    config: dict[str, Any] = {}
    if alarm.get("AlarmDescription"):
        config["description"] = alarm["AlarmDescription"]
    config["metrics"] = metric_stats
    return config


def rebuild_event(alarm: Mapping[str, Any], change: StateChange, previous: datetime | None = None) -> dict[str, Any]:
    """The EventBridge event of `change` (see the module's note); `previous`: when the alarm entered the old state."""
    arn = str(alarm["AlarmArn"])
    parts = arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) > 5 else ("", "")
    stamp = state_timestamp(change.time)
    detail: dict[str, Any] = {
        "alarmName": str(alarm["AlarmName"]),
        "state": _state(change.new_value, change.new_reason, change.new_reason_data, change.time),
    }
    if previous is not None:
        detail["previousState"] = _state(change.old_value, change.old_reason, change.old_reason_data, previous)
    detail["configuration"] = configuration(alarm)
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}|{stamp}")),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": f"{change.time:%Y-%m-%dT%H:%M:%S}Z",
        "region": region,
        "resources": [arn],
        "detail": detail,
    }
