"""The world's extensions of moto, exercised over HTTP with boto3 as Medic's code would call AWS."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from medic_tools.world import moto_ext
from medic_tools.world.server import DUMMY_CREDENTIAL, EmbeddedAWS

ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


ZIP = _zip()


def make_function(
    aws: EmbeddedAWS,
    name: str,
    *,
    versions: int = 1,
    aliases: dict[str, str] | None = None,
    reserved: int | None = None,
) -> Any:
    """A function with `versions` published versions and aliases (default live → 1); returns a Lambda client."""
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName="medic-test")["Role"]["Arn"]
    except ClientError:
        role = iam.create_role(RoleName="medic-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = aws.client("lambda")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": ZIP}
    )
    for index in range(versions):
        if index:
            lam.update_function_configuration(FunctionName=name, Description=f"v{index + 1}")
        lam.publish_version(FunctionName=name)
    for alias, version in ({"live": "1"} if aliases is None else aliases).items():
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    if reserved is not None:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    return lam


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def unvalidated_lambda(aws: EmbeddedAWS) -> Any:
    """A Lambda client that sends what botocore would refuse client-side, to reach the server's validation."""
    return boto3.client(
        "lambda",
        region_name=REGION,
        endpoint_url=aws.endpoint_url,
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        config=Config(parameter_validation=False),
    )


def pc(lam: Any, name: str, qualifier: str) -> dict[str, Any]:
    config: dict[str, Any] = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
    config.pop("ResponseMetadata")
    return config


# --- provisioned concurrency: happy path and status transitions ------------------------------------------------


def test_put_pc_is_accepted_in_progress_then_ready(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")

    put = lam.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=20
    )

    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["Status"] == "IN_PROGRESS"
    assert put["RequestedProvisionedConcurrentExecutions"] == 20
    assert put["AllocatedProvisionedConcurrentExecutions"] == 0
    assert put["AvailableProvisionedConcurrentExecutions"] == 0
    assert put["LastModified"].endswith("+0000")
    got = pc(lam, "checkout", "live")
    assert got["Status"] == "READY"
    assert got["AllocatedProvisionedConcurrentExecutions"] == 20
    assert got["AvailableProvisionedConcurrentExecutions"] == 20
    assert "StatusReason" not in got


def test_pc_on_a_version_and_update_keeps_one_config(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout", versions=2, aliases={})
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="2", ProvisionedConcurrentExecutions=5)
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="2", ProvisionedConcurrentExecutions=7)

    configs = lam.list_provisioned_concurrency_configs(FunctionName="checkout")["ProvisionedConcurrencyConfigs"]

    assert [(c["FunctionArn"], c["RequestedProvisionedConcurrentExecutions"]) for c in configs] == [
        (f"{FUNCTION_ARN}:checkout:2", 7)
    ]


def test_ready_delay_keeps_the_previous_allocation_while_in_progress(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=5)
    assert pc(lam, "checkout", "live")["Status"] == "READY"
    moto_ext.set_provisioned_concurrency_ready_delay(0.3)

    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=9)

    during = pc(lam, "checkout", "live")
    assert (during["Status"], during["RequestedProvisionedConcurrentExecutions"]) == ("IN_PROGRESS", 9)
    assert during["AllocatedProvisionedConcurrentExecutions"] == 5
    time.sleep(0.35)
    after = pc(lam, "checkout", "live")
    assert (after["Status"], after["AllocatedProvisionedConcurrentExecutions"]) == ("READY", 9)


def test_injected_failure_ends_failed_with_reason_and_is_one_shot(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=5)
    moto_ext.inject_provisioned_concurrency_failure("checkout", "live", "FUNCTION_ERROR_INIT_FAILURE")

    put = lam.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=8
    )

    assert put["Status"] == "IN_PROGRESS"
    failed = pc(lam, "checkout", "live")
    assert failed["Status"] == "FAILED"
    assert failed["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
    assert failed["AllocatedProvisionedConcurrentExecutions"] == 5
    assert failed["RequestedProvisionedConcurrentExecutions"] == 8
    listed = lam.list_provisioned_concurrency_configs(FunctionName="checkout")["ProvisionedConcurrencyConfigs"]
    assert listed[0]["Status"] == "FAILED"
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=8)
    assert pc(lam, "checkout", "live")["Status"] == "READY"


