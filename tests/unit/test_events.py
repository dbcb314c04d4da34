"""The "CloudWatch Alarm State Change" event, as CloudWatch documents and sends it.

Shapes: CloudWatch user guide, "Alarm events and EventBridge" (single metric, metric math, anomaly
detection, composite) and "Alarm tags in action payloads" (alarmTags / alarmTagsStatus); composite
reasonData (triggeringAlarms) and evaluationState as captured in the wild.
"""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from medic.alarms.events import ROOT_FIELD, AlarmStateChangeEvent, ReasonData, parse_alarm_event
from medic.errors import EventError, InputError, MedicError

EVENTS = Path(__file__).resolve().parents[2] / "events"
#: events/ also holds the other functions' sample events, named after their function, and `sam local`'s env.json
#: (events/README.md; tests/unit/test_sample_events.py checks them). Every other file there is an alarm event.
NOT_ALARMS = ("env.json", "executor-", "interactions-", "verifier-", "digest-")
SAMPLES = sorted(path for path in EVENTS.glob("*.json") if not path.name.startswith(NOT_ALARMS))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def spillover() -> dict[str, Any]:
    return load("spillover-alarm.json")


# --- every sample event parses -------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_event_parses(path: Path) -> None:
    event = parse_alarm_event(path.read_bytes(), source=path.name)

    assert event.detail_type == "CloudWatch Alarm State Change"
    assert event.source == "aws.cloudwatch"
    assert event.account == "123456789012"
    assert event.region == "us-east-1"
    assert event.alarm_arn == f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{event.alarm_name}"
    assert event.time.tzinfo is not None


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("spillover-alarm.json", "metric"),
        ("throttles-alarm.json", "metric"),
        ("p99-duration-alarm.json", "metric"),
        ("db-connections-alarm.json", "metric"),
        ("ok-state.json", "metric"),
        ("metric-math-alarm.json", "metric_math"),
        ("anomaly-detection-alarm.json", "anomaly_detection"),
        ("composite-alarm.json", "composite"),
        ("insufficient-data-state.json", "metric"),
        ("anomaly-lower-band-alarm.json", "anomaly_detection"),
        ("cross-account-metric-alarm.json", "metric"),
    ],
)
def test_alarm_kind_comes_from_the_configuration(name: str, kind: str) -> None:
    assert parse_alarm_event(load(name)).detail.configuration.kind == kind


def test_a_single_metric_alarm_carries_state_reason_data_and_metric() -> None:
    event = parse_alarm_event(spillover())
    state = event.detail.state

    assert event.alarm_name == "checkout-live-spillover"
    assert state.value == "ALARM"
    assert state.timestamp == datetime(2024, 5, 14, 9, 31, 12, 349000, tzinfo=UTC)
    assert event.detail.previous_state is not None
    assert event.detail.previous_state.value == "OK"

    data = state.reason_data
    assert data is not None
    assert data.statistic == "Sum"
    assert data.period == 60
    assert data.recent_datapoints == [120.0, 180.0]
    assert data.threshold == 0.0
    assert data.start_date == datetime(2024, 5, 14, 9, 29, tzinfo=UTC)
    assert [(p.sample_count, p.value) for p in data.evaluated_datapoints] == [(3.0, 180.0), (3.0, 120.0)]
    assert state.reason_data_raw is not None
    assert json.loads(state.reason_data_raw)["recentDatapoints"] == [120.0, 180.0]
    assert state.reason_data_problem is None

    metric = event.detail.configuration.primary_metric
    assert metric is not None
    assert metric.metric.namespace == "AWS/Lambda"
    assert metric.metric.name == "ProvisionedConcurrencySpilloverInvocations"
    assert metric.metric.dimensions == {"FunctionName": "checkout", "Resource": "checkout:live"}
    assert (metric.stat, metric.period) == ("Sum", 60)


def test_the_alarm_back_to_ok_parses_with_the_alarm_as_previous_state() -> None:
    event = parse_alarm_event(load("ok-state.json"))

    assert event.detail.state.value == "OK"
    assert event.detail.previous_state is not None
    assert event.detail.previous_state.value == "ALARM"
    assert event.detail.state.reason_data is not None
    assert event.detail.state.reason_data.recent_datapoints == [0.0, 0.0]


