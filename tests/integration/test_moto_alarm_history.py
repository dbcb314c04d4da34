"""The world's alarm history (DescribeAlarmHistory, which moto lacks), exercised over HTTP with boto3: what each state
and configuration change records, and the operation's filters, order and paging as its API reference describes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.cloudwatch.models import cloudwatch_backends

from medic_tools.world.alarms import evaluate_alarms
from medic_tools.world.server import EmbeddedAWS

NOW = datetime(2024, 5, 14, 9, 31, 12, 345000, tzinfo=UTC)
DIMENSIONS = [{"Name": "FunctionName", "Value": "checkout"}]


def put_alarm(aws: EmbeddedAWS, name: str = "checkout-throttles", threshold: float = 0) -> None:
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name, Namespace="AWS/Lambda", MetricName="Throttles", Dimensions=DIMENSIONS, Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=threshold, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip


def put_throttles(aws: EmbeddedAWS, value: float, at: datetime) -> None:
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": "Throttles", "Dimensions": DIMENSIONS, "Timestamp": at, "Value": value}],
    )


def history(aws: EmbeddedAWS, **kwargs: Any) -> list[dict[str, Any]]:
    pages = aws.client("cloudwatch").get_paginator("describe_alarm_history").paginate(**kwargs)
    return [item for page in pages for item in page["AlarmHistoryItems"]]


def fire_and_recover(aws: EmbeddedAWS) -> list[dict[str, Any]]:
    """checkout-throttles: ALARM at NOW, OK two minutes later (the world's evaluation); their events."""
    put_alarm(aws)
    put_throttles(aws, 7, NOW - timedelta(minutes=1))
    events = evaluate_alarms(NOW)
    put_throttles(aws, 0, NOW + timedelta(minutes=1))
    events += evaluate_alarms(NOW + timedelta(minutes=2))
    return events


def test_each_state_change_of_the_evaluation_is_a_state_update_stamped_with_its_event_state_timestamp(
    aws: EmbeddedAWS,
) -> None:
    events = fire_and_recover(aws)

    items = history(aws, AlarmName="checkout-throttles", HistoryItemType="StateUpdate", ScanBy="TimestampAscending")

    assert [item["HistorySummary"] for item in items] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM", "Alarm updated from ALARM to OK",
    ]  # fmt: skip
    for item, event in zip(items, events, strict=True):
        state, previous = event["detail"]["state"], event["detail"]["previousState"]
        assert item["AlarmName"] == "checkout-throttles"
        assert item["AlarmType"] == "MetricAlarm"
        stamped = item["Timestamp"].astimezone(UTC)
        assert f"{stamped:%Y-%m-%dT%H:%M:%S}.{stamped.microsecond // 1000:03d}+0000" == state["timestamp"]
        data = json.loads(item["HistoryData"])
        assert data["version"] == "1.0"
        assert data["newState"] == {"stateValue": state["value"], "stateReason": state["reason"],
                                    "stateReasonData": json.loads(state["reasonData"])}  # fmt: skip
        assert data["oldState"]["stateValue"] == previous["value"]
        assert data["oldState"]["stateReason"] == previous["reason"]
        if "reasonData" in previous:
            assert data["oldState"]["stateReasonData"] == json.loads(previous["reasonData"])
        else:
            assert "stateReasonData" not in data["oldState"]