def test_failure_with_a_delay_is_in_progress_first(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")
    moto_ext.set_provisioned_concurrency_ready_delay(0.2)
    moto_ext.inject_provisioned_concurrency_failure("checkout", "live", "no capacity")
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=3)

    assert pc(lam, "checkout", "live")["Status"] == "IN_PROGRESS"
    time.sleep(0.25)
    assert pc(lam, "checkout", "live")["Status"] == "FAILED"


def test_delete_and_list(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout", versions=2, aliases={"live": "1", "canary": "2"})
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=2)
    lam.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="canary", ProvisionedConcurrentExecutions=3
    )

    pages = lam.get_paginator("list_provisioned_concurrency_configs").paginate(
        FunctionName="checkout", PaginationConfig={"PageSize": 1}
    )
    arns = [c["FunctionArn"] for page in pages for c in page["ProvisionedConcurrencyConfigs"]]
    deleted = lam.delete_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")

    assert arns == [f"{FUNCTION_ARN}:checkout:canary", f"{FUNCTION_ARN}:checkout:live"]
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, status, _ = error_of(
        lambda: lam.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")
    )
    assert (code, status) == ("ProvisionedConcurrencyConfigNotFoundException", 404)
    remaining = lam.list_provisioned_concurrency_configs(FunctionName="checkout")["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in remaining] == [f"{FUNCTION_ARN}:checkout:canary"]


def test_deleting_an_alias_deletes_its_pc(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=2)

    lam.delete_alias(FunctionName="checkout", Name="live")

    assert lam.list_provisioned_concurrency_configs(FunctionName="checkout")["ProvisionedConcurrencyConfigs"] == []


# --- provisioned concurrency: validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "qualifier", "expected"),
    [
        ("checkout", "$LATEST", ("InvalidParameterValueException", 400)),
        ("checkout", "latest-alias", ("InvalidParameterValueException", 400)),
        ("nope", "live", ("ResourceNotFoundException", 404)),
        ("checkout", "missing", ("ResourceNotFoundException", 404)),
        ("checkout", "42", ("ResourceNotFoundException", 404)),
    ],
)
def test_put_pc_errors(aws: EmbeddedAWS, function: str, qualifier: str, expected: tuple[str, int]) -> None:
    lam = make_function(aws, "checkout", aliases={"live": "1", "latest-alias": "$LATEST"})

    code, status, message = error_of(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName=function, Qualifier=qualifier, ProvisionedConcurrentExecutions=1
        )
    )

    assert (code, status) == expected
    if code == "InvalidParameterValueException":
        assert message == "Provisioned Concurrency Configs cannot be applied to unpublished function versions."


def test_put_pc_messages_name_the_missing_resource(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")

    _, _, alias = error_of(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName="checkout", Qualifier="blue", ProvisionedConcurrentExecutions=1
        )
    )
    _, _, function = error_of(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName="ghost", Qualifier="live", ProvisionedConcurrentExecutions=1
        )
    )

    assert alias == f"Cannot find alias arn: {FUNCTION_ARN}:checkout:blue"
    assert function == f"Function not found: {FUNCTION_ARN}:ghost"


def test_put_pc_below_one_is_a_validation_error(aws: EmbeddedAWS) -> None:
    make_function(aws, "checkout")
    raw = unvalidated_lambda(aws)

    code, status, message = error_of(
        lambda: raw.put_provisioned_concurrency_config(
            FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=0
        )
    )

    assert (code, status) == ("ValidationException", 400)
    assert "greater than or equal to 1" in message


