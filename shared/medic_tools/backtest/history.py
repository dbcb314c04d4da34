"""What a backtest replays: the opted-in functions' alarms and their state changes over the period.

Reads (each paginated): `tag:GetResources` for the functions carrying the opt-in tag (`Settings.opt_in_tag`, as the
facts read it on each function: `medic:managed=true` by default) and their tags; `cloudwatch:DescribeAlarms` for the
metric alarms; `cloudwatch:DescribeAlarmHistory` per alarm in scope (`HistoryItemType=StateUpdate`, the period's
`StartDate`/`EndDate`, oldest first). An alarm is in scope when the signal its configuration classifies to targets an
opted-in function, or a database an opted-in function is tagged a consumer of (`medic:database=<instance>`).
Composite alarms and alarms deleted since are not read (DescribeAlarms no longer describes a deleted alarm, so its
configuration is unknown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from medic.alarms.events import parse_alarm_event
from medic.alarms.signals import Signal, classify
from medic.errors import EventError
from medic.facts import DATABASE_TAG
from medic_tools.backtest.events import StateChange, parse_history_item, rebuild_event

if TYPE_CHECKING:
    from medic.aws import AwsClients
    from medic_tools.backtest.period import Period


@dataclass
class ScopedAlarm:
    """An alarm, what its configuration classifies to, and why it is out of scope (empty when it is in)."""

    alarm: Mapping[str, Any]
    signal: Signal | None
    skipped: str = ""
    changes: list[StateChange] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.alarm["AlarmName"])

    @property
    def function(self) -> str | None:
        return self.signal.target.function_name if self.signal is not None else None

    @property
    def target(self) -> str:
        return self.signal.target.display if self.signal is not None else "(none)"


def opted_in_functions(clients: AwsClients, opt_in_tag: tuple[str, str]) -> dict[str, dict[str, str]]:
    """The functions carrying the opt-in tag, name → tags (one paginated tag:GetResources)."""
    key, value = opt_in_tag
    found: dict[str, dict[str, str]] = {}
    pages = (
        clients.client("resourcegroupstaggingapi")
        .get_paginator("get_resources")
        .paginate(TagFilters=[{"Key": key, "Values": [value]}], ResourceTypeFilters=["lambda:function"])
    )
    for page in pages:
        for resource in page.get("ResourceTagMappingList", []):
            parts = str(resource.get("ResourceARN", "")).split(":")
            if len(parts) >= 7 and parts[5] == "function":
                found[parts[6]] = {str(t["Key"]): str(t["Value"]) for t in resource.get("Tags", [])}
    return found


def metric_alarms(clients: AwsClients) -> list[dict[str, Any]]:
    """Every metric alarm of the account in the Region (paginated DescribeAlarms)."""
    alarms: list[dict[str, Any]] = []
    for page in clients.cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        alarms.extend(dict(alarm) for alarm in page.get("MetricAlarms", []))
    return alarms


def scope(
    alarms: Sequence[Mapping[str, Any]],
    functions: Mapping[str, Mapping[str, str]],
    opt_in_tag: tuple[str, str],
    only: Sequence[str] = (),
    now: datetime | None = None,
) -> list[ScopedAlarm]:
    """Each alarm classified on its configuration (as if it fired now) and judged in or out of scope."""
    from medic.clock import SystemClock

    moment = now or SystemClock().now()
    databases = {tags[DATABASE_TAG] for tags in functions.values() if tags.get(DATABASE_TAG)}
    tag = "=".join(opt_in_tag)
    scoped = []
    for alarm in alarms:
        probe = StateChange(str(alarm["AlarmName"]), moment, "OK", "ALARM")
        try:
            signal = classify(parse_alarm_event(rebuild_event(alarm, probe), source=f"alarm {alarm['AlarmName']}"))
        except EventError as exc:
            scoped.append(ScopedAlarm(alarm, None, f"its configuration makes no valid event: {exc}"))
            continue
        target = signal.target
        if target.kind == "function" and target.function_name:
            skipped = (
                "" if target.function_name in functions else f"function {target.function_name} not opted in ({tag})"
            )
            if not skipped and only and target.function_name not in only:
                skipped = "not among --function"
        elif target.kind == "db_instance" and target.db_instance_id:
            skipped = (
                ""
                if target.db_instance_id in databases
                else f"no opted-in function is a consumer of database {target.db_instance_id} ({DATABASE_TAG})"
            )
            consumers = {name for name, tags in functions.items() if tags.get(DATABASE_TAG) == target.db_instance_id}
            if not skipped and only and not consumers & set(only):
                skipped = "no consumer among --function"
        else:
            skipped = f"no function or database target ({signal.reason})"
        scoped.append(ScopedAlarm(alarm, signal, skipped))
    return scoped


def state_changes(clients: AwsClients, alarm_name: str, period: Period) -> list[StateChange]:
    """The alarm's StateUpdate items in the period, oldest first (paginated DescribeAlarmHistory)."""
    pages = clients.cloudwatch.get_paginator("describe_alarm_history").paginate(
        AlarmName=alarm_name,
        HistoryItemType="StateUpdate",
        StartDate=period.since,
        EndDate=period.until,
        ScanBy="TimestampAscending",
    )
    changes = [parse_history_item(item) for page in pages for item in page.get("AlarmHistoryItems", [])]
    return sorted(changes, key=lambda change: change.time)