def test_a_state_without_reason_data_is_fine() -> None:
    event = parse_alarm_event(load("metric-math-alarm.json"))
    previous = event.detail.previous_state

    assert previous is not None
    assert previous.value == "INSUFFICIENT_DATA"
    assert previous.reason == "Unchecked: Initial alarm creation"
    assert previous.reason_data is None
    assert previous.reason_data_raw is None
    assert previous.reason_data_problem is None


def test_insufficient_data_lists_the_unknown_datapoints_without_values() -> None:
    state = parse_alarm_event(load("insufficient-data-state.json")).detail.state

    assert state.value == "INSUFFICIENT_DATA"
    assert state.reason == "Insufficient Data: 3 datapoints were unknown."
    assert state.reason_data is not None
    assert state.reason_data.recent_datapoints == []
    assert [p.value for p in state.reason_data.evaluated_datapoints] == [None, None, None]


def test_an_anomaly_band_gives_one_lower_and_one_upper_bound_per_datapoint() -> None:
    data = parse_alarm_event(load("anomaly-lower-band-alarm.json")).detail.state.reason_data

    assert data is not None
    assert data.threshold is None
    assert (data.recent_datapoints, data.recent_lower_thresholds, data.recent_upper_thresholds) == (
        [61.2],
        [182.5],
        [871.9],
    )


def test_a_metric_query_names_the_account_of_its_metric() -> None:
    """Cross-account observability: an alarm in a monitoring account on a source account's metric (the
    MetricDataQuery's AccountId, CloudWatch API reference)."""
    event = parse_alarm_event(load("cross-account-metric-alarm.json"))

    assert event.account == "123456789012"
    assert [query.account_id for query in event.detail.configuration.metrics] == ["444455556666"]
    assert parse_alarm_event(spillover()).detail.configuration.metrics[0].account_id is None


def test_previous_state_is_optional() -> None:
    raw = spillover()
    del raw["detail"]["previousState"]

    assert parse_alarm_event(raw).detail.previous_state is None


# --- metric math, anomaly detection, composite ---------------------------------------------------


def test_metric_math_primary_metric_is_the_first_metric_feeding_the_returned_expression() -> None:
    config = parse_alarm_event(load("metric-math-alarm.json")).detail.configuration
    reason = parse_alarm_event(load("metric-math-alarm.json")).detail.state.reason_data

    assert [q.id for q in config.metrics] == ["e1", "m1", "m2"]
    assert config.metrics[0].expression == "100 * m1 / m2"
    assert config.metrics[0].label == "Throttle rate (%)"
    assert config.primary_metric is not None
    assert config.primary_metric.metric.name == "Throttles"
    assert [s.metric.name for s in config.metric_stats] == ["Throttles", "Invocations"]
    # Metric math reasonData has no statistic, and evaluated datapoints have no sampleCount.
    assert reason is not None
    assert reason.statistic is None
    assert reason.evaluated_datapoints[0].sample_count is None
    assert reason.evaluated_datapoints[0].value == 7.5