def test_get_and_delete_reject_latest(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")

    get = error_of(lambda: lam.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="$LATEST"))
    delete = error_of(lambda: lam.delete_provisioned_concurrency_config(FunctionName="checkout", Qualifier="$LATEST"))
    listing = error_of(lambda: lam.list_provisioned_concurrency_configs(FunctionName="ghost"))

    expected = (
        "InvalidParameterValueException",
        400,
        "The function resource provided must be an alias or a published version.",
    )
    assert get == expected
    assert delete == expected
    assert listing[:2] == ("ResourceNotFoundException", 404)


def test_one_config_per_version(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout", versions=2, aliases={"live": "1", "blue": "1", "canary": "2"})
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=2)
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="2", ProvisionedConcurrentExecutions=2)

    version_under_alias = error_of(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName="checkout", Qualifier="1", ProvisionedConcurrentExecutions=1
        )
    )
    second_alias = error_of(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName="checkout", Qualifier="blue", ProvisionedConcurrentExecutions=1
        )
    )
    alias_on_version = error_of(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName="checkout", Qualifier="canary", ProvisionedConcurrentExecutions=1
        )
    )

    assert version_under_alias == (
        "ResourceConflictException",
        409,
        "Version is pointed by a Provisioned Concurrency alias",
    )
    assert second_alias[:2] == alias_on_version[:2] == ("ResourceConflictException", 409)
    assert (
        alias_on_version[2]
        == "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
    )


# --- reserved concurrency, PC and the account ------------------------------------------------------------------


def test_pc_cannot_exceed_reserved_concurrency(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout", versions=2, aliases={"live": "1"}, reserved=10)
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=6)

    over = error_of(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName="checkout", Qualifier="2", ProvisionedConcurrentExecutions=5
        )
    )
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="2", ProvisionedConcurrentExecutions=4)

    assert over == (
        "InvalidParameterValueException",
        400,
        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
    )


def test_reserved_concurrency_cannot_go_below_pc(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout", reserved=50)
    lam.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=30
    )

    code, status, _ = error_of(
        lambda: lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=29)
    )
    lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=30)

    assert (code, status) == ("InvalidParameterValueException", 400)
    assert lam.get_function_concurrency(FunctionName="checkout")["ReservedConcurrentExecutions"] == 30


def test_account_settings_and_the_unreserved_minimum(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout", reserved=850)
    make_function(aws, "orders")
    make_function(aws, "search")

    settings = lam.get_account_settings()
    too_much_pc = error_of(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName="orders", Qualifier="live", ProvisionedConcurrentExecutions=60
        )
    )
    lam.put_provisioned_concurrency_config(FunctionName="orders", Qualifier="live", ProvisionedConcurrentExecutions=50)
    too_much_reserved = error_of(
        lambda: lam.put_function_concurrency(FunctionName="search", ReservedConcurrentExecutions=1)
    )

    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 150
    assert settings["AccountUsage"]["FunctionCount"] == 3
    assert settings["AccountUsage"]["TotalCodeSize"] > 0
    assert too_much_pc == (
        "InvalidParameterValueException",
        400,
        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its "
        "minimum value of [100].",
    )
    assert too_much_reserved == (
        "InvalidParameterValueException",
        400,
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [100].",
    )
    # AccountLimit subtracts reserved concurrency only (AWS's documented definition).
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 150


def test_reserved_concurrency_is_enforced_without_moto_env(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")

    code, _, _ = error_of(
        lambda: lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=901)
    )
    lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=900)

    assert code == "InvalidParameterValueException"


def test_account_limit_knob(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")
    moto_ext.set_account_concurrency_limit(3000)

    lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=2500)

    limit = lam.get_account_settings()["AccountLimit"]
    assert (limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]) == (3000, 500)


def test_small_account_minimum_is_its_limit(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")
    moto_ext.set_account_concurrency_limit(10)

    _, _, message = error_of(
        lambda: lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=1)
    )

    assert message.endswith("below its minimum value of [10].")


