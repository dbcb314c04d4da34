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

from medic.alarms.events import AlarmStateChangeEvent, parse_alarm_event
from medic.alarms.signals import SIGNAL_KINDS, SIGNAL_TAG, Signal, Target, classify

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


def event(
    *queries: dict[str, Any],
    tags: dict[str, str] | None = None,
    rule: str | None = None,
    state: str = "ALARM",
    reason: str = "Threshold Crossed",
    reason_data: dict[str, Any] | None = None,
    previous: str | None = None,
) -> AlarmStateChangeEvent:
    """An alarm state change with these metric queries (or this composite rule), as CloudWatch would send it; by
    default in ALARM above a threshold of 0."""
    name = "under-test"
    configuration: dict[str, Any] = {"alarmRule": rule} if rule else {"metrics": list(queries)}
    data = reason_data if reason_data is not None else {"recentDatapoints": [5.0], "threshold": 0.0}
    detail: dict[str, Any] = {
        "alarmName": name,
        "state": {
            "value": state,
            "reason": reason,
            "reasonData": json.dumps({"version": "1.0", "period": 60, **data}),
            "timestamp": "2024-05-14T10:00:00.000+0000",
        },
        "configuration": configuration,
    }
    if previous is not None:
        detail["previousState"] = {"value": previous, "reason": "", "timestamp": "2024-05-14T09:00:00.000+0000"}
    if tags is not None:
        detail["alarmTags"] = tags
        detail["alarmTagsStatus"] = "SUCCESS"
    return AlarmStateChangeEvent.model_validate(
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


def alarm(*queries: dict[str, Any], **fields: Any) -> Signal:
    """Classify :func:`event` (same arguments)."""
    return classify(event(*queries, **fields))


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
        ("insufficient-data-state.json", "p99_latency", "checkout:live"),
        ("anomaly-lower-band-alarm.json", "p99_latency", "checkout:live"),
        ("cross-account-metric-alarm.json", "spillover", "(none)"),
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


# --- alarms that must change nothing: states, falling values, another account's metric ---------------------


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("ok-state.json", "state OK: the alarm recovered; nothing to remediate"),
        ("insufficient-data-state.json", "state INSUFFICIENT_DATA: the alarm has no data to judge — check the metric"),
    ],
)
def test_a_state_other_than_alarm_keeps_its_signal_and_target_and_is_held_back(name: str, says: str) -> None:
    signal = from_file(name)

    assert signal.target.kind == "function"
    assert signal.noop_reason is not None and signal.noop_reason.startswith(says)
    assert signal.direction is None
    assert not signal.actionable


def test_insufficient_data_says_what_cloudwatch_said() -> None:
    signal = alarm(metric("Throttles", {"FunctionName": "checkout"}), state="INSUFFICIENT_DATA",
                   reason="Unchecked: Initial alarm creation", reason_data={})  # fmt: skip

    assert signal.noop_reason is not None
    assert signal.noop_reason.endswith("(CloudWatch: Unchecked: Initial alarm creation)")


def test_ok_without_a_preceding_alarm_is_within_its_threshold_not_recovered() -> None:
    signal = alarm(metric("Throttles", {"FunctionName": "checkout"}), state="OK", previous="INSUFFICIENT_DATA")

    assert signal.noop_reason == "state OK: the alarm is within its threshold; nothing to remediate"


def test_a_lower_band_breach_of_duration_is_latency_that_dropped() -> None:
    signal = from_file("anomaly-lower-band-alarm.json")

    assert (signal.kind, signal.target.display, signal.direction) == ("p99_latency", "checkout:live", "below")
    assert signal.noop_reason is not None
    assert "fell below its band (datapoint 61.2 under its lower band 182.5): latency dropped" in signal.noop_reason
    assert "no latency fix" in signal.noop_reason
    assert not signal.actionable


def band(query: dict[str, Any]) -> list[dict[str, Any]]:
    """An anomaly detection alarm on `query` (as m1)."""
    return [query, {"id": "ad1", "expression": "ANOMALY_DETECTION_BAND(m1, 2)", "returnData": True}]