def test_set_alarm_state_is_recorded_when_served(aws: EmbeddedAWS) -> None:
    put_alarm(aws)
    before = datetime.now(UTC) - timedelta(seconds=1)
    aws.client("cloudwatch").set_alarm_state(AlarmName="checkout-throttles", StateValue="ALARM",
                                             StateReason="testing", StateReasonData='{"drill": true}')  # fmt: skip

    [item] = history(aws, HistoryItemType="StateUpdate")

    assert item["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert before <= item["Timestamp"] <= datetime.now(UTC) + timedelta(seconds=1)
    assert json.loads(item["HistoryData"])["newState"] == {"stateValue": "ALARM", "stateReason": "testing",
                                                           "stateReasonData": {"drill": True}}  # fmt: skip


def test_creating_updating_and_deleting_an_alarm_are_configuration_updates_and_the_history_outlives_the_alarm(
    aws: EmbeddedAWS,
) -> None:
    put_alarm(aws)
    put_alarm(aws, threshold=5)
    aws.client("cloudwatch").set_alarm_state(AlarmName="checkout-throttles", StateValue="OK", StateReason="drill")
    aws.client("cloudwatch").delete_alarms(AlarmNames=["checkout-throttles"])

    items = history(aws, AlarmName="checkout-throttles", HistoryItemType="ConfigurationUpdate",
                    ScanBy="TimestampAscending")  # fmt: skip

    assert [item["HistorySummary"] for item in items] == [
        'Alarm "checkout-throttles" created', 'Alarm "checkout-throttles" updated',
        'Alarm "checkout-throttles" deleted',
    ]  # fmt: skip
    data = [json.loads(item["HistoryData"]) for item in items]
    assert [d["type"] for d in data] == ["Create", "Update", "Delete"]
    assert data[0]["createdAlarm"]["threshold"] == 0 and data[1]["updatedAlarm"]["threshold"] == 5
    assert data[2]["deletedAlarm"]["alarmName"] == "checkout-throttles"
    assert [i["HistoryItemType"] for i in history(aws, AlarmName="checkout-throttles")].count("StateUpdate") == 1


def test_newest_first_unless_asked_and_the_dates_bound_the_items_inclusively(aws: EmbeddedAWS) -> None:
    fire_and_recover(aws)
    stamps = [i["Timestamp"] for i in history(aws, HistoryItemType="StateUpdate", ScanBy="TimestampAscending")]

    assert [i["Timestamp"] for i in history(aws, HistoryItemType="StateUpdate")] == stamps[::-1]
    assert [i["Timestamp"] for i in history(aws, HistoryItemType="StateUpdate", StartDate=stamps[1])] == stamps[1:]
    assert [i["Timestamp"] for i in history(aws, HistoryItemType="StateUpdate", EndDate=stamps[0])] == stamps[:1]
    window = history(aws, HistoryItemType="StateUpdate", StartDate=NOW + timedelta(seconds=1),
                     EndDate=NOW + timedelta(minutes=1))  # fmt: skip
    assert window == []


def test_alarm_name_and_alarm_types_select_the_alarms(aws: EmbeddedAWS) -> None:
    fire_and_recover(aws)
    put_alarm(aws, "other")
    # moto serves no PutCompositeAlarm: the composite alarm is made on the backend this process's server serves.
    cloudwatch_backends["123456789012"]["us-east-1"].put_metric_alarm(
        name="both", namespace="", metric_name="", comparison_operator="", evaluation_periods=0, period=0,
        threshold=0, statistic="", description="", dimensions=[], alarm_actions=[],
        rule='ALARM("checkout-throttles") AND ALARM("other")',
    )  # fmt: skip

    assert {i["AlarmName"] for i in history(aws)} == {"checkout-throttles", "other"}  # metric alarms only
    assert {i["AlarmName"] for i in history(aws, AlarmName="other")} == {"other"}
    composite = history(aws, AlarmTypes=["CompositeAlarm"])
    assert {(i["AlarmName"], i["AlarmType"]) for i in composite} == {("both", "CompositeAlarm")}
    assert len(history(aws, AlarmTypes=["CompositeAlarm", "MetricAlarm"])) == len(history(aws)) + len(composite)
    assert history(aws, AlarmTypes=["LogAlarm"]) == []
    assert history(aws, AlarmName="no-such-alarm") == []


def test_max_records_pages_with_a_next_token_that_only_continues_the_same_query(aws: EmbeddedAWS) -> None:
    for index in range(5):
        put_alarm(aws, f"alarm-{index}")
    cloudwatch = aws.client("cloudwatch")

    first = cloudwatch.describe_alarm_history(HistoryItemType="ConfigurationUpdate", MaxRecords=2)
    pages = [len(page["AlarmHistoryItems"]) for page in cloudwatch.get_paginator("describe_alarm_history").paginate(
        HistoryItemType="ConfigurationUpdate", PaginationConfig={"PageSize": 2})]  # fmt: skip

    assert len(first["AlarmHistoryItems"]) == 2 and first["NextToken"]
    assert pages == [2, 2, 1]
    assert "NextToken" not in cloudwatch.describe_alarm_history(HistoryItemType="ConfigurationUpdate")
    for token, kwargs in ((first["NextToken"], {"HistoryItemType": "StateUpdate"}), ("not-a-token", {})):
        with pytest.raises(ClientError) as refused:
            cloudwatch.describe_alarm_history(NextToken=token, MaxRecords=2, **kwargs)
        assert refused.value.response["Error"]["Code"] == "InvalidNextToken"


@pytest.mark.parametrize(
    ("kwargs", "member"),
    [({"MaxRecords": 101}, "maxRecords"), ({"HistoryItemType": "Everything"}, "historyItemType"),
     ({"ScanBy": "Sideways"}, "scanBy"), ({"AlarmTypes": ["MetricAlarm", "Gauge"]}, "alarmTypes.2.member")],
)  # fmt: skip
def test_values_outside_the_documented_constraints_are_validation_errors(
    aws: EmbeddedAWS, kwargs: dict[str, Any], member: str
) -> None:
    with pytest.raises(ClientError) as refused:
        aws.client("cloudwatch").describe_alarm_history(**kwargs)

    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert f"at '{member}' failed to satisfy constraint" in error["Message"]


def test_history_data_stays_within_4095_characters_leaving_the_old_reason_data_out_first(aws: EmbeddedAWS) -> None:
    put_alarm(aws)
    cloudwatch = aws.client("cloudwatch")
    big = json.dumps({"recentDatapoints": list(range(300))})  # ~1.2 KB: two fit, three do not
    for state in ("ALARM", "OK"):
        cloudwatch.set_alarm_state(AlarmName="checkout-throttles", StateValue=state, StateReason="drill",
                                   StateReasonData=big)  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="checkout-throttles", StateValue="ALARM", StateReason="drill",
                               StateReasonData=json.dumps({"recentDatapoints": list(range(1500))}))  # fmt: skip

    items = history(aws, HistoryItemType="StateUpdate", ScanBy="TimestampAscending")

    assert all(len(item["HistoryData"]) <= 4095 for item in items)
    second, third = (json.loads(item["HistoryData"]) for item in items[1:])
    assert "stateReasonData" in second["oldState"] and "stateReasonData" in second["newState"]
    assert "stateReasonData" not in third["oldState"] and "stateReasonData" not in third["newState"]


def test_a_reset_forgets_the_history(aws: EmbeddedAWS) -> None:
    fire_and_recover(aws)

    aws.reset()

    assert history(aws) == []
