"""The physics of one invocation: CPU share from memory, memory pressure, duration noise, timeouts.

Assumptions (docs/WORKLOAD.md, "Durations"):

* "At 1,769 MB, a function has the equivalent of one vCPU"; CPU is proportional to memory, up to 6 vCPUs at
  10,240 MB (Lambda developer guide, "Configure Lambda function memory"). Code that keeps `parallelism` threads
  busy uses at most that many vCPUs: CPU time = cpu_ms / min(memory/1769, 6, parallelism).
* Memory pressure (ours; AWS documents none): up to 80% of the configured memory nothing changes; from 80% to 100%
  the runtime spends time collecting garbage and the work slows by 1 + 2·((used/memory − 0.8)/0.2)², ×3 at 100%.
  Above 100% the runtime is killed (Runtime.OutOfMemory): every invocation is an error.
* Each invocation's duration is its base value × a log-normal noise of median 1 (sigma `noise`), capped by the
  timeout: an invocation that would run past it is stopped there and is an error ("Task timed out").

>>> round(vcpu_share(1769), 3), round(vcpu_share(10240), 2), vcpu_share(128) < 0.1
(1.0, 5.79, True)
>>> pressure_factor(100, 512), pressure_factor(512, 512)
(1.0, 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

#: "At 1,769 MB, a function has the equivalent of one vCPU (one vCPU-second of credits per second)."
VCPU_MB = 1769
MAX_VCPUS = 6.0
PRESSURE_FROM = 0.8
_STANDARD = NormalDist()


def vcpu_share(memory_mb: int) -> float:
    """vCPUs a function gets at this memory size."""
    return min(MAX_VCPUS, memory_mb / VCPU_MB)


def pressure_factor(used_mb: float, memory_mb: int) -> float:
    """How much slower the work runs with `used_mb` of `memory_mb` in use (inf: out of memory)."""
    ratio = used_mb / memory_mb
    if ratio > 1:
        return math.inf
    if ratio <= PRESSURE_FROM:
        return 1.0
    return 1 + 2 * ((ratio - PRESSURE_FROM) / (1 - PRESSURE_FROM)) ** 2


@dataclass(frozen=True)
class Work:
    """One invocation's handler time (ms, median, before noise), by what it is made of.

    `kind` is what ran: "warm" (a reused on-demand environment), "cold" (the first run on a new on-demand
    environment, after its init phase), "pc" (a provisioned environment), "pc_first" (the first run on a
    provisioned environment: initialized ahead, but the handler's lazy setup still runs).
    """

    kind: str
    cpu: float
    io: float
    pressure: float
    first_run: float

    @cached_property  # read several times a second for the same (cached) work: computed once
    def total(self) -> float:
        return self.cpu + self.io + self.pressure + self.first_run

    def first(self, first_run_ms: float, kind: str) -> Work:
        return Work(kind, self.cpu, self.io, self.pressure, first_run_ms)

    def key(self) -> tuple[str, float, float, float, float]:
        return self._key

    @cached_property
    def _key(self) -> tuple[str, float, float, float, float]:
        return (self.kind, round(self.cpu, 1), round(self.io, 1), round(self.pressure, 1), round(self.first_run, 1))


def handler_work(cpu_ms: float, io_ms: float, parallelism: float, used_mb: float, memory_mb: int) -> Work:
    """A warm invocation's work at this memory size (the pressure part is the slowdown's extra time)."""
    cpu = cpu_ms / min(vcpu_share(memory_mb), parallelism) if cpu_ms else 0.0
    factor = pressure_factor(used_mb, memory_mb)
    extra = (cpu + io_ms) * (factor - 1) if math.isfinite(factor) else 0.0
    return Work("warm", cpu, io_ms, extra, 0.0)


def occupancy_now(ms: float) -> float:
    """Environment-seconds an invocation of `ms` takes in the second it starts."""
    return min(ms, 1000.0) / 1000.0


def fraction_above(median_ms: float, sigma: float, threshold_ms: float) -> float:
    """The share of invocations of this median that run longer than `threshold_ms`."""
    if median_ms <= 0:
        return 0.0
    if sigma <= 0:
        return 1.0 if median_ms > threshold_ms else 0.0
    if threshold_ms <= 0:
        return 1.0
    return 1 - _STANDARD.cdf(math.log(threshold_ms / median_ms) / sigma)


def noise_points(sigma: float, points: int) -> list[float]:
    """`points` multipliers at the middle of equal-probability slices of the log-normal noise (median 1)."""
    if sigma <= 0 or points <= 1:
        return [1.0]
    return [math.exp(sigma * _STANDARD.inv_cdf((i + 0.5) / points)) for i in range(points)]


def billed_ms(duration_ms: float, init_ms: float | None) -> int:
    """Billed Duration: the duration rounded up to the millisecond; a cold on-demand start bills its init phase too
    (AWS bills the INIT phase since 1 August 2025; its samples show durationMs 1233.96 + initDurationMs 463.512 →
    billedDurationMs 1698)."""
    return math.ceil(duration_ms + (init_ms or 0.0))
