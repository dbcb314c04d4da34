"""Which way an alarm breached, read from an event that carries no comparison operator.

Shapes: CloudWatch user guide, "Alarm events and EventBridge" (reasonData: recentDatapoints and threshold, or
recentLowerThresholds / recentUpperThresholds for anomaly detection) and the state reasons CloudWatch writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medic.alarms.breach import Breach, breach_of
from medic.alarms.events import AlarmState, parse_alarm_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


def state(reason: str = "", data: dict[str, Any] | str | None = None) -> AlarmState:
    """An ALARM state with this reason and reasonData (a dict is encoded as CloudWatch does: a JSON string)."""
    fields: dict[str, Any] = {"value": "ALARM", "reason": reason, "timestamp": "2024-05-14T10:00:00.000+0000"}
    if data is not None:
        fields["reasonData"] = data if isinstance(data, str) else json.dumps({"version": "1.0", **data})
    return AlarmState.model_validate(fields)


def crossed(count: int, values: str, phrase: str, threshold: str) -> str:
    """A state reason as CloudWatch writes it for an OK -> ALARM transition."""
    were = "was" if count == 1 else "were"
    return (
        f"Threshold Crossed: {count} out of the last {count} datapoints [{values}] {were} {phrase} {threshold} "
        f"(minimum {count} datapoint for OK -> ALARM transition)."
    )


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("spillover-alarm.json", "above"),
        ("throttles-alarm.json", "above"),
        ("p99-duration-alarm.json", "above"),
        ("db-connections-alarm.json", "above"),
        ("metric-math-alarm.json", "above"),
        ("anomaly-detection-alarm.json", "above"),
        ("anomaly-lower-band-alarm.json", "below"),
        ("cross-account-metric-alarm.json", "above"),
    ],
)
def test_each_sample_alarm_breached_the_way_its_numbers_say(name: str, direction: str) -> None:
    event = parse_alarm_event((EVENTS / name).read_bytes(), source=name)

    assert breach_of(event.detail.state).direction == direction


def test_a_static_threshold_with_every_datapoint_above_is_above() -> None:
    breach = breach_of(state(crossed(2, "180.0, 120.0", "greater than the", "threshold (0.0)"),
                             {"recentDatapoints": [120.0, 180.0], "threshold": 0.0}))  # fmt: skip

    assert breach == Breach("above", "datapoints [120, 180] above the threshold 0")


def test_datapoints_below_the_threshold_while_in_alarm_mean_a_less_than_alarm() -> None:
    breach = breach_of(state(crossed(1, "0.08", "less than the", "threshold (0.3)"),
                             {"recentDatapoints": [0.08], "threshold": 0.3}))  # fmt: skip

    assert breach == Breach("below", "datapoint [0.08] below the threshold 0.3")


def test_only_the_newest_datapoints_are_listed() -> None:
    breach = breach_of(state(data={"recentDatapoints": [float(v) for v in range(11, 19)], "threshold": 10.0}))

    assert breach.evidence == "datapoints […, 14, 15, 16, 17, 18] above the threshold 10"


@pytest.mark.parametrize(
    ("phrase", "direction"),
    [
        ("greater than the", "above"),
        ("greater than or equal to the", "above"),
        ("less than the", "below"),
        ("less than or equal to the", "below"),
    ],
)
def test_an_m_out_of_n_alarm_with_datapoints_on_both_sides_is_read_from_its_reason(phrase: str, direction: str) -> None:
    mixed = {"recentDatapoints": [1500.0, 800.0, 1600.0], "threshold": 1000.0}

    assert breach_of(state(crossed(2, "1600.0, 1500.0", phrase, "threshold (1000.0)"), mixed)).direction == direction


def test_datapoints_on_the_threshold_itself_are_read_from_the_reason() -> None:
    on_it = {"recentDatapoints": [400.0, 400.0], "threshold": 400.0}

    breach = breach_of(state(crossed(2, "400.0, 400.0", "greater than or equal to the", "threshold (400.0)"), on_it))

    assert breach == Breach("above", "'greater than' the threshold")


def test_a_datapoint_over_its_upper_band_is_above() -> None:
    band = {"recentDatapoints": [1850.0], "recentLowerThresholds": [210.4], "recentUpperThresholds": [920.7]}

    assert breach_of(state(data=band)) == Breach("above", "datapoint 1850 over its upper band 920.7")


def test_each_datapoint_is_held_against_its_own_band() -> None:
    band = {"recentDatapoints": [30.0, 12.0, 9.0], "recentLowerThresholds": [10.0, 15.0, 20.0],
            "recentUpperThresholds": [50.0, 55.0, 60.0]}  # fmt: skip

    assert breach_of(state(data=band)) == Breach("below", "2 datapoints under their lower band (latest 9 vs 20)")


def test_a_band_breached_on_both_sides_is_unknown() -> None:
    band = {"recentDatapoints": [70.0, 5.0], "recentLowerThresholds": [10.0, 10.0],
            "recentUpperThresholds": [50.0, 50.0]}  # fmt: skip

    breach = breach_of(state(data=band))

    assert breach.direction == "unknown"
    assert "both sides" in breach.evidence


def test_a_band_alarm_reason_naming_both_sides_defers_to_the_numbers() -> None:
    reason = (
        "Thresholds Crossed: 1 out of the last 1 datapoints [61.2 (14/05/24 03:10:00)] was less than the lower "
        "thresholds [182.5] or greater than the upper thresholds [871.9] (minimum 1 datapoint for OK -> ALARM "
        "transition)."
    )

    assert breach_of(state(reason)).direction == "unknown"
    band = {"recentDatapoints": [61.2], "recentLowerThresholds": [182.5], "recentUpperThresholds": [871.9]}
    assert breach_of(state(reason, band)).direction == "below"


def test_a_lower_threshold_only_band_alarm_says_so_in_its_reason() -> None:
    reason = (
        "Thresholds Crossed: 1 out of the last 1 datapoints [61.2 (14/05/24 03:10:00)] was less than the lower "
        "thresholds [182.5] (minimum 1 datapoint for OK -> ALARM transition)."
    )

    assert breach_of(state(reason)) == Breach("below", "'less than' the threshold")


def test_numbers_and_reason_that_disagree_are_unknown() -> None:
    reason = crossed(1, "180.0", "less than the", "threshold (0.0)")

    breach = breach_of(state(reason, {"recentDatapoints": [180.0], "threshold": 0.0}))

    assert breach.direction == "unknown"
    assert breach.evidence == (
        "reasonData says datapoint [180] above the threshold 0, but the reason says 'less than' the threshold"
    )


def test_a_breach_on_missing_data_is_unknown() -> None:
    reason = (
        "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints were treated as "
        "[Breaching] (minimum 3 datapoints for OK -> ALARM transition)."
    )
    missing = {"recentDatapoints": [], "threshold": 0.0, "evaluatedDatapoints": [{"timestamp": "2024-05-14T09:59:00Z"}]}

    breach = breach_of(state(reason, missing))

    assert breach.direction == "unknown"
    assert "no datapoint values" in breach.evidence


def test_evaluated_datapoints_stand_in_for_recent_ones() -> None:
    data = {"threshold": 5.0, "evaluatedDatapoints": [{"timestamp": "2024-05-14T09:59:00Z", "value": 7.5}]}

    assert breach_of(state(data=data)).direction == "above"


def test_without_reason_data_the_reason_alone_tells() -> None:
    assert breach_of(state(crossed(1, "42.0", "greater than the", "threshold (0.0)"))).direction == "above"


def test_a_malformed_reason_data_leaves_the_reason() -> None:
    parsed = state(crossed(1, "0.1", "less than the", "threshold (0.3)"), "{not json")

    assert parsed.reason_data is None and parsed.reason_data_problem
    assert breach_of(parsed).direction == "below"


def test_a_negated_comparison_is_no_breach_side() -> None:
    """An OK reason ("were not greater than") handed in by mistake says nothing about an ALARM's direction."""
    reason = "Threshold Crossed: 2 out of the last 2 datapoints [0.0, 0.0] were not greater than the threshold (0.0)"

    breach = breach_of(state(reason))

    assert breach.direction == "unknown"
    assert breach.evidence == "the event has no reasonData and its reason names no single side"
