"""Medic's own metrics in CloudWatch Embedded Metric Format, checked against the EMF specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
"""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from medic import metrics

WHEN = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
#: CloudWatch's StandardUnit values, written out here rather than imported: the test checks the module.
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def emf_problems(line: str) -> list[str]:
    """What the EMF specification says is wrong with one log line (empty when CloudWatch would extract it)."""
    problems: list[str] = []
    try:
        root = json.loads(line)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    if not isinstance(root, dict):
        return ["the root is not an object"]
    meta = root.get("_aws")
    if not isinstance(meta, dict):
        return ["no _aws metadata object"]
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp <= 0:
        problems.append(f"_aws.Timestamp must be milliseconds since the epoch, not {timestamp!r}")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "_aws.CloudWatchMetrics must be a non-empty array"]
    for directive in directives:
        if not isinstance(directive, dict) or not {"Namespace", "Dimensions", "Metrics"} <= set(directive):
            problems.append(f"a MetricDirective needs Namespace, Dimensions and Metrics: {directive!r}")
            continue
        namespace = directive["Namespace"]
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= 255:
            problems.append(f"Namespace {namespace!r}")
        for dimension_set in directive["Dimensions"]:
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                problems.append(f"a DimensionSet is an array of at most 30 names: {dimension_set!r}")
                continue
            for key in dimension_set:
                if not isinstance(key, str) or not 1 <= len(key) <= 255:
                    problems.append(f"dimension name {key!r}")
                elif not isinstance(root.get(key), str) or not root[key]:
                    problems.append(f"dimension {key} needs a non-empty string on the root, not {root.get(key)!r}")
        definitions = directive["Metrics"]
        if not isinstance(definitions, list) or not 1 <= len(definitions) <= 100:
            problems.append("Metrics holds 1 to 100 MetricDefinitions")
            continue
        for definition in definitions:
            name = definition.get("Name")
            if not isinstance(name, str) or not 1 <= len(name) <= 255:
                problems.append(f"metric Name {name!r}")
                continue
            if "Unit" in definition and definition["Unit"] not in UNITS:
                problems.append(f"metric {name}: Unit {definition['Unit']!r}")
            if "StorageResolution" in definition and definition["StorageResolution"] not in (1, 60):
                problems.append(f"metric {name}: StorageResolution")
            value = root.get(name)
            values = value if isinstance(value, list) else [value]
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
            if not values or len(values) > 100 or not numbers:
                problems.append(f"metric {name} needs a number (or up to 100) on the root, not {value!r}")
    return problems


def emitted(document: dict[str, Any]) -> str:
    stream = io.StringIO()
    metrics.emit(document, stream)
    return stream.getvalue()


def test_a_plan_outcome_is_one_count_by_signal_and_outcome() -> None:
    document = metrics.plan_outcome("spillover", "VERIFIED", at=WHEN)
    assert document == {
        "_aws": {
            "Timestamp": int(WHEN.timestamp() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": "Medic",
                "Dimensions": [["Signal", "Outcome"]],
                "Metrics": [{"Name": "Plans", "Unit": "Count"}],
            }],
        },
        "Signal": "spillover",
        "Outcome": "VERIFIED",
        "Plans": 1,
    }  # fmt: skip
    assert emf_problems(emitted(document)) == []


@pytest.mark.parametrize("name", ["TimeToPlan", "TimeToApply", "TimeToVerify"])
def test_latencies_are_seconds_by_signal(name: str) -> None:
    document = metrics.latency(name, 42.5, "throttles", at=WHEN)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [{"Name": name, "Unit": "Seconds"}]
    assert directive["Dimensions"] == [["Signal"]]
    assert (document[name], document["Signal"]) == (42.5, "throttles")
    assert emf_problems(emitted(document)) == []


def test_latency_from_the_alarms_state_change() -> None:
    seconds = metrics.seconds_since("2026-11-22T04:58:30.000Z", WHEN)
    assert metrics.latency("TimeToApply", seconds, "spillover", at=WHEN)["TimeToApply"] == 90.0


def test_a_negative_latency_from_clock_skew_counts_as_zero() -> None:
    assert metrics.latency("TimeToPlan", -0.4, "spillover", at=WHEN)["TimeToPlan"] == 0.0


@pytest.mark.parametrize(("name", "seconds"), [("TimeToLunch", 1.0), ("TimeToPlan", math.nan),
                                               ("TimeToPlan", math.inf)])  # fmt: skip
def test_an_unknown_latency_or_a_non_number_is_refused(name: str, seconds: float) -> None:
    with pytest.raises(ValueError, match=name):
        metrics.latency(name, seconds, "spillover")


def test_emit_prints_one_json_line_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.emit(metrics.plan_outcome("p99", "FAILED", at=WHEN))
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1
    assert emf_problems(out) == [] and json.loads(out)["Outcome"] == "FAILED"


def test_the_timestamp_defaults_to_now_in_milliseconds() -> None:
    before = datetime.now(UTC).timestamp() * 1000
    timestamp = metrics.plan_outcome("spillover", "PROPOSED")["_aws"]["Timestamp"]
    assert before - 1 <= timestamp <= datetime.now(UTC).timestamp() * 1000 + 1


def test_thirty_dimensions_are_the_limit() -> None:
    dimensions = {f"D{i}": "x" for i in range(30)}
    assert emf_problems(emitted(metrics.metric_document({"M": (1, "Count")}, dimensions, at=WHEN))) == []
    with pytest.raises(ValueError, match="at most 30 dimensions"):
        metrics.metric_document({"M": (1, "Count")}, {**dimensions, "D30": "x"}, at=WHEN)


@pytest.mark.parametrize(("values", "dimensions", "message"), [
    ({"M" * 256: (1, "Count")}, {"Signal": "s"}, "invalid name"),
    ({"M": (1, "Count")}, {"S" * 256: "s"}, "invalid name"),
    ({"M": (1, "Count")}, {"Signal": ""}, "dimension Signal"),
    ({"M": ("1", "Count")}, {"Signal": "s"}, "not a finite number"),
    ({"M": (True, "Count")}, {"Signal": "s"}, "not a finite number"),
    ({"M": (math.nan, "Count")}, {"Signal": "s"}, "not a finite number"),
    ({"M": (1, "Hours")}, {"Signal": "s"}, "unknown unit"),
    ({"Signal": (1, "Count")}, {"Signal": "s"}, "share the name"),
    ({}, {"Signal": "s"}, "1 to 100 metrics"),
])  # fmt: skip
def test_what_cloudwatch_would_drop_is_refused(
    values: dict[str, tuple[Any, str]], dimensions: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.metric_document(values, dimensions, at=WHEN)


def test_the_validator_catches_what_the_specification_forbids() -> None:
    good = metrics.plan_outcome("spillover", "VERIFIED", at=WHEN)
    assert emf_problems(json.dumps(good)) == []
    no_value = {key: value for key, value in good.items() if key != "Plans"}
    assert emf_problems(json.dumps(no_value))
    no_dimension = {key: value for key, value in good.items() if key != "Outcome"}
    assert emf_problems(json.dumps(no_dimension))
    assert emf_problems(json.dumps({**good, "_aws": {"CloudWatchMetrics": good["_aws"]["CloudWatchMetrics"]}}))
    assert emf_problems("not json")
