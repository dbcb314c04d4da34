"""World behaviour of CloudWatch alarms: evaluate them at a given moment and emit the EventBridge events AWS emits.

moto stores alarms but never evaluates them. `evaluate_alarms(now)` does what CloudWatch does on each evaluation
(CloudWatch user guide, "Using Amazon CloudWatch alarms"):

* The evaluation range is the EvaluationPeriods + 2 periods ending at `now` truncated to the minute (the current,
  incomplete minute is not evaluated yet: a datapoint stamped T is seen from T's minute + 1 min on; AWS's
  reasonData shows the same, e.g. queryDate 13:14:42 → startDate 13:13:00 for a 60 s period). "CloudWatch
  retrieves the 5 most recent data points" for 3 evaluation periods; we always take two more periods than
  EvaluationPeriods.
* With at least EvaluationPeriods existing datapoints in the range, the most recent EvaluationPeriods of them are
  evaluated and TreatMissingData plays no part. With fewer, every existing one is evaluated and the rest are
  filled per TreatMissingData: `breaching` / `notBreaching` fill with breaching / good datapoints; `missing` and
  `ignore` fill with nothing: the alarm goes to ALARM when DatapointsToAlarm existing ones breach, to OK when any
  existing one does not, and otherwise to INSUFFICIENT_DATA (`missing`) or stays as it is (`ignore`). This
  reproduces AWS's documented tables except one row: 3-of-3 with only the oldest of 5 datapoints present and
  breaching gives INSUFFICIENT_DATA here, ALARM on AWS.
* Percentile alarms with EvaluateLowSampleCountPercentile `ignore` drop datapoints with fewer than 10/(1-p)
  samples (10/p below p50); when that leaves none, the state does not change.
* Statistics, percentiles included, come from the same code as GetMetricData (`metric_statistics.metric_points`).

The state change is written to moto's alarm (StateValue, StateReason, StateReasonData, StateUpdatedTimestamp set
to `now`, not wall time), recorded in the alarm's history (a `StateUpdate` item stamped `now`, served by
DescribeAlarmHistory: `medic_tools.world.moto_alarm_history`) and returned as the "CloudWatch Alarm State Change"
event, shaped like the documented samples (CloudWatch user guide, "Alarm events and EventBridge"): envelope `time`
in seconds ("...T17:04:40Z"), state timestamps with milliseconds ("...T17:04:40.989+0000"), `reasonData` as a JSON
string, `previousState` without `reasonData` when it had none ("Unchecked: Initial alarm creation"),
`configuration.description` only when the alarm has one. Alarm tags are not included: AWS adds `alarmTags` only for
alarms with tag propagation enabled, which moto does not model.

reasonData follows AWS's samples: keys version, queryDate, startDate (the oldest evaluated datapoint), unit (when
the alarm has one), statistic (Statistic alarms only: AWS's published samples show it for Sum/Average alarms and
never for others, so percentile alarms, whose "p99" is in the event's configuration, omit it; not verified against
a live percentile alarm), period, recentDatapoints (oldest first), threshold, evaluatedDatapoints (newest first,
the datapoints that justify the transition, each with timestamp, sampleCount and value; missing ones with the
timestamp only). The StateReason wording follows AWS's ("Threshold Crossed: 2 out of the last 3 datapoints [...]
were greater than the threshold (0.0) (minimum 2 datapoints for OK -> ALARM transition)."); the wording for
filled-in datapoints is ours.

Limitations: metric-math, anomaly-detection and composite alarms are skipped (never evaluated); alarm actions
are not run; events are returned, not put on a bus (the caller delivers them).
"""

from __future__ import annotations

import json
import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from moto.cloudwatch.models import Alarm, cloudwatch_backends

from medic_tools.world import moto_alarm_history, moto_ext
from medic_tools.world.metric_statistics import metric_points, percentile_of

ALARM: Final = "ALARM"
OK: Final = "OK"
INSUFFICIENT_DATA: Final = "INSUFFICIENT_DATA"
EXTRA_PERIODS_IN_RANGE: Final = 2

_COMPARISONS: Final[dict[str, tuple[Callable[[float, float], bool], str]]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}


@dataclass(frozen=True)
class _Spec:
    metric_id: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    period: int
    stat: str
    unit: str | None


@dataclass(frozen=True)
class _Datapoint:
    start: datetime
    value: float
    sample_count: float


@dataclass(frozen=True)
class _Outcome:
    state: str
    reason: str
    reason_data: str


