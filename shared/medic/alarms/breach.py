"""Which way an alarm in ``ALARM`` breached: ``above`` its threshold (or band), ``below`` it, or ``unknown``.

The "CloudWatch Alarm State Change" event carries no comparison operator (CloudWatch user guide, "Alarm events and
EventBridge": ``configuration`` holds the metric queries only), so the direction is read from what the event does
carry, two witnesses that must not disagree:

1. ``state.reasonData``. An anomaly detection alarm gives ``recentDatapoints`` with ``recentLowerThresholds`` and
   ``recentUpperThresholds`` (one bound of each per datapoint; user guide, "Using CloudWatch anomaly detection" and
   the anomaly detection sample event): a datapoint under its lower bound breached below, one over its upper bound
   breached above, one inside the band did not breach. A static threshold alarm gives ``recentDatapoints`` and
   ``threshold``: in ``ALARM`` with every datapoint strictly on one side of the threshold, that side is the
   direction (datapoints below the threshold while in ``ALARM`` mean a ``LessThan…`` operator). Datapoints on both
   sides (an "M out of N" alarm) or on the threshold itself say nothing here.
2. ``state.reason``, which CloudWatch writes from the operator: "… were greater than the threshold (1000.0) …",
   "… was less than or equal to the threshold …", "… was less than the lower thresholds [210.4] …". A band alarm
   with ``LessThanLowerOrGreaterThanUpperThreshold`` names both sides ("was less than the lower thresholds [..] or
   greater than the upper thresholds [..]") and so says nothing on its own; neither does a breach on missing data
   ("… missing datapoints were treated as [Breaching]").

When the witnesses disagree, or neither tells, the direction is ``unknown``: Medic says so and changes nothing.

Example::

    >>> from medic.alarms.events import parse_alarm_event
    >>> breach_of(parse_alarm_event(open("events/anomaly-lower-band-alarm.json").read()).detail.state)  # doctest: +SKIP
    Breach(direction='below', evidence='datapoint 61.2 under its lower band 182.5')
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from medic.alarms.events import AlarmState, ReasonData

BreachDirection = Literal["above", "below", "unknown"]

# "greater than the threshold", "less than or equal to the threshold", "less than the lower thresholds", with
# CloudWatch's "not" (an OK reason) excluded: a negated comparison is not a breach.
_COMPARISON = re.compile(
    r"(?<!not )\b(?P<side>greater|less) than (?:or equal to )?the (?:(?:upper|lower) )?thresholds?\b", re.IGNORECASE
)


class Breach(NamedTuple):
    """The direction of an alarm's breach and, in one line, what said so."""

    direction: BreachDirection
    evidence: str


def breach_of(state: AlarmState) -> Breach:
    """Which way the datapoints of an ``ALARM`` state crossed the alarm's threshold or band (see the module doc)."""
    data = state.reason_data
    numeric = _from_reason_data(data) if data is not None else None
    text = _from_reason(state.reason)
    if numeric is not None and text is not None and numeric.direction != text.direction:
        return Breach("unknown", f"reasonData says {numeric.evidence}, but the reason says {text.evidence}")
    if numeric is not None:
        return numeric
    if text is not None:
        return text
    return Breach("unknown", _why_unknown(data))


def _from_reason_data(data: ReasonData) -> Breach | None:
    values = _values(data)
    if not values:
        return None
    if data.recent_lower_thresholds or data.recent_upper_thresholds:
        return _from_band(values, data.recent_lower_thresholds, data.recent_upper_thresholds)
    if data.threshold is None:
        return None
    threshold = data.threshold
    if all(value > threshold for value in values):
        return Breach("above", f"{_listed(values)} above the threshold {threshold:g}")
    if all(value < threshold for value in values):
        return Breach("below", f"{_listed(values)} below the threshold {threshold:g}")
    return None


def _from_band(values: list[float], lower: list[float], upper: list[float]) -> Breach | None:
    """Each datapoint against its own bounds (CloudWatch lists one lower and one upper bound per datapoint)."""
    above = [(value, upper[i]) for i, value in enumerate(values) if i < len(upper) and value > upper[i]]
    below = [(value, lower[i]) for i, value in enumerate(values) if i < len(lower) and value < lower[i]]
    if above and below:
        return Breach(
            "unknown",
            f"the band was breached on both sides ({_band(above, 'over', 'upper')}; {_band(below, 'under', 'lower')})",
        )
    if above:
        return Breach("above", _band(above, "over", "upper"))
    if below:
        return Breach("below", _band(below, "under", "lower"))
    return None


def _from_reason(reason: str) -> Breach | None:
    sides = {match.group("side").lower() for match in _COMPARISON.finditer(reason)}
    if sides == {"greater"}:
        return Breach("above", "'greater than' the threshold")
    if sides == {"less"}:
        return Breach("below", "'less than' the threshold")
    return None


def _values(data: ReasonData) -> list[float]:
    """The evaluated values: ``recentDatapoints``, else those of ``evaluatedDatapoints`` (a missing one has none)."""
    return list(data.recent_datapoints) or [p.value for p in data.evaluated_datapoints if p.value is not None]


def _listed(values: list[float], shown: int = 5) -> str:
    """``datapoints [120, 180]``; the newest ``shown`` only, when there are more."""
    head = "…, " if len(values) > shown else ""
    noun = "datapoint" if len(values) == 1 else "datapoints"
    return f"{noun} [{head}{', '.join(f'{value:g}' for value in values[-shown:])}]"


def _band(crossed: list[tuple[float, float]], where: str, bound: str) -> str:
    """``datapoint 61.2 under its lower band 182.5``, or the count and the latest one."""
    value, limit = crossed[-1]
    if len(crossed) == 1:
        return f"datapoint {value:g} {where} its {bound} band {limit:g}"
    return f"{len(crossed)} datapoints {where} their {bound} band (latest {value:g} vs {limit:g})"


def _why_unknown(data: ReasonData | None) -> str:
    if data is None:
        return "the event has no reasonData and its reason names no single side"
    if not _values(data):
        return "no datapoint values in reasonData (a breach on missing data?) and the reason names no single side"
    return "datapoints on both sides of (or on) the threshold or inside the band, and the reason names no single side"
