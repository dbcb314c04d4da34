"""Execution environments over time: busy time carried across seconds, the warm pool, the scaling-rate bucket and
provisioned concurrency (with Application Auto Scaling's target tracking and scheduled actions).

>>> busy = Occupancy(); busy.schedule(0, count=2, duration_ms=2500)
>>> [busy.advance(t) for t in (1, 2, 3)]
[2.0, 1.0, 0.0]
>>> window = WarmPool(keep_s=3); [window.record(t, b) for t, b in enumerate([4, 1, 0, 0, 0])]
[None, None, None, None, None]
>>> window.size(3), window.size(4), window.size(5)
(4, 1, 0)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from medic_tools.world.workload.config import Autoscaling, ProvisionedConcurrency

#: "Lambda can allocate at most 1,000 additional execution environment instances" per function "every 10
#: seconds", refilled continuously, never accumulating past 1,000 (Lambda developer guide, "Lambda scaling behavior").
SCALING_BURST = 1000.0
SCALING_REFILL_PER_S = 100.0
SECONDS_PER_DAY = 86_400


class Occupancy:
    """Busy environment-seconds that invocations started earlier still take in later seconds."""

    def __init__(self) -> None:
        self._full_delta: dict[int, float] = {}
        self._fraction: dict[int, float] = {}
        self._running = 0.0
        self._last: int | None = None

    def schedule(self, start: int, count: float, duration_ms: float) -> None:
        """`count` invocations of `duration_ms` start at second `start`: the busy time past that first second."""
        rest = duration_ms - 1000.0
        if count <= 0 or rest <= 0:
            return
        if self._last is None:
            self._last = start
        full, remainder = divmod(rest, 1000.0)
        if full:
            self._full_delta[start + 1] = self._full_delta.get(start + 1, 0.0) + count
            end = start + 1 + int(full)
            self._full_delta[end] = self._full_delta.get(end, 0.0) - count
        at = start + 1 + int(full)
        if remainder:
            self._fraction[at] = self._fraction.get(at, 0.0) + count * remainder / 1000.0

    def advance(self, second: int) -> float:
        """The busy environment-seconds scheduled for `second` (seconds are read in increasing order)."""
        first = second if self._last is None else self._last + 1
        for skipped in range(first, second):
            self._running += self._full_delta.pop(skipped, 0.0)
            self._fraction.pop(skipped, None)
        self._last = second
        self._running += self._full_delta.pop(second, 0.0)
        return max(0.0, self._running) + self._fraction.pop(second, 0.0)


class WarmPool:
    """The environments of one version: an environment idle for `keep_s` seconds is reclaimed, so the pool holds
    as many as were busy at once over the last `keep_s` seconds (the keep-alive is ours: AWS documents none)."""

    def __init__(self, keep_s: int) -> None:
        self.keep_s = keep_s
        self._peaks: deque[tuple[int, int]] = deque()

    def record(self, second: int, busy: int) -> None:
        while self._peaks and self._peaks[-1][1] <= busy:
            self._peaks.pop()
        self._peaks.append((second, busy))

    def size(self, second: int) -> int:
        """Environments that exist at the start of `second` (from the seconds before it)."""
        while self._peaks and self._peaks[0][0] < second - self.keep_s:
            self._peaks.popleft()
        return self._peaks[0][1] if self._peaks else 0


class ScalingBucket:
    """The function's concurrency scaling rate: new environments take tokens from a bucket of 1,000."""

    def __init__(self, limitless: bool = False) -> None:
        self.tokens = SCALING_BURST
        self.limitless = limitless

    def refill(self) -> None:
        self.tokens = min(SCALING_BURST, self.tokens + SCALING_REFILL_PER_S)

    def available(self) -> int:
        return 10**9 if self.limitless else math.floor(self.tokens)

    def take(self, count: int) -> None:
        self.tokens -= count