def evaluate_alarms(
    now: datetime,
    account_id: str = moto_ext.DEFAULT_ACCOUNT_ID,
    region: str = moto_ext.DEFAULT_REGION,
    names: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate the metric alarms (all, or those named) at `now`; return one AWS-shaped event per state change."""
    moment = now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
    backend = cloudwatch_backends[account_id][region]
    events: list[dict[str, Any]] = []
    for alarm in list(backend.alarms.values()):
        if names is not None and alarm.name not in names:
            continue
        spec = _spec(alarm)
        if spec is None:
            continue
        outcome = _evaluate(alarm, spec, moment, account_id, region)
        if outcome is None or outcome.state == alarm.state_value:
            continue
        previous = _state_of(alarm)
        old = (str(alarm.state_value), str(alarm.state_reason), alarm.state_reason_data)
        alarm.update_state(outcome.reason, outcome.reason_data, outcome.state)
        alarm.state_updated_timestamp = moment.replace(tzinfo=None)
        moto_alarm_history.record_state_update(alarm, old, moment, account_id, region)
        events.append(_event(alarm, spec, previous, moment, account_id, region))
    return events


def _spec(alarm: Alarm) -> _Spec | None:
    if alarm.rule is not None or alarm.comparison_operator not in _COMPARISONS:
        return None
    if alarm.metric_data_queries:
        queries = alarm.metric_data_queries
        if len(queries) != 1 or queries[0].metric_stat is None or queries[0].expression:
            return None
        metric_stat = queries[0].metric_stat
        return _Spec(
            metric_id=str(queries[0].id),
            namespace=metric_stat.metric.namespace,
            metric_name=metric_stat.metric.metric_name,
            dimensions={str(d.name): str(d.value) for d in metric_stat.metric.dimensions},
            period=int(metric_stat.period),
            stat=str(metric_stat.stat),
            unit=metric_stat.unit,
        )
    stat = alarm.statistic or alarm.extended_statistic
    if not stat or not alarm.metric_name or alarm.period is None:
        return None
    return _Spec(
        # AWS shows a generated id for single-metric alarms; a name-based UUID keeps ours stable.
        metric_id=str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)),
        namespace=alarm.namespace,
        metric_name=alarm.metric_name,
        dimensions={str(d.name): str(d.value) for d in alarm.dimensions},
        period=int(alarm.period),
        stat=str(stat),
        unit=alarm.unit,
    )


def _minimum_samples(stat: str) -> float | None:
    percentile = percentile_of(stat)
    if percentile is None or stat[:1].lower() != "p":
        return None
    fraction = float(percentile) / 100
    if fraction >= 0.5:
        return 10 / (1 - fraction) if fraction < 1 else float("inf")
    return 10 / fraction if fraction > 0 else float("inf")


def _evaluate(alarm: Alarm, spec: _Spec, now: datetime, account_id: str, region: str) -> _Outcome | None:
    evaluation_periods = int(alarm.evaluation_periods)
    to_alarm = int(alarm.datapoints_to_alarm or evaluation_periods)
    step = timedelta(seconds=spec.period)
    resolution = 60 if spec.period >= 60 else spec.period
    end = now.replace(tzinfo=None) - timedelta(seconds=now.timestamp() % resolution)
    in_range = evaluation_periods + EXTRA_PERIODS_IN_RANGE
    periods = [end - (in_range - i) * step for i in range(in_range)]
    points = metric_points(
        namespace=spec.namespace,
        metric_name=spec.metric_name,
        dimensions=spec.dimensions,
        stat=spec.stat,
        period=spec.period,
        start=periods[0],
        end=end,
        unit=spec.unit,
        account_id=account_id,
        region=region,
    )
    existing = [_Datapoint(p.start, p.value, p.sample_count) for p in points if p.value is not None]
    minimum = _minimum_samples(spec.stat)
    if minimum is not None and alarm.evaluate_low_sample_count_percentile == "ignore":
        enough = [d for d in existing if d.sample_count >= minimum]
        if existing and not enough:
            return None
        existing = enough
    evaluated = existing[-evaluation_periods:]
    fill = evaluation_periods - len(evaluated)
    seen = {d.start for d in evaluated}
    missing = [moment for moment in reversed(periods) if moment not in seen][:fill]
    compare, phrase = _COMPARISONS[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    breaching = [d for d in evaluated if compare(d.value, threshold)]
    good = [d for d in evaluated if not compare(d.value, threshold)]
    treatment = alarm.treat_missing_data or "missing"

    reasons = _Reasons(spec, now, threshold, phrase, evaluation_periods, to_alarm, evaluated)
    if len(breaching) >= to_alarm:
        return reasons.transition(ALARM, breaching, [], "")
    if treatment == "breaching" and len(breaching) + fill >= to_alarm:
        return reasons.transition(ALARM, breaching, missing, "Breaching")
    if treatment == "notBreaching" and fill:
        return reasons.transition(OK, good, missing, "NonBreaching")
    if good:
        return reasons.transition(OK, good, [], "")
    if treatment == "ignore":
        return None
    return reasons.insufficient(missing if evaluated else list(reversed(periods)))


class _Reasons:
    """StateReason and StateReasonData for one evaluation."""

    def __init__(
        self,
        spec: _Spec,
        now: datetime,
        threshold: float,
        phrase: str,
        evaluation_periods: int,
        to_alarm: int,
        evaluated: Sequence[_Datapoint],
    ) -> None:
        self.spec = spec
        self.now = now
        self.threshold = threshold
        self.phrase = phrase
        self.evaluation_periods = evaluation_periods
        self.to_alarm = to_alarm
        self.evaluated = evaluated

    def transition(
        self, state: str, supporting: Sequence[_Datapoint], filled: Sequence[datetime], fill_label: str
    ) -> _Outcome:
        """ALARM or OK, justified by `supporting` datapoints and `filled` missing periods (newest first)."""
        needed = self.to_alarm if state == ALARM else self.evaluation_periods - self.to_alarm + 1
        newest_first = sorted(supporting, key=lambda d: d.start, reverse=True)
        segments: list[str] = []
        if newest_first:
            listed = ", ".join(f"{_number(d.value)} ({d.start:%d/%m/%y %H:%M:%S})" for d in newest_first)
            negation = "" if state == ALARM else "not "
            segments.append(
                f"{len(newest_first)} out of the last {len(self.evaluated)} datapoints [{listed}] "
                f"{_was(len(newest_first))} {negation}{self.phrase} the threshold ({_number(self.threshold)})"
            )
        if filled:
            treated = f"{_plural(len(filled), 'missing datapoint')} {_was(len(filled))} treated as [{fill_label}]"
            if segments:
                segments.append(f"and {treated}")
            else:
                segments.append(f"no datapoints were received for {_plural(len(filled), 'period')} and {treated}")
        transition = "OK -> ALARM" if state == ALARM else "ALARM -> OK"
        reason = (
            f"Threshold Crossed: {' '.join(segments)} "
            f"(minimum {_plural(needed, 'datapoint')} for {transition} transition)."
        )
        justifying: list[dict[str, Any]] = [
            {"timestamp": _timestamp(d.start), "sampleCount": d.sample_count, "value": d.value} for d in newest_first
        ]
        justifying += [{"timestamp": _timestamp(moment)} for moment in filled]
        return _Outcome(state, reason, self._data(justifying[:needed], with_start=True))

    def insufficient(self, unknown: Sequence[datetime]) -> _Outcome:
        """INSUFFICIENT_DATA because the `unknown` periods (newest first) hold no datapoint."""
        reason = f"Insufficient Data: {_plural(len(unknown), 'datapoint')} {_was(len(unknown))} unknown."
        datapoints: list[dict[str, Any]] = [{"timestamp": _timestamp(moment)} for moment in unknown]
        return _Outcome(INSUFFICIENT_DATA, reason, self._data(datapoints, with_start=bool(self.evaluated)))

    def _data(self, evaluated_datapoints: list[dict[str, Any]], *, with_start: bool) -> str:
        data: dict[str, Any] = {"version": "1.0", "queryDate": _timestamp(self.now)}
        if with_start and self.evaluated:
            data["startDate"] = _timestamp(self.evaluated[0].start)
        if self.spec.unit:
            data["unit"] = self.spec.unit
        if percentile_of(self.spec.stat) is None:
            data["statistic"] = self.spec.stat
        data["period"] = self.spec.period
        data["recentDatapoints"] = [d.value for d in self.evaluated]
        data["threshold"] = self.threshold
        data["evaluatedDatapoints"] = evaluated_datapoints
        return json.dumps(data, separators=(",", ":"))


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _number(value: float) -> str:
    """A double the way CloudWatch (Java) prints it: 180.0, 0.0666851903306472, 1.0E-5."""
    text = repr(float(value))
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exponent)}"


def _timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def _state_of(alarm: Alarm) -> dict[str, str]:
    state = {"value": str(alarm.state_value), "reason": str(alarm.state_reason)}
    reason_data = alarm.state_reason_data
    if reason_data and reason_data != "{}":
        state["reasonData"] = str(reason_data)
    state["timestamp"] = _timestamp(alarm.state_updated_timestamp)
    return state


def _event(
    alarm: Alarm, spec: _Spec, previous: dict[str, str], now: datetime, account_id: str, region: str
) -> dict[str, Any]:
    metric_stat: dict[str, Any] = {
        "metric": {"namespace": spec.namespace, "name": spec.metric_name, "dimensions": dict(spec.dimensions)},
        "period": spec.period,
        "stat": spec.stat,
    }
    if spec.unit:
        metric_stat["unit"] = spec.unit
    configuration: dict[str, Any] = {}
    if alarm.description:
        configuration["description"] = alarm.description
    configuration["metrics"] = [{"id": spec.metric_id, "metricStat": metric_stat, "returnData": True}]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account_id,
        "time": f"{now:%Y-%m-%dT%H:%M:%S}Z",
        "region": region,
        "resources": [alarm.alarm_arn],
        "detail": {
            "alarmName": alarm.name,
            "state": _state_of(alarm),
            "previousState": previous,
            "configuration": configuration,
        },
    }