def test_reset_restores_the_knobs(aws: EmbeddedAWS) -> None:
    moto_ext.set_account_concurrency_limit(10)
    moto_ext.set_provisioned_concurrency_ready_delay(30)
    moto_ext.inject_provisioned_concurrency_failure("checkout", "live", "boom")

    aws.reset()
    lam = make_function(aws, "checkout")
    lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=5)

    assert lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert pc(lam, "checkout", "live")["Status"] == "READY"


def test_get_function_reports_reserved_concurrency_for_every_qualifier(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout", reserved=7)

    lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=0)

    assert lam.get_function(FunctionName="checkout")["Concurrency"] == {"ReservedConcurrentExecutions": 0}
    assert lam.get_function(FunctionName="checkout", Qualifier="live")["Concurrency"] == {
        "ReservedConcurrentExecutions": 0
    }
    lam.delete_function_concurrency(FunctionName="checkout")
    assert "Concurrency" not in lam.get_function(FunctionName="checkout", Qualifier="live")


# --- CloudWatch percentiles -------------------------------------------------------------------------------------

T0 = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)
DIMENSIONS = [{"Name": "FunctionName", "Value": "checkout"}, {"Name": "Resource", "Value": "checkout:live"}]


def metric_data(
    aws: EmbeddedAWS, stats: list[str], *, namespace: str = "AWS/Lambda", period: int = 60
) -> dict[str, list[float]]:
    response = aws.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": "Duration", "Dimensions": DIMENSIONS},
                    "Period": period,
                    "Stat": stat,
                },
            }
            for index, stat in enumerate(stats)
        ],
        StartTime=T0,
        EndTime=T0 + timedelta(minutes=2),
        ScanBy="TimestampAscending",
    )
    by_id = {r["Id"]: r["Values"] for r in response["MetricDataResults"]}
    return {stat: by_id[f"q{index}"] for index, stat in enumerate(stats)}


def test_percentiles_over_raw_values(aws: EmbeddedAWS) -> None:
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Duration",
                "Dimensions": DIMENSIONS,
                "Timestamp": T0 + timedelta(seconds=10),
                "Values": [float(v) for v in range(1, 101)],
                "Unit": "Milliseconds",
            }
        ],
    )

    values = metric_data(
        aws, ["p99", "p50", "p90", "p99.9", "tm99", "Sum", "Average", "SampleCount", "Minimum", "Maximum"]
    )

    assert values == {
        "p99": [99.0],
        "p50": [50.0],
        "p90": [90.0],
        "p99.9": [100.0],
        "tm99": [50.0],
        "Sum": [5050.0],
        "Average": [50.5],
        "SampleCount": [100.0],
        "Minimum": [1.0],
        "Maximum": [100.0],
    }


def test_percentiles_expand_counts_per_period(aws: EmbeddedAWS) -> None:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Duration",
                "Dimensions": DIMENSIONS,
                "Timestamp": T0,
                "Values": [10.0, 2000.0],
                "Counts": [99.0, 1.0],
            },
            {"MetricName": "Duration", "Dimensions": DIMENSIONS, "Timestamp": T0 + timedelta(minutes=1), "Value": 7.0},
        ],
    )

    values = metric_data(aws, ["p99", "p100", "SampleCount"])

    assert values == {"p99": [10.0, 7.0], "p100": [2000.0, 7.0], "SampleCount": [100.0, 1.0]}


def test_statistic_sets_yield_percentiles_only_when_aws_can(aws: EmbeddedAWS) -> None:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Duration",
                "Dimensions": DIMENSIONS,
                "Timestamp": T0,
                "StatisticValues": {"SampleCount": 10, "Sum": 30, "Minimum": 1, "Maximum": 5},
            },
            {
                "MetricName": "Duration",
                "Dimensions": DIMENSIONS,
                "Timestamp": T0 + timedelta(minutes=1),
                "StatisticValues": {"SampleCount": 4, "Sum": 12, "Minimum": 3, "Maximum": 3},
            },
        ],
    )

    values = metric_data(aws, ["p99", "Sum", "Maximum"])

    assert values == {"p99": [3.0], "Sum": [30.0, 12.0], "Maximum": [5.0, 3.0]}


