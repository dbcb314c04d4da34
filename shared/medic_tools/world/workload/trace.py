"""What the model records, minute by minute: invocation cells, per-second gauges, counters and the PC state.

A cell is one minute of one (function, resource, executed version): resource is "fn:alias" or "fn:N" for a qualified
invocation and None for an unqualified one ($LATEST). `emit` turns the trace into CloudWatch series and REPORT lines;
`truth` reads the same trace.

>>> trace = Trace(); trace.cell(0, ("api", None, "$LATEST")).invocations += 3
>>> trace.gauge(0, GaugeKey("AWS/Lambda", "ConcurrentExecutions", ())).add(4)
>>> trace.cells[0][("api", None, "$LATEST")].invocations, trace.gauges[0][GaugeKey("AWS/Lambda",
...     "ConcurrentExecutions", ())].maximum
(3, 4.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

WALLS = ("reserved_limit", "account_limit", "burst_limit")

CellKey = tuple[str, str | None, str]
WorkKey = tuple[str, float, float, float, float]


class GaugeKey(NamedTuple):
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]


@dataclass
class Cell:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    throttles: int = 0
    walls: dict[str, int] = field(default_factory=dict)
    pc_invocations: int = 0
    spillover: int = 0
    durations: dict[WorkKey, int] = field(default_factory=dict)

    def add_durations(self, key: WorkKey, count: int) -> None:
        if count > 0:
            self.durations[key] = self.durations.get(key, 0) + count

    def add_throttles(self, wall: str, count: int) -> None:
        if count > 0:
            self.throttles += count
            self.walls[wall] = self.walls.get(wall, 0) + count


@dataclass
class Gauge:
    """Samples of one minute (a value a second, or weighted values): CloudWatch's StatisticValues."""

    minimum: float = float("inf")
    maximum: float = float("-inf")
    total: float = 0.0
    samples: float = 0.0

    def add(self, value: float, weight: float = 1.0) -> None:
        if weight <= 0:
            return
        value = float(value)
        # min() and max() without their calls (many a second): the same choice, a tie keeps the old value
        if value < self.minimum:  # noqa: PLR1730 - see above
            self.minimum = value
        if value > self.maximum:  # noqa: PLR1730 - see above
            self.maximum = value
        self.total += value * weight
        self.samples += weight

    @property
    def average(self) -> float:
        return self.total / self.samples if self.samples else 0.0


@dataclass(frozen=True)
class ProvisionedMinute:
    """The PC of one alias at the end of a minute (what the truth reads: pinned at max, not ready...)."""

    requested: int
    allocated: int
    status: str
    bounds: tuple[int, int] | None


@dataclass
class Trace:
    cells: dict[int, dict[CellKey, Cell]] = field(default_factory=dict)
    gauges: dict[int, dict[GaugeKey, Gauge]] = field(default_factory=dict)
    counters: dict[int, dict[GaugeKey, float]] = field(default_factory=dict)
    provisioned: dict[int, dict[tuple[str, str], ProvisionedMinute]] = field(default_factory=dict)

    # The model calls these many times a second: no setdefault (it would build an empty dict at every call).
    def cell(self, minute: int, key: CellKey) -> Cell:
        cells = self.cells.get(minute)
        if cells is None:
            cells = self.cells[minute] = {}
        found = cells.get(key)
        if found is None:
            found = cells[key] = Cell()
        return found

    def gauges_of(self, minute: int) -> dict[GaugeKey, Gauge]:
        gauges = self.gauges.get(minute)
        if gauges is None:
            gauges = self.gauges[minute] = {}
        return gauges

    def gauge(self, minute: int, key: GaugeKey) -> Gauge:
        gauges = self.gauges_of(minute)
        found = gauges.get(key)
        if found is None:
            found = gauges[key] = Gauge()
        return found

    def count(self, minute: int, key: GaugeKey, value: float) -> None:
        counters = self.counters.get(minute)
        if counters is None:
            counters = self.counters[minute] = {}
        counters[key] = counters.get(key, 0.0) + value

    def minutes(self) -> list[int]:
        return sorted(set(self.cells) | set(self.gauges) | set(self.counters))
