"""PutMetricData Values/Counts kept whole, and the statistics GetMetricData, GetMetricStatistics and the alarm
evaluation compute over them, exercised over HTTP with boto3."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.cloudwatch.models import cloudwatch_backends

from medic_tools.world.alarms import evaluate_alarms
from medic_tools.world.server import DUMMY_CREDENTIAL, EmbeddedAWS

ACCOUNT = "123456789012"
REGION = "us-east-1"
T0 = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)
DIMENSIONS = [{"Name": "FunctionName", "Value": "checkout"}, {"Name": "Resource", "Value": "checkout:live"}]
STATISTICS = ["SampleCount", "Sum", "Average", "Minimum", "Maximum"]
PERCENTILES = ["p0", "p50", "p90", "p99", "p99.9", "p100", "tm90", "tm99"]


def duration(value: float | None = None, **member: Any) -> dict[str, Any]:
    """A Duration member of PutMetricData on checkout:live, at T0 + 10 s unless a Timestamp is given."""
    base: dict[str, Any] = {"MetricName": "Duration", "Dimensions": DIMENSIONS, "Timestamp": T0 + timedelta(seconds=10)}
    if value is not None:
        base["Value"] = value
    return base | member


def put(aws: EmbeddedAWS, *members: dict[str, Any], client: Any = None) -> None:
    (client or aws.client("cloudwatch")).put_metric_data(Namespace="AWS/Lambda", MetricData=list(members))


def metric_data(aws: EmbeddedAWS, stats: list[str], *, minutes: int = 2, start: datetime = T0) -> dict[str, list[Any]]:
    response = aws.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Duration", "Dimensions": DIMENSIONS},
                    "Period": 60,
                    "Stat": stat,
                },
            }
            for index, stat in enumerate(stats)
        ],
        StartTime=start,
        EndTime=T0 + timedelta(minutes=minutes),
        ScanBy="TimestampAscending",
    )
    by_id = {r["Id"]: r["Values"] for r in response["MetricDataResults"]}
    return {stat: by_id[f"q{index}"] for index, stat in enumerate(stats)}


def metric_statistics(aws: EmbeddedAWS, *, minutes: int = 2, **kwargs: Any) -> list[dict[str, Any]]:
    datapoints: list[dict[str, Any]] = aws.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=DIMENSIONS,
        StartTime=T0,
        EndTime=T0 + timedelta(minutes=minutes),
        Period=60,
        **kwargs,
    )["Datapoints"]
    return datapoints


def expected(samples: list[float], stat: str) -> float:
    """The statistic over raw samples, computed the plain way (nearest rank over the sorted, expanded list)."""
    ordered = sorted(samples)
    plain: dict[str, Callable[[], float]] = {
        "SampleCount": lambda: float(len(ordered)),
        "Sum": lambda: math.fsum(ordered),
        "Average": lambda: math.fsum(ordered) / len(ordered),
        "Minimum": lambda: ordered[0],
        "Maximum": lambda: ordered[-1],
    }
    if stat in plain:
        return plain[stat]()
    rank = max(1, math.ceil(Decimal(stat.lstrip("ptm")) * len(ordered) / 100))
    return math.fsum(ordered[:rank]) / rank if stat.startswith("tm") else ordered[rank - 1]


def close(actual: list[float], wanted: list[float]) -> bool:
    if len(actual) != len(wanted):
        return False
    return all(math.isclose(a, w, rel_tol=1e-9) for a, w in zip(actual, wanted, strict=True))


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def unvalidated_cloudwatch(aws: EmbeddedAWS) -> Any:
    """A CloudWatch client that sends what botocore would refuse client-side, to reach the server's validation."""
    return boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=aws.endpoint_url,
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        config=Config(parameter_validation=False),
    )