LOWER_BAND = {"recentDatapoints": [3.0], "recentLowerThresholds": [40.0], "recentUpperThresholds": [90.0]}
UPPER_BAND = {"recentDatapoints": [140.0], "recentLowerThresholds": [40.0], "recentUpperThresholds": [90.0]}
BELOW_THRESHOLD = {"recentDatapoints": [2.0, 1.0], "threshold": 10.0}


@pytest.mark.parametrize(
    ("queries", "data", "means", "fix"),
    [
        (band(metric("Throttles", {"FunctionName": "checkout"})), LOWER_BAND, "throttling fell", "capacity fix"),
        (band(metric("ConcurrentExecutions", CHECKOUT_LIVE, stat="Maximum")), LOWER_BAND, "concurrency fell",
         "capacity fix"),
        (band(metric("ProvisionedConcurrencySpilloverInvocations", CHECKOUT_LIVE)), LOWER_BAND, "spillover fell",
         "capacity fix"),
        (band(metric("Duration", CHECKOUT_LIVE, stat="p99")), LOWER_BAND, "latency dropped", "latency fix"),
        ([metric("Throttles", {"FunctionName": "checkout"})], BELOW_THRESHOLD, "throttling fell", "capacity fix"),
        ([metric("UnreservedConcurrentExecutions", {"FunctionName": "checkout"}, stat="Maximum")], BELOW_THRESHOLD,
         "concurrency fell", "capacity fix"),
        ([metric("DatabaseConnections", {"DBInstanceIdentifier": "orders-db"}, namespace="AWS/RDS", stat="Maximum")],
         BELOW_THRESHOLD, "connections fell", "concurrency cap"),
    ],
    ids=["throttles-band", "concurrency-band", "spillover-band", "duration-band", "throttles-less-than",
         "unreserved-less-than", "db-connections-less-than"],
)  # fmt: skip
def test_a_fall_where_only_a_rise_is_the_problem_changes_nothing(
    queries: list[dict[str, Any]], data: dict[str, Any], means: str, fix: str
) -> None:
    signal = alarm(*queries, reason_data=data)

    assert signal.kind != "unknown" and signal.target.kind != "none"
    assert signal.direction == "below"
    assert signal.noop_reason is not None
    assert f": {means}; Medic proposes no {fix} for a fall" in signal.noop_reason
    assert not signal.actionable


def test_an_upper_band_breach_is_acted_on() -> None:
    signal = alarm(*band(metric("Throttles", {"FunctionName": "checkout"})), reason_data=UPPER_BAND)

    assert (signal.direction, signal.noop_reason) == ("above", None)
    assert signal.actionable


@pytest.mark.parametrize("data", [BELOW_THRESHOLD, LOWER_BAND, UPPER_BAND], ids=["less-than", "lower", "upper"])
def test_provisioned_concurrency_utilization_means_something_both_ways(data: dict[str, Any]) -> None:
    """Too high (the pool is exhausted) and too low (idle, paid for: the cost row pc_overprovisioned)."""
    utilization = metric("ProvisionedConcurrencyUtilization", CHECKOUT_LIVE, stat="Maximum")
    queries = band(utilization) if "recentLowerThresholds" in data else [utilization]

    signal = alarm(*queries, reason_data=data)

    assert (signal.kind, signal.target.display) == ("spillover", "checkout:live")
    assert signal.noop_reason is None
    assert signal.actionable


def test_an_unknown_direction_is_said_and_changes_nothing() -> None:
    mixed = {"recentDatapoints": [4.0, 0.0, 9.0], "threshold": 2.0}
    signal = alarm(metric("Throttles", {"FunctionName": "checkout"}), reason="Threshold Crossed", reason_data=mixed)

    assert signal.direction == "unknown"
    assert signal.noop_reason is not None
    assert signal.noop_reason.startswith("cannot tell whether AWS/Lambda Throttles {FunctionName=checkout} Sum/60s")
    assert "breached above or below" in signal.noop_reason
    assert not signal.actionable


