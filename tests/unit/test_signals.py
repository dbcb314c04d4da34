"""Which symptom an alarm reports, and on what: the runbook's entry table.

An alarm that Medic cannot tie to exactly one known signal and one named target is reported, never
acted on: an empty or contradictory target is ``Target(kind="none")``, never "all".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from medic.events import AlarmStateChangeEvent, parse_alarm_event
from medic.signals import SIGNAL_KINDS, SIGNAL_TAG, Signal, Target, classify

EVENTS = Path(__file__).resolve().parents[2] / "events"
CHECKOUT_LIVE = {"FunctionName": "checkout", "Resource": "checkout:live"}


def from_file(name: str) -> Signal:
    return classify(parse_alarm_event((EVENTS / name).read_bytes(), source=name))


def metric(
    name: str,
    dimensions: dict[str, str] | None = None,
    *,
    stat: str = "Sum",
    namespace: str = "AWS/Lambda",
    query_id: str = "m1",
    returned: bool = True,
) -> dict[str, Any]:
    return {
        "id": query_id,
        "metricStat": {
            "metric": {"namespace": namespace, "name": name, "dimensions": dimensions or {}},
            "period": 60,
            "stat": stat,
        },
        "returnData": returned,
    }


def expression(query_id: str, text: str) -> dict[str, Any]:
    return {"id": query_id, "expression": text, "returnData": True}


def alarm(*queries: dict[str, Any], tags: dict[str, str] | None = None, rule: str | None = None) -> Signal:
    """Classify an alarm with these metric queries (or this composite rule), as CloudWatch would send it."""
    name = "under-test"
    configuration: dict[str, Any] = {"alarmRule": rule} if rule else {"metrics": list(queries)}
    detail: dict[str, Any] = {
        "alarmName": name,
        "state": {
            "value": "ALARM",
            "reason": "Threshold Crossed",
            "reasonData": json.dumps({"version": "1.0", "period": 60, "recentDatapoints": [5.0], "threshold": 0.0}),
            "timestamp": "2024-05-14T10:00:00.000+0000",
        },
        "configuration": configuration,
    }
    if tags is not None:
        detail["alarmTags"] = tags
        detail["alarmTagsStatus"] = "SUCCESS"
    event = AlarmStateChangeEvent.model_validate(
        {
            "version": "0",
            "id": "00000000-0000-4000-8000-000000000000",
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": "123456789012",
            "time": "2024-05-14T10:00:00Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"],
            "detail": detail,
        }
    )
    return classify(event)


# --- the sample events -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "target"),
    [
        ("spillover-alarm.json", "spillover", "checkout:live"),
        ("ok-state.json", "spillover", "checkout:live"),
        ("throttles-alarm.json", "throttles", "checkout"),
        ("p99-duration-alarm.json", "p99_latency", "checkout:live"),
        ("db-connections-alarm.json", "db_connections", "db orders-db"),
        ("metric-math-alarm.json", "throttles", "checkout"),
        ("anomaly-detection-alarm.json", "p99_latency", "checkout:live"),
        ("composite-alarm.json", "unknown", "(none)"),
    ],
)
def test_each_sample_alarm_names_its_signal_and_target(name: str, kind: str, target: str) -> None:
    signal = from_file(name)

    assert (signal.kind, signal.target.display) == (kind, target)
    assert signal.reason
    assert "\n" not in signal.reason


def test_spillover_on_an_alias_targets_the_alias_with_the_metric_that_said_so() -> None:
    signal = from_file("spillover-alarm.json")

    assert signal.target == Target.function("checkout", "live")
    assert signal.metric is not None
    assert signal.metric.metric.name == "ProvisionedConcurrencySpilloverInvocations"
    assert signal.actionable
    assert "spillover on checkout:live" in signal.reason


def test_metric_math_is_classified_by_the_metric_it_reads() -> None:
    signal = from_file("metric-math-alarm.json")

    assert signal.metric is not None
    assert signal.metric.metric.name == "Throttles"


# --- the classification table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "kind", "target"),
    [
        # throttles: the function's own throttles, or concurrency near a limit
        (metric("Throttles", {"FunctionName": "checkout"}), "throttles", "checkout"),
        (metric("Throttles", CHECKOUT_LIVE), "throttles", "checkout:live"),
        (metric("ConcurrentExecutions", {"FunctionName": "checkout"}, stat="Maximum"), "throttles", "checkout"),
        (metric("ConcurrentExecutions", stat="Maximum"), "throttles", "(none)"),
        (metric("UnreservedConcurrentExecutions", stat="Maximum"), "throttles", "(none)"),
        (metric("Throttles"), "throttles", "(none)"),
        # spillover
        (metric("ProvisionedConcurrencySpilloverInvocations", CHECKOUT_LIVE), "spillover", "checkout:live"),
        # tail latency only
        (metric("Duration", CHECKOUT_LIVE, stat="p99"), "p99_latency", "checkout:live"),
        (metric("Duration", CHECKOUT_LIVE, stat="p95"), "p99_latency", "checkout:live"),
        (metric("Duration", CHECKOUT_LIVE, stat="p90"), "p99_latency", "checkout:live"),
        (metric("Duration", CHECKOUT_LIVE, stat="p99.9"), "p99_latency", "checkout:live"),
        (metric("Duration", CHECKOUT_LIVE, stat="tm99"), "p99_latency", "checkout:live"),
        (metric("Duration", CHECKOUT_LIVE, stat="P99"), "p99_latency", "checkout:live"),
        (metric("Duration", CHECKOUT_LIVE, stat="Average"), "unknown", "(none)"),
        (metric("Duration", CHECKOUT_LIVE, stat="Maximum"), "unknown", "(none)"),
        (metric("Duration", CHECKOUT_LIVE, stat="p50"), "unknown", "(none)"),
        # the database behind the functions
        (
            metric("DatabaseConnections", {"DBInstanceIdentifier": "orders-db"}, namespace="AWS/RDS", stat="Maximum"),
            "db_connections",
            "db orders-db",
        ),
        (
            metric("DatabaseConnections", {"DBClusterIdentifier": "orders"}, namespace="AWS/RDS", stat="Maximum"),
            "db_connections",
            "(none)",
        ),
        # everything else is reported, not acted on
        (metric("Errors", {"FunctionName": "checkout"}), "unknown", "(none)"),
        (metric("Invocations", {"FunctionName": "checkout"}), "unknown", "(none)"),
        (metric("CPUUtilization", {"InstanceId": "i-0123"}, namespace="AWS/EC2", stat="Average"), "unknown", "(none)"),
        (metric("Throttles", {"FunctionName": "checkout"}, namespace="Custom/Checkout"), "unknown", "(none)"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_classification_table(query: dict[str, Any], kind: str, target: str) -> None:
    signal = alarm(query)

    assert (signal.kind, signal.target.display) == (kind, target)
    assert "\n" not in signal.reason


def test_average_duration_is_not_a_p99_latency_signal_and_says_why() -> None:
    signal = alarm(metric("Duration", CHECKOUT_LIVE, stat="Average"))

    assert signal.kind == "unknown"
    assert "p90 and above" in signal.reason
    assert signal.metric is not None
    assert signal.metric.stat == "Average"
    assert not signal.actionable


def test_account_level_concurrency_is_throttles_without_a_function_target() -> None:
    signal = alarm(metric("ConcurrentExecutions", stat="Maximum"))

    assert signal.kind == "throttles"
    assert signal.target == Target.none()
    assert "account-level" in signal.reason
    assert "never means all" in signal.reason
    assert not signal.actionable


# --- the target, from the dimensions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dimensions", "target"),
    [
        ({"FunctionName": "checkout"}, "checkout"),
        ({"FunctionName": "checkout", "Resource": "checkout:live"}, "checkout:live"),
        ({"FunctionName": "checkout", "Resource": "checkout:7"}, "checkout:7"),
        ({"FunctionName": "checkout", "Resource": "checkout"}, "checkout"),
        ({"FunctionName": "checkout", "ExecutedVersion": "12"}, "checkout:12"),
        ({"FunctionName": "checkout", "Resource": "checkout:live", "ExecutedVersion": "12"}, "checkout:live"),
        ({"Resource": "checkout:live"}, "checkout:live"),
        ({"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:checkout"}, "checkout"),
        ({"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:checkout:live"}, "checkout:live"),
        ({"FunctionName": " checkout "}, "checkout"),
    ],
)
def test_the_target_comes_from_function_name_resource_and_version(dimensions: dict[str, str], target: str) -> None:
    signal = alarm(metric("ProvisionedConcurrencySpilloverInvocations", dimensions))

    assert signal.kind == "spillover"
    assert signal.target.display == target


@pytest.mark.parametrize(
    ("dimensions", "why"),
    [
        ({"FunctionName": "checkout", "Resource": "orders:live"}, "names another function"),
        ({"FunctionName": "checkout:live", "Resource": "checkout:blue"}, "different qualifiers"),
        ({"FunctionName": "*"}, "not a valid function name"),
        ({"FunctionName": "checkout,orders"}, "not a valid function name"),
        ({"FunctionName": ""}, "no FunctionName dimension"),
        ({}, "no FunctionName dimension"),
        ({"FunctionName": "checkout", "Resource": "checkout:live/blue"}, "not a valid alias or version"),
    ],
)
def test_a_missing_or_contradictory_target_is_no_target_never_all(dimensions: dict[str, str], why: str) -> None:
    signal = alarm(metric("ProvisionedConcurrencySpilloverInvocations", dimensions))

    assert signal.kind == "spillover"
    assert signal.target == Target.none()
    assert why in signal.reason
    assert not signal.actionable


# --- metric math and composite alarms -----------------------------------------------------------------------


def test_metric_math_mixing_two_signals_is_unknown() -> None:
    signal = alarm(
        metric("Throttles", {"FunctionName": "checkout"}, query_id="m1", returned=False),
        metric("ProvisionedConcurrencySpilloverInvocations", CHECKOUT_LIVE, query_id="m2", returned=False),
        expression("e1", "m1 + m2"),
    )

    assert signal.kind == "unknown"
    assert "mixes signals" in signal.reason


def test_metric_math_over_two_functions_has_no_single_target() -> None:
    signal = alarm(
        metric("Throttles", {"FunctionName": "checkout"}, query_id="m1", returned=False),
        metric("Throttles", {"FunctionName": "orders"}, query_id="m2", returned=False),
        expression("e1", "m1 + m2"),
    )

    assert signal.kind == "throttles"
    assert signal.target == Target.none()
    assert "different targets" in signal.reason


def test_metric_math_ratio_against_an_account_total_targets_the_named_function() -> None:
    signal = alarm(
        metric("ConcurrentExecutions", {"FunctionName": "checkout"}, stat="Maximum", query_id="m1", returned=False),
        metric("ConcurrentExecutions", stat="Maximum", query_id="m2", returned=False),
        expression("e1", "100 * m1 / m2"),
    )

    assert (signal.kind, signal.target.display) == ("throttles", "checkout")


def test_an_expression_only_alarm_is_unknown() -> None:
    signal = alarm(expression("q1", 'SELECT MAX(Throttles) FROM SCHEMA("AWS/Lambda", FunctionName)'))

    assert signal.kind == "unknown"
    assert signal.metric is None
    assert "no metricStat" in signal.reason


def test_a_composite_alarm_is_unknown_even_when_tagged() -> None:
    signal = alarm(rule='ALARM("checkout-live-spillover")', tags={SIGNAL_TAG: "spillover"})

    assert signal.kind == "unknown"
    assert signal.target == Target.none()
    assert signal.metric is None
    assert "composite" in signal.reason
    assert "tag ignored" in signal.reason


# --- the medic:signal alarm tag ---------------------------------------------------------------------------


def test_the_signal_tag_overrides_the_kind_and_the_target_still_comes_from_dimensions() -> None:
    queue_depth = metric("QueueDepth", CHECKOUT_LIVE, namespace="Checkout/App", stat="Maximum")

    signal = alarm(queue_depth, tags={SIGNAL_TAG: "spillover", "team": "payments"})

    assert (signal.kind, signal.target.display) == ("spillover", "checkout:live")
    assert f"{SIGNAL_TAG}=spillover" in signal.reason


def test_the_signal_tag_can_name_a_database_signal() -> None:
    pool = metric("PoolWaiters", {"DBInstanceIdentifier": "orders-db"}, namespace="Checkout/App")

    signal = alarm(pool, tags={SIGNAL_TAG: "db_connections"})

    assert (signal.kind, signal.target.display) == ("db_connections", "db orders-db")


def test_the_signal_tag_can_silence_an_alarm() -> None:
    signal = alarm(metric("Throttles", {"FunctionName": "checkout"}), tags={SIGNAL_TAG: "unknown"})

    assert signal.kind == "unknown"
    assert signal.target == Target.none()


def test_an_invalid_signal_tag_is_ignored_and_said_so() -> None:
    signal = alarm(metric("Throttles", {"FunctionName": "checkout"}), tags={SIGNAL_TAG: "latency"})

    assert (signal.kind, signal.target.display) == ("throttles", "checkout")
    assert f"ignored {SIGNAL_TAG}='latency'" in signal.reason


def test_a_tagged_signal_without_a_target_dimension_has_no_target() -> None:
    signal = alarm(metric("QueueDepth", {"Queue": "orders"}, namespace="Checkout/App"), tags={SIGNAL_TAG: "throttles"})

    assert signal.kind == "throttles"
    assert signal.target == Target.none()


# --- the Target and Signal models ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "display"),
    [
        (Target.function("checkout", "live"), "checkout:live"),
        (Target.function("checkout"), "checkout"),
        (Target.db_instance("orders-db"), "db orders-db"),
        (Target.none(), "(none)"),
    ],
)
def test_target_display(target: Target, display: str) -> None:
    assert target.display == display


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "function"},
        {"kind": "function", "function_name": ""},
        {"kind": "function", "function_name": "*"},
        {"kind": "function", "function_name": "checkout", "qualifier": "live:blue"},
        {"kind": "db_instance"},
        {"kind": "db_instance", "db_instance_id": "orders-db", "function_name": "checkout"},
        {"kind": "none", "function_name": "checkout"},
        {"kind": "everything"},
    ],
)
def test_a_target_names_exactly_one_resource_or_nothing(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Target.model_validate(fields)


def test_targets_and_signals_are_frozen() -> None:
    signal = from_file("spillover-alarm.json")

    with pytest.raises(ValidationError):
        signal.kind = "throttles"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        signal.target.function_name = "orders"  # type: ignore[misc]


def test_the_signal_vocabulary_matches_the_design() -> None:
    assert set(SIGNAL_KINDS) == {"throttles", "spillover", "p99_latency", "db_connections", "unknown"}