# --- Values/Counts: kept whole, the same statistics as the expanded samples ------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_values_and_counts_give_the_statistics_of_their_expanded_samples(aws: EmbeddedAWS, seed: int) -> None:
    rng = random.Random(seed)
    samples: list[list[float]] = [[], []]
    members = []
    for minute in range(2):
        for _ in range(rng.randint(1, 4)):
            values = [round(rng.lognormvariate(4, 1), 1) for _ in range(rng.randint(1, 150))]
            counts = [rng.choice([0, 1, 1, 2, 7, 40, 300]) for _ in values]
            at = T0 + timedelta(minutes=minute, seconds=rng.randint(0, 59))
            members.append(duration(Values=values, Counts=[float(c) for c in counts], Timestamp=at))
            samples[minute] += [v for v, c in zip(values, counts, strict=True) for _ in range(c)]
        single = round(rng.uniform(0, 500), 2)
        members.append(duration(single, Timestamp=T0 + timedelta(minutes=minute, seconds=30)))
        samples[minute].append(single)
    put(aws, *members)

    got = metric_data(aws, STATISTICS + PERCENTILES)
    stored = cloudwatch_backends[ACCOUNT][REGION].metric_data

    assert len(stored) == len(members)  # one datum per member, never one per sample
    for stat in ["SampleCount", "Minimum", "Maximum", "p0", "p50", "p90", "p99", "p99.9", "p100"]:
        assert got[stat] == [expected(minute, stat) for minute in samples], stat
    for stat in ["Sum", "Average", "tm90", "tm99"]:
        assert close(got[stat], [expected(minute, stat) for minute in samples]), stat
    by_statistics = metric_statistics(aws, Statistics=STATISTICS)
    by_percentiles = metric_statistics(aws, ExtendedStatistics=PERCENTILES[:7])
    for stat in STATISTICS:
        assert close([point[stat] for point in by_statistics], got[stat]), stat
    for stat in PERCENTILES[:7]:
        assert [point["ExtendedStatistics"][stat] for point in by_percentiles] == got[stat], stat


def test_counts_default_to_one_and_zero_counts_are_no_samples(aws: EmbeddedAWS) -> None:
    put(
        aws,
        duration(Values=[5.0, 9.0, 2.0]),
        duration(Values=[1000.0], Counts=[0.0], Timestamp=T0 + timedelta(minutes=1)),
    )

    assert metric_data(aws, ["SampleCount", "Maximum", "p50"]) == {
        "SampleCount": [3.0],
        "Maximum": [9.0],
        "p50": [5.0],
    }


def test_negative_values_have_statistics_but_no_percentile(aws: EmbeddedAWS) -> None:
    put(aws, duration(Values=[-3.0, 4.0], Counts=[1.0, 3.0]))

    assert metric_data(aws, ["Minimum", "Sum", "p50"]) == {"Minimum": [-3.0], "Sum": [9.0], "p50": []}
    [point] = metric_statistics(aws, ExtendedStatistics=["p50"])
    assert "ExtendedStatistics" not in point


def test_list_metrics_lists_each_metric_once(aws: EmbeddedAWS) -> None:
    put(
        aws,
        duration(Values=[1.0, 2.0], Counts=[10.0, 20.0]),
        duration(Values=[3.0]),
        duration(4.0, Dimensions=DIMENSIONS[:1]),
        duration(5.0, Dimensions=DIMENSIONS[:1]),
        duration(6.0, Dimensions=[]),
        duration(7.0, Dimensions=[]),
    )

    metrics = aws.client("cloudwatch").list_metrics(Namespace="AWS/Lambda")["Metrics"]

    assert sorted(len(m["Dimensions"]) for m in metrics) == [0, 1, 2]


# --- PutMetricData validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (duration(Values=[float(v) for v in range(151)]), "must not contain more than 150 values"),
        (duration(Values=[1.0, 2.0], Counts=[1.0]), "must be of the same size"),
        (duration(Values=[1.0], Counts=[-1.0]), "The value -1.0 for parameter MetricData.member.1.Counts is invalid"),
        (duration(Values=[2.0**361]), "for parameter MetricData.member.1.Values is invalid"),
        (duration(Values=[float("inf")]), "The value inf for parameter MetricData.member.1.Values is invalid"),
        (duration(Values=[float("nan")]), "for parameter MetricData.member.1.Values is invalid"),
        (duration(1.0, Values=[1.0]), "are mutually exclusive"),
        (duration(-(2.0**361)), "The value -4.69"),
    ],
)
def test_put_metric_data_refuses_what_aws_refuses(aws: EmbeddedAWS, member: dict[str, Any], message: str) -> None:
    code, status, text = error_of(lambda: put(aws, member, client=unvalidated_cloudwatch(aws)))

    assert (code, status) == ("InvalidParameterValue", 400)
    assert message in text
    assert cloudwatch_backends[ACCOUNT][REGION].metric_data == []