def _with_metrics(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    raw = spillover()
    raw["detail"]["configuration"]["metrics"] = metrics
    return raw


def _stat(query_id: str, name: str, *, returned: bool = False) -> dict[str, Any]:
    return {
        "id": query_id,
        "metricStat": {
            "metric": {"namespace": "AWS/Lambda", "name": name, "dimensions": {"FunctionName": "checkout"}},
            "period": 60,
            "stat": "Sum",
        },
        "returnData": returned,
    }


def _expr(query_id: str, expression: str, *, returned: bool = False) -> dict[str, Any]:
    return {"id": query_id, "expression": expression, "returnData": returned}


@pytest.mark.parametrize(
    ("metrics", "primary"),
    [
        # The returned expression reads m2 only.
        ([_stat("m1", "Invocations"), _stat("m2", "Throttles"), _expr("e1", "m2 * 2", returned=True)], "Throttles"),
        # Through another expression.
        (
            [
                _stat("m1", "Invocations"),
                _stat("m2", "Errors"),
                _expr("e1", "FILL(m2, 0)"),
                _expr("e2", "e1 / 10", returned=True),
            ],
            "Errors",
        ),
        # METRICS() reads every metric.
        (
            [_stat("m1", "Throttles"), _stat("m2", "Invocations"), _expr("e1", "SUM(METRICS())", returned=True)],
            "Throttles",
        ),
        # Quoted text is not a query id.
        (
            [_stat("m1", "Invocations"), _stat("m2", "Throttles"), _expr("e1", "IF(m2 > 0, m2, 'm1')", returned=True)],
            "Throttles",
        ),
    ],
)
def test_metric_math_follows_the_expression_to_its_metrics(metrics: list[dict[str, Any]], primary: str) -> None:
    config = parse_alarm_event(_with_metrics(metrics)).detail.configuration

    assert config.kind == "metric_math"
    assert config.primary_metric is not None
    assert config.primary_metric.metric.name == primary


def test_an_expression_only_alarm_has_no_primary_metric() -> None:
    sql = 'SELECT MAX(Throttles) FROM SCHEMA("AWS/Lambda", FunctionName)'
    config = parse_alarm_event(_with_metrics([{**_expr("q1", sql, returned=True), "period": 60}])).detail.configuration

    assert config.kind == "metric_math"
    assert config.primary_metric is None
    assert config.metrics[0].period == 60


def test_anomaly_detection_primary_metric_is_the_metric_inside_the_band() -> None:
    event = parse_alarm_event(load("anomaly-detection-alarm.json"))
    config = event.detail.configuration

    # Both queries return data, as in the documented event; the band is the expression.
    assert [q.return_data for q in config.metrics] == [True, True]
    assert config.primary_metric is not None
    assert (config.primary_metric.metric.name, config.primary_metric.stat) == ("Duration", "p99")

    data = event.detail.state.reason_data
    assert data is not None
    assert data.threshold is None
    assert data.recent_datapoints == [1850.0]
    assert data.recent_lower_thresholds == [210.4]
    assert data.recent_upper_thresholds == [920.7]


def test_composite_alarm_has_a_rule_suppression_and_triggering_alarms() -> None:
    event = parse_alarm_event(load("composite-alarm.json"))
    config = event.detail.configuration
    state = event.detail.state

    assert config.metrics == []
    assert config.alarm_rule == 'ALARM("checkout-live-spillover") OR ALARM("checkout-live-p99-duration")'
    assert config.actions_suppressor == "checkout-maintenance-window"
    assert (config.actions_suppressor_wait_period, config.actions_suppressor_extension_period) == (120, 180)
    assert config.primary_metric is None
    assert state.actions_suppressed_by == "WaitPeriod"
    assert state.actions_suppressed_reason == "Actions suppressed by WaitPeriod"
    assert state.reason_data is not None
    [trigger] = state.reason_data.triggering_alarms
    assert trigger.arn == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-live-spillover"
    assert trigger.state is not None
    assert trigger.state.value == "ALARM"


# --- alarm tags -----------------------------------------------------------------------------------


def test_propagated_alarm_tags_are_a_mapping() -> None:
    detail = parse_alarm_event(load("throttles-alarm.json")).detail

    assert detail.alarm_tags == {"team": "payments", "medic:managed": "true"}
    assert detail.alarm_tags_status == "SUCCESS"


def test_alarm_tags_as_a_key_value_list_are_accepted() -> None:
    raw = spillover()
    raw["detail"]["alarmTags"] = [{"key": "medic:signal", "value": "spillover"}, {"Key": "team", "Value": "payments"}]

    assert parse_alarm_event(raw).detail.alarm_tags == {"medic:signal": "spillover", "team": "payments"}


def test_without_tag_propagation_there_are_no_tags() -> None:
    detail = parse_alarm_event(spillover()).detail

    assert detail.alarm_tags == {}
    assert detail.alarm_tags_status is None


# --- reasonData: decoded when it can be, never fatal -----------------------------------------------


def _with_reason_data(reason_data: Any) -> dict[str, Any]:
    raw = spillover()
    raw["detail"]["state"]["reasonData"] = reason_data
    return raw


@pytest.mark.parametrize(
    ("reason_data", "problem"),
    [
        ('{"version":"1.0","recentDatapoints":[1.0', "reasonData is not JSON"),
        ("[1.0, 2.0]", "reasonData should be a JSON object, got an array"),
        ('{"recentDatapoints": "lots"}', "reasonData.recentDatapoints"),
        ('{"queryDate": "yesterday"}', "reasonData.queryDate"),
    ],
)
def test_a_malformed_reason_data_is_kept_raw_and_the_event_still_parses(reason_data: str, problem: str) -> None:
    state = parse_alarm_event(_with_reason_data(reason_data)).detail.state

    assert state.value == "ALARM"
    assert state.reason_data is None
    assert state.reason_data_raw == reason_data
    assert state.reason_data_problem is not None
    assert state.reason_data_problem.startswith(problem)


def test_reason_data_of_a_percentile_alarm_may_name_an_extended_statistic() -> None:
    reason_data = json.dumps({"version": "1.0", "extendedStatistic": "p99", "period": 60, "recentDatapoints": [1.5]})

    data = parse_alarm_event(_with_reason_data(reason_data)).detail.state.reason_data

    assert data is not None
    assert data.statistic == "p99"


def test_missing_datapoints_are_evaluated_with_a_timestamp_only() -> None:
    reason_data = json.dumps(
        {
            "version": "1.0",
            "queryDate": "2024-05-14T10:00:00.000+0000",
            "statistic": "Sum",
            "period": 60,
            "recentDatapoints": [],
            "threshold": 0.0,
            "evaluatedDatapoints": [{"timestamp": "2024-05-14T09:59:00.000+0000"}],
        }
    )

    data = parse_alarm_event(_with_reason_data(reason_data)).detail.state.reason_data

    assert data is not None
    assert data.recent_datapoints == []
    [point] = data.evaluated_datapoints
    assert (point.sample_count, point.value) == (None, None)


def test_evaluation_state_is_kept() -> None:
    raw = spillover()
    raw["detail"]["state"]["evaluationState"] = "PARTIAL_DATA"

    assert parse_alarm_event(raw).detail.state.evaluation_state == "PARTIAL_DATA"


def test_reason_data_model_parses_on_its_own() -> None:
    data = ReasonData.model_validate({"recentDatapoints": [1, 2], "threshold": 3})

    assert data.recent_datapoints == [1.0, 2.0]
    assert data.threshold == 3.0


# --- inputs: dict, text, bytes; frozen; round trip -------------------------------------------------


def test_the_event_is_accepted_as_a_mapping_text_or_bytes() -> None:
    text = (EVENTS / "spillover-alarm.json").read_text()

    from_text = parse_alarm_event(text)
    assert parse_alarm_event(text.encode()) == from_text
    assert parse_alarm_event(json.loads(text)) == from_text


def test_the_event_is_frozen() -> None:
    event = parse_alarm_event(spillover())

    with pytest.raises(ValidationError):
        event.detail.state.value = "OK"  # type: ignore[misc]


def test_a_dumped_event_parses_back_to_the_same_event() -> None:
    event = parse_alarm_event(load("anomaly-detection-alarm.json"))

    dumped = event.model_dump(mode="json", by_alias=True)

    assert dumped["detail-type"] == "CloudWatch Alarm State Change"
    assert parse_alarm_event(dumped) == event


def test_the_models_accept_python_field_names_too() -> None:
    event = parse_alarm_event(spillover())

    again = AlarmStateChangeEvent.model_validate(event.model_dump())

    assert again == event


# --- invalid events: one EventError naming the first failing field ---------------------------------


@pytest.mark.parametrize(
    ("name", "field", "problem"),
    [
        ("missing-state.json", "detail.state", "field required"),
        ("bad-state-value.json", "detail.state.value", "input should be 'OK', 'ALARM' or 'INSUFFICIENT_DATA'"),
        ("not-an-alarm-arn.json", "resources.0", "expected a CloudWatch alarm ARN"),
        ("wrong-detail-type.json", "detail-type", "expected 'CloudWatch Alarm State Change'"),
        ("not-json.json", ROOT_FIELD, "not JSON"),
    ],
)
def test_the_broken_sample_events_are_refused(name: str, field: str, problem: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_alarm_event((EVENTS / "invalid" / name).read_bytes(), source=name)

    assert caught.value.field == field
    assert caught.value.source == name
    assert caught.value.problem.startswith(problem)
    assert str(caught.value).startswith(f"{name}: {field}: {problem}")


def _broken(change: Any) -> dict[str, Any]:
    raw = spillover()
    change(raw)
    return raw


BROKEN: list[tuple[str, Any, str]] = [
    ("not an object", "[1, 2, 3]", ROOT_FIELD),
    ("a JSON string", '"hello"', ROOT_FIELD),
    ("empty text", "", ROOT_FIELD),
    ("not UTF-8", b"\xff\xfe{", ROOT_FIELD),
    ("None", None, ROOT_FIELD),
    ("a number", 42, ROOT_FIELD),
    ("nested too deeply", "[" * 100_000, ROOT_FIELD),
    ("missing detail-type", _broken(lambda r: r.pop("detail-type")), "detail-type"),
    ("wrong source", _broken(lambda r: r.update(source="aws.events")), "source"),
    ("missing detail", _broken(lambda r: r.pop("detail")), "detail"),
    ("detail not an object", _broken(lambda r: r.update(detail="x")), "detail"),
    ("missing time", _broken(lambda r: r.pop("time")), "time"),
    ("bad time", _broken(lambda r: r.update(time="last tuesday")), "time"),
    ("no resources", _broken(lambda r: r.update(resources=[])), "resources"),
    ("resources not a list", _broken(lambda r: r.update(resources="arn")), "resources"),
    (
        "ARN names another alarm",
        _broken(lambda r: r.update(resources=["arn:aws:cloudwatch:us-east-1:123456789012:alarm:other"])),
        "resources.0",
    ),
    ("missing alarm name", _broken(lambda r: r["detail"].pop("alarmName")), "detail.alarmName"),
    ("missing state value", _broken(lambda r: r["detail"]["state"].pop("value")), "detail.state.value"),
    ("bad state timestamp", _broken(lambda r: r["detail"]["state"].update(timestamp="soon")), "detail.state.timestamp"),
    (
        "bad previous state",
        _broken(lambda r: r["detail"]["previousState"].update(value="?")),
        "detail.previousState.value",
    ),
    ("missing configuration", _broken(lambda r: r["detail"].pop("configuration")), "detail.configuration"),
    (
        "no metrics and no rule",
        _broken(lambda r: r["detail"]["configuration"].update(metrics=[])),
        "detail.configuration.metrics",
    ),
    (
        "query with neither metric nor expression",
        _broken(lambda r: r["detail"]["configuration"]["metrics"][0].pop("metricStat")),
        "detail.configuration.metrics.0",
    ),
    (
        "zero period",
        _broken(lambda r: r["detail"]["configuration"]["metrics"][0]["metricStat"].update(period=0)),
        "detail.configuration.metrics.0.metricStat.period",
    ),
    (
        "missing stat",
        _broken(lambda r: r["detail"]["configuration"]["metrics"][0]["metricStat"].pop("stat")),
        "detail.configuration.metrics.0.metricStat.stat",
    ),
    (
        "dimension value not a string",
        _broken(
            lambda r: r["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"].update(
                Resource=7
            )
        ),
        "detail.configuration.metrics.0.metricStat.metric.dimensions.Resource",
    ),
    (
        "duplicate query ids",
        _broken(
            lambda r: r["detail"]["configuration"]["metrics"].append(
                copy.deepcopy(r["detail"]["configuration"]["metrics"][0])
            )
        ),
        "detail.configuration.metrics.1.id",
    ),
    ("tag value not a string", _broken(lambda r: r["detail"].update(alarmTags={"team": 1})), "detail.alarmTags.team"),
]


@pytest.mark.parametrize(("raw", "field"), [(raw, field) for _, raw, field in BROKEN], ids=[b[0] for b in BROKEN])
def test_an_invalid_event_raises_one_event_error_naming_the_field(raw: Any, field: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_alarm_event(raw)

    assert caught.value.field == field
    assert caught.value.source == "event"
    assert caught.value.problem
    assert "\n" not in str(caught.value)


# --- the error hierarchy ----------------------------------------------------------------------------


def test_event_errors_are_input_errors_carrying_data() -> None:
    error = EventError(field="detail.state.value", source="event", problem="field required")

    assert isinstance(error, InputError)
    assert isinstance(error, MedicError)
    assert str(error) == "event: detail.state.value: field required"
    assert (error.field, error.source, error.problem) == ("detail.state.value", "event", "field required")


def test_event_errors_survive_pickling() -> None:
    error = EventError("detail-type", "events/x.json", "expected 'CloudWatch Alarm State Change'")

    again = pickle.loads(pickle.dumps(error))

    assert isinstance(again, EventError)
    assert str(again) == str(error)