@dataclass
class ProvisionedPool:
    """Provisioned concurrency on one alias: allocated environments, pending allocations, target tracking."""

    requested: int
    allocated: int
    status: str
    autoscaling: Autoscaling | None
    allocation_s: int
    scale_out_periods: int
    scale_in_periods: int
    version: str
    touched: int = 0
    busy_now: float = 0.0
    utilization_sum: float = 0.0
    seconds: int = 0
    above: int = 0
    below: int = 0
    ready_at: int | None = None
    bounds: tuple[int, int] | None = None
    occupancy: Occupancy = field(default_factory=Occupancy)

    @classmethod
    def start(cls, pc: ProvisionedConcurrency, version: str, allocation_s: int, out: int, in_: int) -> ProvisionedPool:
        bounds = (pc.autoscaling.min, pc.autoscaling.max) if pc.autoscaling else None
        pool = cls(
            pc.requested, pc.allocated, pc.status, pc.autoscaling, allocation_s, out, in_, version, bounds=bounds
        )
        if pc.status == "IN_PROGRESS":
            pool.ready_at = None  # stuck: it stays partially allocated over the modelled time
        return pool

    def reconfigure(self, pc: ProvisionedConcurrency | None, version: str, second: int) -> None:
        """The live configuration changed (an action ran): follow what the world says, as Lambda would."""
        if pc is None:
            self.requested = self.allocated = self.touched = 0
            self.autoscaling, self.bounds, self.ready_at = None, None, None
            return
        self.autoscaling = pc.autoscaling
        self.bounds = (pc.autoscaling.min, pc.autoscaling.max) if pc.autoscaling else None
        if version != self.version:  # the alias moved: the new version's environments are provisioned anew
            self.version, self.allocated, self.touched = version, 0, 0
        if pc.status in ("FAILED", "IN_PROGRESS"):  # stuck (or failed) where the world says it is
            self.status, self.requested, self.ready_at = pc.status, pc.requested, None
            self.allocated = min(self.allocated, pc.allocated) if version == self.version else pc.allocated
            self.touched = min(self.touched, self.allocated)
            return
        self.status = "READY"
        self._request(pc.requested, second)

    def _request(self, value: int, second: int) -> None:
        if self.status == "FAILED":
            return
        if value > self.allocated:
            self.requested, self.status, self.ready_at = value, "IN_PROGRESS", second + self.allocation_s
        elif value < self.allocated:
            self.requested = self.allocated = value
            self.touched = min(self.touched, value)
            self.status, self.ready_at = "READY", None
        else:
            self.requested = value

    def tick(self, second: int, time_of_day_s: int) -> None:
        """Before serving `second`: finish an allocation, run scheduled actions and target tracking."""
        if self.ready_at is not None and second >= self.ready_at:
            self.allocated, self.status, self.ready_at = self.requested, "READY", None
        if self.autoscaling is None or self.status == "FAILED":
            return
        for action in self.autoscaling.scheduled:
            if action.at_s % SECONDS_PER_DAY == time_of_day_s % SECONDS_PER_DAY:
                high = action.max if action.max is not None else max(action.min, self.autoscaling.max)
                self.bounds = (action.min, high)
                self._request(min(max(self.requested, action.min), high), second)
        if second % 60 == 0 and self.seconds:
            self._track(second)

    def _track(self, second: int) -> None:
        utilization = self.utilization_sum / self.seconds  # the minute's Average, as target tracking reads it
        self.utilization_sum, self.seconds = 0.0, 0
        assert self.autoscaling is not None and self.bounds is not None
        low, high = self.bounds
        target = self.autoscaling.target
        self.above = self.above + 1 if utilization > target else 0
        self.below = self.below + 1 if utilization < 0.9 * target else 0
        desired = math.ceil(self.allocated * utilization / target) if self.allocated else low
        if self.above >= self.scale_out_periods and self.ready_at is None:
            self.above = 0
            if min(max(desired, low), high) > self.requested:
                self._request(min(max(desired, low), high), second)
        elif self.below >= self.scale_in_periods:
            self.below = 0
            if max(desired, low) < self.requested:
                self._request(max(desired, low), second)

    def record(self, busy: float) -> None:
        self.utilization_sum += busy / self.allocated if self.allocated else 0.0
        self.seconds += 1
