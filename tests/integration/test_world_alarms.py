"""The world's CloudWatch alarm evaluation and the EventBridge events it emits (metrics and alarms go over HTTP)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from medic_tools.world.alarms import evaluate_alarms
from medic_tools.world.server import EmbeddedAWS

NOW = datetime(2024, 5, 14, 9, 31, 12, 345000, tzinfo=UTC)
LAST_MINUTE = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
SPILLOVER = "ProvisionedConcurrencySpilloverInvocations"
DIMENSIONS = {"FunctionName": "checkout", "Resource": "checkout:live"}
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-live-spillover"


def put_values(
    aws: EmbeddedAWS,
    values: list[float | None],
    *,
    last: datetime = LAST_MINUTE,
    metric: str = SPILLOVER,
    unit: str | None = None,
) -> None:
    """One datapoint per minute, the last at `last`; None leaves that minute empty."""
    data: list[dict[str, Any]] = []
    for index, value in enumerate(values):
        if value is None:
            continue
        datum: dict[str, Any] = {
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in DIMENSIONS.items()],
            "Timestamp": last - timedelta(minutes=len(values) - 1 - index),
            "Value": value,
        }
        if unit:
            datum["Unit"] = unit
        data.append(datum)
    if data:
        aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def put_alarm(aws: EmbeddedAWS, name: str = "checkout-live-spillover", **overrides: Any) -> None:
    alarm: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": "Invocations on checkout:live spill over the provisioned concurrency pool",
        "Namespace": "AWS/Lambda",
        "MetricName": SPILLOVER,
        "Dimensions": [{"Name": k, "Value": v} for k, v in DIMENSIONS.items()],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    alarm.update(overrides)
    aws.client("cloudwatch").put_metric_alarm(**{k: v for k, v in alarm.items() if v is not None})


def alarm_state(aws: EmbeddedAWS, name: str = "checkout-live-spillover") -> dict[str, Any]:
    alarms: list[dict[str, Any]] = aws.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarms[0]


def test_breach_raises_the_alarm_and_emits_the_aws_event(aws: EmbeddedAWS) -> None:
    put_values(aws, [0, 0, 35, 120, 180])
    put_alarm(aws)

    events = evaluate_alarms(NOW)

    assert len(events) == 1
    event = events[0]
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", event["id"])
    assert (event["version"], event["detail-type"], event["source"]) == (
        "0",
        "CloudWatch Alarm State Change",
        "aws.cloudwatch",
    )
    assert (event["account"], event["region"], event["time"]) == ("123456789012", "us-east-1", "2024-05-14T09:31:12Z")
    assert event["resources"] == [ALARM_ARN]
    detail = event["detail"]
    assert detail["alarmName"] == "checkout-live-spillover"
    state = detail["state"]
    assert state["value"] == "ALARM"
    assert state["timestamp"] == "2024-05-14T09:31:12.345+0000"
    assert state["reason"] == (
        "Threshold Crossed: 1 out of the last 1 datapoints [180.0 (14/05/24 09:30:00)] was greater than the "
        "threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition)."
    )
    reason_data = json.loads(state["reasonData"])
    assert list(reason_data) == [
        "version",
        "queryDate",
        "startDate",
        "statistic",
        "period",
        "recentDatapoints",
        "threshold",
        "evaluatedDatapoints",
    ]
    assert reason_data == {
        "version": "1.0",
        "queryDate": "2024-05-14T09:31:12.345+0000",
        "startDate": "2024-05-14T09:30:00.000+0000",
        "statistic": "Sum",
        "period": 60,
        "recentDatapoints": [180.0],
        "threshold": 0.0,
        "evaluatedDatapoints": [{"timestamp": "2024-05-14T09:30:00.000+0000", "sampleCount": 1.0, "value": 180.0}],
    }
    previous = detail["previousState"]
    assert set(previous) == {"value", "reason", "timestamp"}
    assert (previous["value"], previous["reason"]) == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", previous["timestamp"])
    configuration = detail["configuration"]
    assert configuration["description"] == "Invocations on checkout:live spill over the provisioned concurrency pool"
    [metric] = configuration["metrics"]
    assert set(metric) == {"id", "metricStat", "returnData"}
    assert metric["returnData"] is True
    assert metric["metricStat"] == {
        "metric": {"namespace": "AWS/Lambda", "name": SPILLOVER, "dimensions": DIMENSIONS},
        "period": 60,
        "stat": "Sum",
    }


def test_the_alarm_itself_changes_at_now(aws: EmbeddedAWS) -> None:
    put_values(aws, [180])
    put_alarm(aws)

    [event] = evaluate_alarms(NOW)

    alarm = alarm_state(aws)
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"] == event["detail"]["state"]["reason"]
    assert json.loads(alarm["StateReasonData"]) == json.loads(event["detail"]["state"]["reasonData"])
    assert alarm["StateUpdatedTimestamp"].astimezone(UTC) == NOW


def test_an_unchanged_state_emits_nothing(aws: EmbeddedAWS) -> None:
    put_values(aws, [180])
    put_alarm(aws)

    first = evaluate_alarms(NOW)
    second = evaluate_alarms(NOW + timedelta(seconds=20))

    assert len(first) == 1
    assert second == []


def test_recovery_returns_to_ok(aws: EmbeddedAWS) -> None:
    put_values(aws, [180])
    put_alarm(aws)
    [alarmed] = evaluate_alarms(NOW)
    put_values(aws, [0], last=LAST_MINUTE + timedelta(minutes=1))

    [recovered] = evaluate_alarms(NOW + timedelta(minutes=1))

    state = recovered["detail"]["state"]
    assert state["value"] == "OK"
    assert state["reason"] == (
        "Threshold Crossed: 1 out of the last 1 datapoints [0.0 (14/05/24 09:31:00)] was not greater than the "
        "threshold (0.0) (minimum 1 datapoint for ALARM -> OK transition)."
    )
    assert recovered["detail"]["previousState"] == alarmed["detail"]["state"]
    assert alarm_state(aws)["StateValue"] == "OK"


def test_a_datapoint_in_the_current_minute_is_not_evaluated_yet(aws: EmbeddedAWS) -> None:
    put_values(aws, [0, 500], last=LAST_MINUTE + timedelta(minutes=1))
    put_alarm(aws)

    [event] = evaluate_alarms(NOW)

    assert event["detail"]["state"]["value"] == "OK"


def test_m_out_of_n(aws: EmbeddedAWS) -> None:
    put_values(aws, [40, 0, 180])
    put_alarm(aws, EvaluationPeriods=3, DatapointsToAlarm=2)

    [event] = evaluate_alarms(NOW)

    state = event["detail"]["state"]
    assert state["reason"] == (
        "Threshold Crossed: 2 out of the last 3 datapoints [180.0 (14/05/24 09:30:00), 40.0 (14/05/24 09:28:00)] "
        "were greater than the threshold (0.0) (minimum 2 datapoints for OK -> ALARM transition)."
    )
    reason_data = json.loads(state["reasonData"])
    assert reason_data["startDate"] == "2024-05-14T09:28:00.000+0000"
    assert reason_data["recentDatapoints"] == [40.0, 0.0, 180.0]
    assert [d["value"] for d in reason_data["evaluatedDatapoints"]] == [180.0, 40.0]


# The tables of "How alarm state is evaluated when data is missing" (CloudWatch user guide): 5 datapoints, oldest
# first; 0 is good, X breaching, - missing. None means "retain current state" (here INSUFFICIENT_DATA).
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
DOC_TABLES = [
    (3, "0 - X - X", ("OK", "OK", "OK", "OK")),
    (3, "0 - - - -", ("OK", "OK", "OK", "OK")),
    (3, "- - - - -", ("INSUFFICIENT_DATA", None, "ALARM", "OK")),
    (3, "0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (3, "- - - - X", ("INSUFFICIENT_DATA", None, "ALARM", "OK")),
    # AWS: ALARM with `missing`; documented deviation in medic_tools.world.alarms, so that cell is not checked.
    (3, "X - - - -", (None, None, "ALARM", "OK")),
    (2, "0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (2, "0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    (2, "0 - X - -", ("OK", "OK", "ALARM", "OK")),
    (2, "- - - - 0", ("OK", "OK", "ALARM", "OK")),
    (2, "- - - - X", ("INSUFFICIENT_DATA", None, "ALARM", "OK")),
]
CASES = [
    pytest.param(to_alarm, row, treatment, expected, id=f"{to_alarm}of3 [{row}] {treatment}")
    for to_alarm, row, outcomes in DOC_TABLES
    for treatment, expected in zip(TREATMENTS, outcomes, strict=True)
    if not (row == "X - - - -" and treatment == "missing")
]


@pytest.mark.parametrize(("to_alarm", "row", "treatment", "expected"), CASES)
def test_missing_data_follows_the_documented_tables(
    aws: EmbeddedAWS, to_alarm: int, row: str, treatment: str, expected: str | None
) -> None:
    put_values(aws, [{"0": 0.0, "X": 10.0}.get(cell) for cell in row.split()])
    put_alarm(aws, Threshold=5.0, EvaluationPeriods=3, DatapointsToAlarm=to_alarm, TreatMissingData=treatment)

    events = evaluate_alarms(NOW)

    final = alarm_state(aws)["StateValue"]
    assert final == (expected or "INSUFFICIENT_DATA")
    assert len(events) == (0 if final == "INSUFFICIENT_DATA" else 1)


def test_ignore_keeps_the_current_state(aws: EmbeddedAWS) -> None:
    put_alarm(aws, TreatMissingData="ignore")
    aws.client("cloudwatch").set_alarm_state(AlarmName="checkout-live-spillover", StateValue="ALARM", StateReason="t")

    assert evaluate_alarms(NOW) == []
    assert alarm_state(aws)["StateValue"] == "ALARM"


def test_missing_data_treated_as_not_breaching(aws: EmbeddedAWS) -> None:
    put_alarm(aws, TreatMissingData="notBreaching")

    [event] = evaluate_alarms(NOW)

    state = event["detail"]["state"]
    assert state["value"] == "OK"
    assert state["reason"] == (
        "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as "
        "[NonBreaching] (minimum 1 datapoint for ALARM -> OK transition)."
    )
    assert json.loads(state["reasonData"])["evaluatedDatapoints"] == [{"timestamp": "2024-05-14T09:30:00.000+0000"}]


def test_no_data_goes_to_insufficient_data(aws: EmbeddedAWS) -> None:
    put_alarm(aws)
    aws.client("cloudwatch").set_alarm_state(AlarmName="checkout-live-spillover", StateValue="OK", StateReason="t")

    [event] = evaluate_alarms(NOW)

    state = event["detail"]["state"]
    assert (state["value"], state["reason"]) == ("INSUFFICIENT_DATA", "Insufficient Data: 3 datapoints were unknown.")
    reason_data = json.loads(state["reasonData"])
    assert "startDate" not in reason_data
    assert reason_data["recentDatapoints"] == []
    assert [d["timestamp"][11:16] for d in reason_data["evaluatedDatapoints"]] == ["09:30", "09:29", "09:28"]
    assert event["detail"]["previousState"]["reason"] == "t"


def test_p99_alarm(aws: EmbeddedAWS) -> None:
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Duration",
                "Dimensions": [{"Name": k, "Value": v} for k, v in DIMENSIONS.items()],
                "Timestamp": LAST_MINUTE + timedelta(seconds=5),
                "Values": [float(v) for v in range(1, 101)],
                "Unit": "Milliseconds",
            }
        ],
    )
    put_alarm(
        aws,
        "checkout-live-p99-duration",
        MetricName="Duration",
        Statistic=None,
        ExtendedStatistic="p99",
        Unit="Milliseconds",
        Threshold=98.0,
    )

    [event] = evaluate_alarms(NOW)

    state = event["detail"]["state"]
    assert state["reason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [99.0 (14/05/24 09:30:00)]")
    reason_data = json.loads(state["reasonData"])
    assert "statistic" not in reason_data
    assert reason_data["unit"] == "Milliseconds"
    assert reason_data["evaluatedDatapoints"] == [
        {"timestamp": "2024-05-14T09:30:00.000+0000", "sampleCount": 100.0, "value": 99.0}
    ]
    metric_stat = event["detail"]["configuration"]["metrics"][0]["metricStat"]
    assert (metric_stat["stat"], metric_stat["unit"]) == ("p99", "Milliseconds")


def test_low_sample_percentiles_can_be_ignored(aws: EmbeddedAWS) -> None:
    put_values(aws, [5000.0] * 1, metric="Duration")
    put_alarm(
        aws,
        MetricName="Duration",
        Statistic=None,
        ExtendedStatistic="p99",
        Threshold=1000.0,
        EvaluateLowSampleCountPercentile="ignore",
    )

    assert evaluate_alarms(NOW) == []
    assert alarm_state(aws)["StateValue"] == "INSUFFICIENT_DATA"


def test_alarm_on_a_single_metric_query_keeps_its_id(aws: EmbeddedAWS) -> None:
    put_values(aws, [180])
    put_alarm(
        aws,
        Namespace=None,
        MetricName=None,
        Dimensions=None,
        Statistic=None,
        Period=None,
        Metrics=[
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": SPILLOVER,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in DIMENSIONS.items()],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
        ],
    )

    [event] = evaluate_alarms(NOW)

    assert event["detail"]["configuration"]["metrics"][0]["id"] == "m1"
    assert event["detail"]["state"]["value"] == "ALARM"


def test_only_named_metric_alarms_are_evaluated(aws: EmbeddedAWS) -> None:
    put_values(aws, [180])
    put_alarm(aws, "a")
    put_alarm(aws, "b")
    put_alarm(
        aws,
        "math",
        Namespace=None,
        MetricName=None,
        Dimensions=None,
        Statistic=None,
        Period=None,
        Metrics=[
            {"Id": "e1", "Expression": "m1 * 2", "ReturnData": True},
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Lambda", "MetricName": SPILLOVER},
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
        ],
    )

    events = evaluate_alarms(NOW, names=["a", "math"])

    assert [e["detail"]["alarmName"] for e in events] == ["a"]
    assert alarm_state(aws, "b")["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm_state(aws, "math")["StateValue"] == "INSUFFICIENT_DATA"
