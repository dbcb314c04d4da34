"""An alarm's view of the modelled data: its statistic per period, computed from the very datums the world puts
into CloudWatch (so the ground truth sees what CloudWatch sees).

Statistics as CloudWatch defines them (CloudWatch user guide, "CloudWatch statistics definitions"): Sum, SampleCount,
Average, Minimum, Maximum over the period's samples, and percentiles pNN by nearest rank over the weighted values
(the value at rank ceil(NN/100 × n)), as `medic_tools.world.moto_ext` computes them.

>>> view = AlarmView("AWS/Lambda", "Throttles", (("FunctionName", "api"),), "Sum", 60, 0, "GreaterThanThreshold")
>>> from medic_tools.world.workload.emit import Datum
>>> data = [Datum("AWS/Lambda", "Throttles", (("FunctionName", "api"),), 4, value=12.0)]
>>> view.values(data, first=3, last=5), view.breaching(12.0)
([None, 12.0], True)
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medic_tools.world.workload.emit import Datum

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$", re.IGNORECASE)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass(frozen=True)
class AlarmView:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int
    threshold: float
    comparison: str
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None

    @property
    def datapoints_needed(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def dimension_map(self) -> dict[str, str]:
        return dict(self.dimensions)

    def window(self, end_minute: int) -> tuple[int, int]:
        """The minutes the alarm evaluates when it fires at the start of `end_minute`."""
        span = math.ceil(self.period * self.evaluation_periods / 60)
        return max(0, end_minute - span), end_minute

    def matches(self, datum: Datum) -> bool:
        return (
            datum.namespace == self.namespace
            and datum.metric == self.metric
            and sorted(datum.dimensions) == sorted(self.dimensions)
        )

    def values(self, data: Sequence[Datum], first: int, last: int) -> list[float | None]:
        """The statistic of each period in minutes [first, last) (None: no data)."""
        per_period = max(1, self.period // 60)
        periods: dict[int, list[Datum]] = {}
        for datum in data:
            if first <= datum.minute < last and self.matches(datum):
                periods.setdefault((datum.minute - first) // per_period, []).append(datum)
        count = math.ceil((last - first) / per_period)
        return [statistic(periods.get(index, []), self.stat) for index in range(count)]

    def breaching(self, value: float | None) -> bool:
        return value is not None and _COMPARE[self.comparison](value, self.threshold)

    def worst(self, data: Sequence[Datum], first: int, last: int) -> float | None:
        """The period value that breaches most (the highest for a "greater" alarm), None without data."""
        found = [v for v in self.values(data, first, last) if v is not None]
        if not found:
            return None
        return max(found) if "Greater" in self.comparison else min(found)


def statistic(data: Sequence[Datum], stat: str) -> float | None:
    """A CloudWatch statistic over one period's datums (None: no data)."""
    if not data:
        return None
    total = count = 0.0
    low, high = math.inf, -math.inf
    weighted: list[tuple[float, float]] = []
    for datum in data:
        if datum.values:
            weighted.extend(zip(datum.values, datum.counts, strict=True))
            total += sum(v * c for v, c in zip(datum.values, datum.counts, strict=True))
            count += sum(datum.counts)
            low, high = min(low, *datum.values), max(high, *datum.values)
        elif datum.stats is not None:
            minimum, maximum, total_, samples = datum.stats
            total += total_
            count += samples
            low, high = min(low, minimum), max(high, maximum)
            weighted.append((total_ / samples if samples else 0.0, samples))
        elif datum.value is not None:
            total += datum.value
            count += 1
            low, high = min(low, datum.value), max(high, datum.value)
            weighted.append((datum.value, 1.0))
    simple = {"Sum": total, "SampleCount": count, "Minimum": low, "Maximum": high}
    if stat in simple:
        return simple[stat]
    if stat == "Average":
        return total / count if count else None
    match = _PERCENTILE.match(stat)
    if match is None or count == 0:
        return None
    rank = max(1.0, math.ceil(float(match.group(1)) / 100 * count))
    seen = 0.0
    for value, weight in sorted(weighted):
        seen += weight
        if seen >= rank:
            return value
    return sorted(weighted)[-1][0]