def test_a_metric_math_expression_that_fell_says_the_metric_may_not_have_risen() -> None:
    signal = alarm(
        metric("Throttles", {"FunctionName": "checkout"}, query_id="m1", returned=False),
        metric("Invocations", {"FunctionName": "checkout"}, query_id="m2", returned=False),
        expression("e1", "100 * m1 / m2"),
        reason_data=BELOW_THRESHOLD,
    )

    assert signal.noop_reason is not None
    assert signal.noop_reason.startswith("the alarm's expression fell below its threshold")
    assert "cannot tell that Throttles rose" in signal.noop_reason


def test_a_tagged_custom_metric_is_taken_at_its_tag_whichever_way_it_breached() -> None:
    free_slots = metric("FreeWorkerSlots", CHECKOUT_LIVE, namespace="Checkout/App", stat="Minimum")

    signal = alarm(free_slots, tags={SIGNAL_TAG: "throttles"}, reason_data=BELOW_THRESHOLD)

    assert (signal.direction, signal.noop_reason) == ("below", None)
    assert signal.actionable


def test_a_composite_alarm_has_no_direction() -> None:
    assert alarm(rule='ALARM("checkout-live-spillover")').direction is None


def test_a_metric_in_another_account_has_no_target() -> None:
    signal = from_file("cross-account-metric-alarm.json")

    assert signal.kind == "spillover"
    assert signal.target == Target.none()
    assert "the metric is in account 444455556666 (configuration.metrics[m1].accountId)" in signal.reason
    assert "not the alarm's account 123456789012" in signal.reason
    assert "never changes a same-named function" in signal.reason
    assert not signal.actionable


def test_a_metric_query_naming_the_alarms_own_account_keeps_its_target() -> None:
    own = {**metric("Throttles", {"FunctionName": "checkout"}), "accountId": "123456789012"}

    assert alarm(own).target == Target.function("checkout")


def test_one_query_in_another_account_is_enough_to_have_no_target() -> None:
    signal = alarm(
        metric("Throttles", {"FunctionName": "checkout"}, query_id="m1", returned=False),
        {
            **metric("Invocations", {"FunctionName": "checkout"}, query_id="m2", returned=False),
            "accountId": "444455556666",
        },
        expression("e1", "100 * m1 / m2"),
    )

    assert (signal.kind, signal.target) == ("throttles", Target.none())
    assert "configuration.metrics[m2].accountId" in signal.reason


@pytest.mark.parametrize(
    ("function_name", "where"),
    [
        ("arn:aws:lambda:us-east-1:444455556666:function:checkout", "account 444455556666 (us-east-1)"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:checkout:live", "account 123456789012 (eu-west-1)"),
    ],
)
def test_a_function_arn_in_another_account_or_region_is_no_target(function_name: str, where: str) -> None:
    signal = alarm(metric("Throttles", {"FunctionName": function_name}))

    assert signal.target == Target.none()
    assert f"is in {where}, not the alarm's account 123456789012 (us-east-1)" in signal.reason


@pytest.mark.parametrize(
    ("signal", "tables", "reason"),
    [
        (from_file("ok-state.json"), {"spillover"}, "state OK: the alarm recovered; nothing to remediate"),
        (from_file("composite-alarm.json"), {"spillover"}, "composite alarm"),
        (from_file("spillover-alarm.json"), {"throttles"}, "runbook has no table for signal spillover"),
        (from_file("cross-account-metric-alarm.json"), {"spillover"}, "no actionable target: AWS/Lambda"),
        (from_file("spillover-alarm.json"), {"spillover"}, None),
    ],
    ids=["held", "unknown", "no-table", "no-target", "decided"],
)
def test_the_reason_triage_does_not_decide(signal: Signal, tables: set[str], reason: str | None) -> None:
    undecided = signal.undecided_reason(tables)

    assert undecided == reason if reason is None else (undecided or "").startswith(reason)


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