def test_metric_data_matches_namespace_and_exact_dimensions(aws: EmbeddedAWS) -> None:
    cloudwatch = aws.client("cloudwatch")
    for namespace, value in (("AWS/Lambda", 1.0), ("Custom/Other", 100.0)):
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[{"MetricName": "Duration", "Dimensions": DIMENSIONS, "Timestamp": T0, "Value": value}],
        )
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": "Duration", "Dimensions": DIMENSIONS[:1], "Timestamp": T0, "Value": 1000.0}],
    )

    assert metric_data(aws, ["Sum"]) == {"Sum": [1.0]}
    assert metric_data(aws, ["Sum"], namespace="Custom/Other") == {"Sum": [100.0]}


# --- CloudWatch alarms: initial state ---------------------------------------------------------------------------


def test_new_alarms_start_insufficient_and_updates_keep_the_state(aws: EmbeddedAWS) -> None:
    cloudwatch = aws.client("cloudwatch")
    alarm = {
        "AlarmName": "spillover",
        "Namespace": "AWS/Lambda",
        "MetricName": "ProvisionedConcurrencySpilloverInvocations",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    cloudwatch.put_metric_alarm(**alarm)
    initial = cloudwatch.describe_alarms(AlarmNames=["spillover"])["MetricAlarms"][0]["StateValue"]
    cloudwatch.set_alarm_state(AlarmName="spillover", StateValue="ALARM", StateReason="test")

    cloudwatch.put_metric_alarm(**alarm | {"Threshold": 5.0})

    updated = cloudwatch.describe_alarms(AlarmNames=["spillover"])["MetricAlarms"][0]
    assert initial == "INSUFFICIENT_DATA"
    assert (updated["StateValue"], updated["Threshold"]) == ("ALARM", 5.0)


# --- Application Auto Scaling → PC ------------------------------------------------------------------------------


def register(aws: EmbeddedAWS, resource: str, **capacity: int) -> Any:
    return aws.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="lambda",
        ResourceId=resource,
        ScalableDimension="lambda:function:ProvisionedConcurrency",
        **capacity,
    )


def test_registering_a_minimum_above_the_pc_raises_it(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout")
    lam.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=10
    )
    moto_ext.set_provisioned_concurrency_ready_delay(0.2)

    register(aws, "function:checkout:live", MinCapacity=20, MaxCapacity=40)

    raised = pc(lam, "checkout", "live")
    assert (raised["RequestedProvisionedConcurrentExecutions"], raised["Status"]) == (20, "IN_PROGRESS")
    assert raised["AllocatedProvisionedConcurrentExecutions"] == 10
    time.sleep(0.25)
    assert pc(lam, "checkout", "live")["AllocatedProvisionedConcurrentExecutions"] == 20


def test_registering_a_maximum_below_the_pc_lowers_it_and_creates_when_absent(aws: EmbeddedAWS) -> None:
    lam = make_function(aws, "checkout", versions=2, aliases={"live": "1", "canary": "2"})
    lam.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=30
    )

    register(aws, "function:checkout:live", MinCapacity=5, MaxCapacity=40)
    register(aws, "function:checkout:live", MaxCapacity=15)
    register(aws, "function:checkout:canary", MinCapacity=3, MaxCapacity=10)
    register(aws, "function:checkout:ghost", MinCapacity=3, MaxCapacity=10)

    assert pc(lam, "checkout", "live")["RequestedProvisionedConcurrentExecutions"] == 15
    assert pc(lam, "checkout", "canary")["RequestedProvisionedConcurrentExecutions"] == 3


def test_registering_a_minimum_lambda_refuses_fails_and_registers_nothing(aws: EmbeddedAWS) -> None:
    make_function(aws, "checkout", reserved=10)

    code, status, message = error_of(lambda: register(aws, "function:checkout:live", MinCapacity=20, MaxCapacity=40))

    assert (code, status) == ("ValidationException", 400)
    assert "reservedConcurrentExecution" in message
    targets = aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="lambda")
    assert targets["ScalableTargets"] == []
