"""Arrivals: the request-rate curve of a workload and its per-second counts (seeded Poisson draws).

`rate_at(spec, second)` is the curve (requests/s at a second counted from the window's start; before the window
the curve holds its value at 0). `ArrivalStream` draws the count of each second in order, deterministic for a
given spec and seed, whatever else the model does (each function has its own generator).

>>> spec = ArrivalsSpec(shape="step", base_rps=10, peak_rps=100, at_min=1, poisson=False)
>>> [rate_at(spec, s) for s in (0, 59, 60, 600)]
[10.0, 10.0, 100.0, 100.0]
"""

from __future__ import annotations

import math
import random

from medic_tools.world.workload.spec import ArrivalsSpec

_DEFAULT_RISE_S = {"ramp": 60.0, "spike": 5.0}
#: Above this mean a Poisson draw uses its normal approximation (error far below the noise it models).
_NORMAL_ABOVE = 50.0


def rate_at(spec: ArrivalsSpec, second: float) -> float:
    """The arrival rate (requests/s) `second` seconds after the window's start."""
    base = spec.base_rps
    peak = spec.peak_rps if spec.peak_rps is not None else base
    start = spec.at_min * 60
    t = max(0.0, second)
    if spec.shape == "flat":
        return float(base)
    if spec.shape == "step":
        return float(peak if t >= start else base)
    if spec.shape == "diurnal":
        phase = 2 * math.pi * (t - start) / (spec.period_min * 60)
        return base + (peak - base) * (1 + math.cos(phase)) / 2
    rise = spec.rise_s if spec.rise_s is not None else _DEFAULT_RISE_S[spec.shape]
    if t < start:
        return float(base)
    if spec.shape == "spike" and spec.hold_s is not None and t >= start + rise + spec.hold_s:
        return float(base)
    if rise <= 0 or t >= start + rise:
        return float(peak)
    return base + (peak - base) * (t - start) / rise


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's product method for small means, the normal approximation above 50)."""
    if mean <= 0:
        return 0
    if mean > _NORMAL_ABOVE:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    draw = rng.random  # the same draws, in the same order; bound once (a draw per arrival)
    count, product = 0, draw()
    while product > limit:
        count += 1
        product *= draw()
    return count


class ArrivalStream:
    """The counts of consecutive seconds for one function: `next(second)` must be called with increasing seconds.

    Without Poisson noise the fractional parts carry over, so that the counts add up to the curve's integral.
    """

    def __init__(self, spec: ArrivalsSpec, key: str) -> None:
        self.spec = spec
        self.rng = random.Random(f"arrivals:{spec.seed}:{key}")  # noqa: S311 - a seeded model, not secrets
        self._carry = 0.0

    def next(self, second: float) -> int:
        mean = rate_at(self.spec, second)
        if self.spec.poisson:
            return poisson(self.rng, mean)
        self._carry += mean
        count = math.floor(self._carry + 1e-9)
        self._carry -= count
        return count