def test_put_metric_data_takes_at_most_1000_metrics(aws: EmbeddedAWS) -> None:
    members = [duration(float(index)) for index in range(1001)]

    code, status, text = error_of(lambda: put(aws, *members))

    assert (code, status) == ("InvalidParameterValue", 400)
    assert "greater than 1000" in text
    put(aws, *members[:1000])
    assert metric_data(aws, ["SampleCount"]) == {"SampleCount": [1000.0]}


# --- GetMetricStatistics and the periods ------------------------------------------------------------------------


def test_get_metric_statistics_matches_exact_dimensions_and_reports_the_unit(aws: EmbeddedAWS) -> None:
    put(
        aws,
        duration(Values=[10.0, 20.0], Counts=[3.0, 1.0], Unit="Milliseconds"),
        duration(500.0, Dimensions=DIMENSIONS[:1]),
        duration(7.0, Timestamp=T0 + timedelta(minutes=3)),  # outside [start, end)
    )

    [point] = metric_statistics(aws, Statistics=["SampleCount", "Average", "Maximum"])

    assert point == {
        "Timestamp": T0,
        "SampleCount": 4.0,
        "Average": 12.5,
        "Maximum": 20.0,
        "Unit": "Milliseconds",
    }


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"Statistics": ["Sum"], "ExtendedStatistics": ["p99"]}, "InvalidParameterCombination", "but not both"),
        ({}, "InvalidParameterCombination", "Must specify either Statistics or ExtendedStatistics"),
        ({"ExtendedStatistics": ["p101"]}, "InvalidParameterValue", "p101"),
        ({"Statistics": ["Median"]}, "InvalidParameterValue", "Median"),
        ({"Statistics": ["Sum"], "minutes": 1441}, "InvalidParameterCombination", "exceeds the limit of 1440"),
    ],
)
def test_get_metric_statistics_refuses_what_aws_refuses(
    aws: EmbeddedAWS, kwargs: dict[str, Any], code: str, message: str
) -> None:
    minutes = kwargs.pop("minutes", 2)
    cloudwatch = unvalidated_cloudwatch(aws)

    got_code, status, text = error_of(
        lambda: cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="Duration",
            Dimensions=DIMENSIONS,
            StartTime=T0,
            EndTime=T0 + timedelta(minutes=minutes),
            Period=60,
            **kwargs,
        )
    )

    assert (got_code, status) == (code, 400)
    assert message in text


def test_the_start_time_is_rounded_down_to_the_minute(aws: EmbeddedAWS) -> None:
    put(aws, duration(4.0, Timestamp=T0 + timedelta(seconds=10)), duration(6.0, Timestamp=T0 + timedelta(seconds=50)))

    from_mid_minute = metric_data(aws, ["Sum"], start=T0 + timedelta(seconds=30))
    [point] = aws.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=DIMENSIONS,
        StartTime=T0 + timedelta(seconds=30),
        EndTime=T0 + timedelta(minutes=2),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]

    assert from_mid_minute == {"Sum": [10.0]}
    assert (point["Timestamp"], point["Sum"]) == (T0, 10.0)


# --- the alarm evaluation sees the same numbers ------------------------------------------------------------------


def test_a_p99_alarm_evaluates_values_and_counts(aws: EmbeddedAWS) -> None:
    minute = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
    # 6,000 invocations in the minute: 5,900 fast, 100 slow; p99 is the 5,940th value, a slow one.
    put(aws, duration(Values=[40.0, 41.5, 1800.0], Counts=[3900.0, 2000.0, 100.0], Timestamp=minute))
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName="checkout-live-p99",
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=DIMENSIONS,
        ExtendedStatistic="p99",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1000.0,
        ComparisonOperator="GreaterThanThreshold",
    )

    [event] = evaluate_alarms(minute + timedelta(minutes=1, seconds=5))

    reason_data = json.loads(event["detail"]["state"]["reasonData"])
    assert event["detail"]["state"]["value"] == "ALARM"
    assert reason_data["evaluatedDatapoints"] == [
        {"timestamp": "2024-05-14T09:30:00.000+0000", "sampleCount": 6000.0, "value": 1800.0}
    ]
