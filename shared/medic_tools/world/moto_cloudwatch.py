"""CloudWatch in the embedded world: what moto 5.2.5 serves wrongly or not at all, patched onto its backend.

`install()` (called from `moto_ext.install()`) adds, each with the AWS documentation it follows (CloudWatch API
reference unless said otherwise):

* PutMetricData keeps a `Values`/`Counts` member whole, as one weighted datum (`metric_statistics.WeightedDatum`),
  where moto expanded each value `count` times into separate datums: a busy function's Duration, thousands of
  invocations a minute, is a few datums a minute instead of thousands. It checks what moto checks (Value and Values
  mutually exclusive, Counts as long as Values, no NaN) and AWS's documented limits: "up to 150 values per metric
  with one PutMetricData request", "no more than 1000 different metrics" per request, "Values must be in the range
  of -2^360 to 2^360 ... special values (for example, NaN, +Infinity, -Infinity) are not supported"; a negative or
  non-finite count is refused too (our reading: a count is how many times a value occurred). Errors are
  InvalidParameterValue (400) with moto's wording where moto has one, ours otherwise.
* GetMetricData and GetMetricStatistics compute every statistic with `medic_tools.world.metric_statistics`, the code the
  alarm evaluation uses: Sum, SampleCount, Average, Minimum, Maximum, `pNN` and `tmNN`, over single values,
  statistic sets and weighted Values/Counts alike. Metrics match on namespace, name and the exact dimension set.
  StartTime is rounded down to the whole minute (to a multiple of the period for periods under 60 s), as both
  operations document for start times less than 15 days ago (the coarser rounding of older start times is not
  modelled); a period holds the data stamped in [start, start + Period).
* GetMetricStatistics answers `ExtendedStatistics` (moto ignored them) with `Datapoints[].ExtendedStatistics`
  (a percentile that cannot be computed for a period is left out of it), refuses a request with both or neither of
  Statistics and ExtendedStatistics ("you must specify either Statistics or ExtendedStatistics, but not both") and
  one asking for more than 1,440 datapoints ("If you request more than 1,440 data points, CloudWatch returns an
  error"), both as InvalidParameterCombination (the second with our wording). Datapoints come in chronological
  order (AWS does not promise an order).
* ListMetrics lists each metric (namespace, name, dimension set) once: moto listed a metric once per datum when
  it had no dimension or more than one (its dimension comparison matched every dimension against every other), and
  compared each datum with every metric already listed.
* Alarms start in INSUFFICIENT_DATA and an update keeps their state ("When this operation creates an alarm, the
  alarm state is immediately set to INSUFFICIENT_DATA ... When updating an existing alarm, its StateValue is left
  unchanged", PutMetricAlarm). Evaluation is world behaviour: see `medic_tools.world.alarms`.
* GetMetricWidgetImage is *not* rendered: the world answers it with a clean `NotImplemented` error (a 400,
  serialized as CloudWatch serializes its errors) instead of moto's unhandled 500 and its traceback, so Medic takes
  the path it takes whenever AWS gives no image (the card's text datapoints).
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime, timedelta
from typing import Any, Final

from moto.cloudwatch.exceptions import (
    CloudWatchException,
    InvalidParameterCombination,
    InvalidParameterValue,
    ValidationError,
)
from moto.cloudwatch.metric_data_expression_parser import parse_expression
from moto.cloudwatch.models import Alarm, CloudWatchBackend
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from medic_tools.world import moto_ext
from medic_tools.world.metric_statistics import (
    WeightedDatum,
    naive_utc,
    percentile_of,
    period_buckets,
    period_points,
    sample_count,
    statistic_value,
)

MAX_VALUES_PER_METRIC: Final = 150
MAX_METRICS_PER_REQUEST: Final = 1000
MAX_DATAPOINTS: Final = 1440
_VALUE_BOUND: Final = 2.0**360
_STATISTICS: Final = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")

_installed = False


# ---------------------------------------------------------------------------------------------------------------
# PutMetricData

_original_put_metric_data = CloudWatchBackend.put_metric_data


def _invalid(value: object, parameter: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"The value {value} for parameter {parameter} is invalid.")


def _check_values(member: dict[str, Any], index: int) -> None:
    """AWS's documented limits on one member's Value, Values and Counts (moto checks the rest)."""
    prefix = f"MetricData.member.{index}"
    if member.get("Value") is not None:
        value = float(member["Value"])
        if math.isinf(value) or abs(value) > _VALUE_BOUND:
            raise _invalid(value, f"{prefix}.Value")
    values = [float(v) for v in member.get("Values") or []]
    counts = [float(c) for c in member.get("Counts") or []]
    if len(values) > MAX_VALUES_PER_METRIC:
        raise InvalidParameterValue(
            f"The parameter {prefix}.Values must not contain more than {MAX_VALUES_PER_METRIC} values."
        )
    for value in values:
        if not math.isfinite(value) or abs(value) > _VALUE_BOUND:
            raise _invalid(value, f"{prefix}.Values")
    for count in counts:
        if not math.isfinite(count) or count < 0:
            raise _invalid(count, f"{prefix}.Counts")


def _put_metric_data(self: CloudWatchBackend, namespace: str, metric_data: list[dict[str, Any]]) -> None:
    if len(metric_data) > MAX_METRICS_PER_REQUEST:
        raise InvalidParameterValue(
            f"The collection MetricData must not have a size greater than {MAX_METRICS_PER_REQUEST}."
        )
    for index, member in enumerate(metric_data, start=1):
        self._validate_parameters_put_metric_data(member, index)
        _check_values(member, index)
    for member in metric_data:
        if not member.get("Values"):
            _original_put_metric_data(self, namespace, [member])
            continue
        values = [float(v) for v in member["Values"]]
        counts = [float(c) for c in member.get("Counts") or [1.0] * len(values)]
        self.metric_data.append(
            WeightedDatum(
                namespace,
                member["MetricName"],
                values,
                counts,
                member.get("Dimensions") or [],
                member.get("Timestamp"),
                member.get("Unit"),
            )
        )


# ---------------------------------------------------------------------------------------------------------------
# GetMetricData and GetMetricStatistics


def rounded_start(start: datetime, period: int) -> datetime:
    """StartTime as CloudWatch rounds it (less than 15 days ago): down to the minute, or to the period under 60 s.

    >>> rounded_start(datetime(2026, 1, 5, 12, 32, 34), 300)
    datetime.datetime(2026, 1, 5, 12, 32)
    >>> rounded_start(datetime(2026, 1, 5, 1, 5, 23), 10)
    datetime.datetime(2026, 1, 5, 1, 5, 20)
    """
    start = naive_utc(start).replace(microsecond=0)
    step = period if 0 < period < 60 else 60
    return start - timedelta(seconds=(start.second % step))


_original_get_metric_data = CloudWatchBackend.get_metric_data


def _get_metric_data(
    self: CloudWatchBackend,
    queries: list[dict[str, Any]],
    start_time: datetime,
    end_time: datetime,
    scan_by: str = "TimestampAscending",
) -> list[dict[str, Any]]:
    start_time = naive_utc(start_time).replace(microsecond=0)
    end_time = naive_utc(end_time).replace(microsecond=0)
    if start_time > end_time:
        raise ValidationError("The parameter EndTime must be greater than StartTime.")
    if start_time == end_time:
        raise ValidationError("The parameter StartTime must not equal parameter EndTime.")
    earliest = start_time.replace(second=0)  # no query's rounded start is earlier
    in_range = [md for md in self.get_all_metrics() if earliest <= naive_utc(md.timestamp) < end_time]
    stat_results: list[dict[str, Any]] = []
    returned: list[dict[str, Any]] = []
    for query in queries:
        if "MetricStat" not in query:
            continue
        metric_stat = query["MetricStat"]
        metric = metric_stat["Metric"]
        stat = metric_stat["Stat"]
        period = int(metric_stat["Period"])
        points = [
            p
            for p in period_points(
                in_range,
                namespace=metric["Namespace"],
                metric_name=metric["MetricName"],
                dimensions={d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
                stat=stat,
                period=period,
                start=rounded_start(start_time, period),
                end=end_time,
                unit=metric_stat.get("Unit"),
            )
            if p.value is not None
        ]
        if scan_by == "TimestampDescending":
            points.reverse()
        result = {
            "id": query["Id"],
            "label": query.get("Label") or f"{metric['MetricName']} {stat}",
            "values": [p.value for p in points],
            "timestamps": [p.start for p in points],
            "status_code": "Complete",
        }
        stat_results.append(result)
        if query.get("ReturnData", True):
            returned.append(result)
    for query in queries:
        expression = query.get("Expression")
        if expression is None or expression.startswith("SELECT"):
            continue
        values, timestamps = parse_expression(expression, stat_results)
        returned.append(
            {
                "id": query["Id"],
                "label": query.get("Label") or query["Id"],
                "values": values,
                "timestamps": timestamps,
                "status_code": "Complete",
            }
        )
    insights = [q for q in queries if str(q.get("Expression", "")).startswith("SELECT")]
    if insights:
        returned.extend(_original_get_metric_data(self, insights, start_time, end_time, scan_by))
    return returned


def _datapoint(moment: datetime, bucket: list[Any], statistics: list[str], extended: list[str]) -> dict[str, Any]:
    point: dict[str, Any] = {"Timestamp": moment}
    for stat in statistics:
        value = statistic_value(bucket, stat)
        if value is not None:
            point[stat] = value
    percentiles = {stat: statistic_value(bucket, stat) for stat in extended}
    if any(value is not None for value in percentiles.values()):
        point["ExtendedStatistics"] = {stat: value for stat, value in percentiles.items() if value is not None}
    units = {datum.unit for datum in bucket if datum.unit}
    point["Unit"] = units.pop() if len(units) == 1 else "None"
    return point


def _get_metric_statistics(self: CloudWatchResponse) -> ActionResult:
    statistics: list[str] = list(self._get_param("Statistics") or [])
    extended: list[str] = list(self._get_param("ExtendedStatistics") or [])
    if bool(statistics) == bool(extended):
        raise InvalidParameterCombination(
            "Must specify either Statistics or ExtendedStatistics, but not both."
            if statistics
            else "Must specify either Statistics or ExtendedStatistics"
        )
    for stat in statistics:
        if stat not in _STATISTICS:
            raise InvalidParameterValue(f"The value {stat} for parameter Statistics is not supported.")
    for stat in extended:
        if percentile_of(stat) is None:
            raise InvalidParameterValue(f"The value {stat} for parameter ExtendedStatistics is not supported.")
    period = int(self._get_int_param("Period"))
    end = naive_utc(self._get_param("EndTime")).replace(microsecond=0)
    start = rounded_start(self._get_param("StartTime"), period)
    if start >= end:
        raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
    requested = math.ceil((end - start).total_seconds() / period)
    if requested > MAX_DATAPOINTS:
        raise InvalidParameterCombination(
            f"You have requested up to {requested} datapoints, which exceeds the limit of {MAX_DATAPOINTS}. You may "
            "reduce the datapoints requested by increasing Period, or decreasing the time range."
        )
    metric_name = self._get_param("MetricName")
    buckets = period_buckets(
        self.cloudwatch_backend.get_all_metrics(),
        namespace=self._get_param("Namespace"),
        metric_name=metric_name,
        dimensions={d["Name"]: d["Value"] for d in self._get_param("Dimensions") or []},
        period=period,
        start=start,
        end=end,
        unit=self._get_param("Unit"),
    )
    datapoints = [
        _datapoint(moment, bucket, statistics, extended)
        for moment, bucket in buckets.items()
        if sample_count(bucket) > 0
    ]
    return ActionResult({"Label": metric_name, "Datapoints": datapoints})


def _get_filtered_metrics(
    self: CloudWatchBackend, metric_name: str, namespace: str, dimensions: list[dict[str, str]]
) -> list[Any]:
    seen: set[tuple[str, str, frozenset[tuple[str | None, str | None]]]] = set()
    metrics = []
    for datum in self.get_all_metrics():
        if not datum.filter(namespace=namespace, name=metric_name, dimensions=dimensions):
            continue
        key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
        if key not in seen:
            seen.add(key)
            metrics.append(datum)
    return metrics


# ---------------------------------------------------------------------------------------------------------------
# Alarms and metric images

_original_alarm_init = Alarm.__init__


def _alarm_init(self: Alarm, *args: Any, **kwargs: Any) -> None:
    _original_alarm_init(self, *args, **kwargs)
    self.state_value = "INSUFFICIENT_DATA"


_original_put_metric_alarm = CloudWatchBackend.put_metric_alarm


def _put_metric_alarm(self: CloudWatchBackend, *args: Any, **kwargs: Any) -> Alarm:
    name = kwargs["name"] if "name" in kwargs else args[0]
    previous = self.alarms.get(name)
    alarm = _original_put_metric_alarm(self, *args, **kwargs)
    if previous is not None:
        for attribute in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
            setattr(alarm, attribute, getattr(previous, attribute))
    return alarm


class _MetricImagesNotRendered(CloudWatchException):
    code = "NotImplemented"

    def __init__(self) -> None:
        super().__init__("the embedded AWS does not render metric images (GetMetricWidgetImage)")


def _get_metric_widget_image(self: CloudWatchResponse) -> Any:
    with warnings.catch_warnings():  # moto warns that the code is not one of CloudWatch's modelled errors
        warnings.simplefilter("ignore", UserWarning)
        _, headers, body = self.serialized(ActionResult(_MetricImagesNotRendered()))
    return 400, {**headers, "status": 400}, body


def install() -> None:
    """Patch moto's CloudWatch in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with moto_ext._LOCK:
        if _installed:
            return
        CloudWatchBackend.put_metric_data = _put_metric_data  # type: ignore[method-assign]
        CloudWatchBackend.get_metric_data = _get_metric_data  # type: ignore[method-assign]
        CloudWatchResponse.get_metric_statistics = _get_metric_statistics  # type: ignore[method-assign]
        CloudWatchBackend.get_filtered_metrics = _get_filtered_metrics  # type: ignore[method-assign]
        CloudWatchResponse.get_metric_widget_image = _get_metric_widget_image  # type: ignore[attr-defined]
        CloudWatchBackend.put_metric_alarm = _put_metric_alarm  # type: ignore[method-assign]
        Alarm.__init__ = _alarm_init  # type: ignore[method-assign]
        _installed = True
