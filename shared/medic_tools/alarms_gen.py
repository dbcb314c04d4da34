"""`medic alarms`: the alarms Medic's runbook is written for, for one function (and its database).

Each alarm is one definition rendered three ways: CloudFormation (`AWS::CloudWatch::Alarm` resources to paste
into a stack), AWS CLI commands (`aws cloudwatch put-metric-alarm`), or the `alarm:` block of a `medic simulate`
scenario. No alarm action is needed: EventBridge delivers every alarm state change to Medic's triage rule.

The recommended set (AWS's own recommendations for Lambda, tuned for Medic's tables):

* throttles — `Throttles` Sum > 0 for 2 of 3 minutes, on the function;
* spillover — `ProvisionedConcurrencySpilloverInvocations` Sum > 0 for 2 of 2 minutes, on the alias (with PC);
* p99 — `Duration` p99 above the latency objective for 3 of 5 minutes, on the alias;
* pc-idle (cost) — `ProvisionedConcurrencyUtilization` Maximum < 30% for 24 hours, on the alias;
* db-connections — `AWS/RDS DatabaseConnections` Maximum > 80% of `max_connections` for 3 of 3 minutes.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from medic.errors import InputError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class AlarmDefinition:
    """One CloudWatch metric alarm, in the scenario's terms (docs/SCENARIOS.md, `alarm`)."""

    name: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str
    period: int
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    description: str
    treat_missing_data: str = "notBreaching"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def percentile(self) -> bool:
        return bool(re.match(r"^p\d", self.stat))

    def scenario(self) -> dict[str, Any]:
        """The `alarm:` block of a scenario (`medic simulate` consumes it)."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "metric": self.metric,
            "dimensions": self.dimensions,
            "stat": self.stat,
            "period": self.period,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "evaluation_periods": self.evaluation_periods,
            "datapoints_to_alarm": self.datapoints_to_alarm,
            "treat_missing_data": self.treat_missing_data,
            "description": self.description,
        }

    def cloudformation(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "Namespace": self.namespace,
            "MetricName": self.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
            "Period": self.period,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.datapoints_to_alarm,
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,
            "TreatMissingData": self.treat_missing_data,
        }
        props["ExtendedStatistic" if self.percentile else "Statistic"] = self.stat
        if self.tags:
            props["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        return {"Type": "AWS::CloudWatch::Alarm", "Properties": props}

    def cli(self) -> str:
        args = [
            "aws",
            "cloudwatch",
            "put-metric-alarm",
            "--alarm-name",
            self.name,
            "--alarm-description",
            self.description,
            "--namespace",
            self.namespace,
            "--metric-name",
            self.metric,
            "--dimensions",
            *[f"Name={k},Value={v}" for k, v in self.dimensions.items()],
            "--extended-statistic" if self.percentile else "--statistic",
            self.stat,
            "--period",
            str(self.period),
            "--evaluation-periods",
            str(self.evaluation_periods),
            "--datapoints-to-alarm",
            str(self.datapoints_to_alarm),
            "--threshold",
            f"{self.threshold:g}",
            "--comparison-operator",
            self.comparison,
            "--treat-missing-data",
            self.treat_missing_data,
        ]
        return " ".join(shlex.quote(arg) for arg in args)


def recommended(
    function: str,
    *,
    alias: str | None = None,
    p99_ms: float = 1000.0,
    database: str | None = None,
    max_connections: int | None = None,
    prefix: str = "",
) -> list[AlarmDefinition]:
    """The alarms for `function` (alias-level ones only when `alias` is given: PC lives on an alias)."""
    for value, what in ((function, "FUNCTION"), (alias, "--alias")):
        if value is not None and not _NAME.match(value):
            raise InputError(field=what, source="medic alarms", problem=f"{value!r} is not a valid Lambda name")
    if p99_ms <= 0:
        raise InputError(field="--p99-ms", source="medic alarms", problem="the latency objective must be > 0 ms")
    if database and not max_connections:
        raise InputError(
            field="--max-connections",
            source="medic alarms",
            problem="give the database's max_connections (its parameter group value)",
        )
    base = f"{prefix}{function}"
    qualified = {"FunctionName": function, "Resource": f"{function}:{alias}"} if alias else {"FunctionName": function}
    where = f"{function}:{alias}" if alias else function
    alarms = [
        AlarmDefinition(
            name=f"{base}-throttles",
            namespace="AWS/Lambda",
            metric="Throttles",
            dimensions={"FunctionName": function},
            stat="Sum",
            period=60,
            threshold=0,
            comparison="GreaterThanThreshold",
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description=f"Invocations of {function} are throttled (Medic: throttles table)",
        ),
        AlarmDefinition(
            name=f"{base}{'-' + alias if alias else ''}-p99-duration",
            namespace="AWS/Lambda",
            metric="Duration",
            dimensions=qualified,
            stat="p99",
            period=60,
            threshold=p99_ms,
            comparison="GreaterThanThreshold",
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data="missing",
            description=f"p99 Duration of {where} above {p99_ms:g} ms (Medic: p99_latency table)",
        ),
    ]
    if alias:
        alarms += [
            AlarmDefinition(
                name=f"{base}-{alias}-spillover",
                namespace="AWS/Lambda",
                metric="ProvisionedConcurrencySpilloverInvocations",
                dimensions=qualified,
                stat="Sum",
                period=60,
                threshold=0,
                comparison="GreaterThanThreshold",
                evaluation_periods=2,
                datapoints_to_alarm=2,
                description=f"Invocations spill over the provisioned pool of {where} (Medic: spillover table)",
            ),
            AlarmDefinition(
                name=f"{base}-{alias}-pc-idle",
                namespace="AWS/Lambda",
                metric="ProvisionedConcurrencyUtilization",
                dimensions=qualified,
                stat="Maximum",
                period=3600,
                threshold=0.3,
                comparison="LessThanThreshold",
                evaluation_periods=24,
                datapoints_to_alarm=24,
                treat_missing_data="missing",
                description=f"The provisioned pool of {where} stayed under 30% used for a day (Medic: cost row)",
            ),
        ]
    if database and max_connections:
        alarms.append(
            AlarmDefinition(
                name=f"{prefix}{database}-connections",
                namespace="AWS/RDS",
                metric="DatabaseConnections",
                dimensions={"DBInstanceIdentifier": database},
                stat="Maximum",
                period=60,
                threshold=float(int(max_connections * 0.8)),
                comparison="GreaterThanThreshold",
                evaluation_periods=3,
                datapoints_to_alarm=3,
                description=f"{database} above 80% of max_connections ({max_connections}) (Medic: db_connections)",
            )
        )
    return alarms


def render(alarms: list[AlarmDefinition], fmt: str) -> str:
    """CloudFormation YAML (a Resources fragment), CLI commands, or scenario `alarm:` blocks (YAML documents)."""
    if fmt == "cloudformation":
        resources = {_logical_id(a.name): a.cloudformation() for a in alarms}
        return yaml.safe_dump({"Resources": resources}, sort_keys=False)
    if fmt == "cli":
        return "\n".join(a.cli() for a in alarms) + "\n"
    if fmt == "scenario":
        return yaml.safe_dump_all([{"alarm": a.scenario()} for a in alarms], sort_keys=False)
    if fmt == "json":
        return json.dumps([a.scenario() for a in alarms], indent=2) + "\n"
    raise InputError(field="--format", source="medic alarms", problem=f"unknown format {fmt!r}")


def _logical_id(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part) + "Alarm"
