"""Fallback chains: each metric fact from the first of its sources that has datapoints, the source recorded.

Real accounts do not all publish the series Medic would read first: an alias may have no ``Resource`` series for a
metric, a function is invoked unqualified, an account-level aggregate is missing. So a metric fact is a *chain* of
sources, tried in order (docs/RUNBOOK.md, "Fallback chains"). For the peak concurrency of ``checkout:live``:

1. ``ConcurrentExecutions`` Maximum at ``{FunctionName, Resource=checkout:live}`` — the alias's own;
2. the function-level series ``{FunctionName}`` — every qualifier together: an upper bound for the alias;
3. Little's law from ``Invocations`` Sum and ``Duration`` Average (the alias's, then the function's): the average
   concurrency of the busiest minute (in-flight requests = arrival rate × time in flight);
4. ``ProvisionedConcurrencyUtilization`` Maximum × the allocated provisioned concurrency.

The fact's source names the one used; when none has datapoints the fact is unknown and `missing` names every series
that was empty. Counts that Lambda publishes only when they are not zero (Throttles, spillover) are 0 without
datapoints, and the source says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from medic.facts.model import METRIC_PERIOD_S, Facts
from medic.facts.series import Points, SeriesSpec, in_window, window

#: How a source turns its series (in the window; the facts known so far) into a value: None when it has no data.
Combine = Callable[[Sequence[Points], Facts], float | None]


@dataclass(frozen=True)
class Source:
    """One way to know a fact: the series it reads and how they make the value."""

    series: tuple[SeriesSpec, ...]
    combine: Combine
    note: str = ""  # what the value means when it is not the fact itself (an upper bound, an average…)

    def describe(self) -> str:
        text = " × ".join(spec.describe() for spec in self.series)
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class Chain:
    fact: str
    sources: tuple[Source, ...]
    zero_when_empty: bool = False  # a count Lambda publishes only when it is not zero


def _total(points: Sequence[Points], _: Facts) -> float | None:
    return sum(value for _, value in points[0]) if points[0] else None


def _peak(points: Sequence[Points], _: Facts) -> float | None:
    return max(value for _, value in points[0]) if points[0] else None


def littles_law_series(invocations: Points, duration_avg_ms: Points) -> Points:
    """Per minute, the average concurrency: invocations per second × seconds each one runs (Little's law)."""
    durations = dict(duration_avg_ms)
    return [(t, count / METRIC_PERIOD_S * durations[t] / 1000) for t, count in invocations if t in durations]


def _littles_peak(points: Sequence[Points], _: Facts) -> float | None:
    series = littles_law_series(points[0], points[1])
    return max(value for _, value in series) if series else None


def _rate_peak(points: Sequence[Points], _: Facts) -> float | None:
    """Requests a second in the busiest minute: the ones served and the ones refused (a missing minute of Throttles
    is 0: Lambda publishes it only when not 0)."""
    if not points[0]:
        return None
    refused = dict(points[1])
    return max((count + refused.get(t, 0.0)) / METRIC_PERIOD_S for t, count in points[0])


def _asked_peak(points: Sequence[Points], _: Facts) -> float | None:
    """The concurrency the function was asked for (served and refused): at a cap its own concurrency cannot show
    more than the cap; the requests refused, each for as long as the served ones ran, can."""
    if not points[0]:
        return None
    refused, durations = dict(points[1]), dict(points[2])
    asked = [
        (count + refused.get(t, 0.0)) / METRIC_PERIOD_S * durations[t] / 1000
        for t, count in points[0]
        if t in durations
    ]
    return max(asked) if asked else None


def _times_allocated(points: Sequence[Points], facts: Facts) -> float | None:
    if not points[0] or not facts.pc_allocated:
        return None
    return max(value for _, value in points[0]) * facts.pc_allocated


def _over_allocated(points: Sequence[Points], facts: Facts) -> float | None:
    if not points[0] or not facts.pc_allocated:
        return None
    return max(value for _, value in points[0]) / facts.pc_allocated


def _average(points: Sequence[Points], _: Facts) -> float | None:
    return sum(value for _, value in points[0]) / len(points[0]) if points[0] else None


def function_chains(kind: str, name: str, qualifier: str | None) -> list[Chain]:
    """The chains of a function's metric facts for a signal `kind` (a qualified target reads its alias first)."""
    qualified = bool(qualifier and qualifier != "$LATEST")
    fn = {"FunctionName": name}
    res = {"FunctionName": name, "Resource": f"{name}:{qualifier}"} if qualified else fn
    whole = f"function-level, every qualifier: an upper bound for {name}:{qualifier}" if qualified else ""

    def metric(metric_name: str, stat: str, dims: dict[str, str]) -> SeriesSpec:
        return SeriesSpec.lambda_(metric_name, stat, **dims)

    def narrow_then_wide(metric_name: str, stat: str, combine: Combine) -> tuple[Source, ...]:
        first = Source((metric(metric_name, stat, res),), combine)
        return (first, Source((metric(metric_name, stat, fn),), combine, whole)) if qualified else (first,)

    little = "Little's law: invocations/s × Duration, the busiest minute's average concurrency"
    peak_sources = [
        *narrow_then_wide("ConcurrentExecutions", "Maximum", _peak),
        Source((metric("Invocations", "Sum", res), metric("Duration", "Average", res)), _littles_peak, little),
    ]
    if qualified:
        peak_sources += [
            Source(
                (metric("Invocations", "Sum", fn), metric("Duration", "Average", fn)),
                _littles_peak,
                little + ", every qualifier",
            ),
            Source(
                (metric("ProvisionedConcurrencyUtilization", "Maximum", res),),
                _times_allocated,
                "× pc_allocated: the busiest share of the provisioned pool",
            ),
        ]
    chains = [
        Chain("invocations", narrow_then_wide("Invocations", "Sum", _total), zero_when_empty=True),
        Chain(
            "throttles",
            (
                Source((metric("Throttles", "Sum", fn),), _total),
                *((Source((metric("Throttles", "Sum", res),), _total),) if qualified else ()),
            ),
            zero_when_empty=True,
        ),
        Chain("peak_concurrency", tuple(peak_sources)),
    ]
    if qualified:
        chains += [
            Chain(
                "spillover_invocations",
                narrow_then_wide("ProvisionedConcurrencySpilloverInvocations", "Sum", _total),
                zero_when_empty=True,
            ),
            Chain(
                "spillover_peak",
                narrow_then_wide("ProvisionedConcurrencySpilloverInvocations", "Sum", _peak),
                zero_when_empty=True,
            ),
            Chain(
                "pc_utilization_max",
                (
                    Source((metric("ProvisionedConcurrencyUtilization", "Maximum", res),), _peak),
                    Source(
                        (metric("ProvisionedConcurrentExecutions", "Maximum", res),), _over_allocated, "÷ pc_allocated"
                    ),
                ),
                zero_when_empty=True,
            ),
        ]
    demand = "Little's law: invocations/s × Duration Average (no init), the busiest minute"
    busy = "environments busy initializing included: an upper bound of the warm demand"
    chains.append(
        Chain(
            "demand_concurrency_peak",
            (
                Source((metric("Invocations", "Sum", res), metric("Duration", "Average", res)), _littles_peak, demand),
                *(
                    (
                        Source(
                            (metric("Invocations", "Sum", fn), metric("Duration", "Average", fn)),
                            _littles_peak,
                            demand + ", every qualifier",
                        ),
                    )
                    if qualified
                    else ()
                ),
                Source((metric("ConcurrentExecutions", "Maximum", res),), _peak, busy),
            ),
        )
    )
    if kind == "throttles":
        asked = (
            "Little's law on what was asked: (Invocations + Throttles) / 60 s × Duration Average, the busiest minute"
        )
        chains += [
            Chain(
                "asked_concurrency_peak",
                (
                    Source(
                        (
                            metric("Invocations", "Sum", fn),
                            metric("Throttles", "Sum", fn),
                            metric("Duration", "Average", fn),
                        ),
                        _asked_peak,
                        asked,
                    ),
                ),
            ),
            Chain(
                "request_rate_peak",
                (
                    Source(
                        (metric("Invocations", "Sum", fn), metric("Throttles", "Sum", fn)),
                        _rate_peak,
                        "(Invocations + Throttles) / 60 s, the busiest minute",
                    ),
                ),
            ),
        ]
    if kind in ("throttles", "p99_latency"):  # the metric exists only for events queued for asynchronous invocation
        chains.append(
            Chain(
                "async_events_received",
                (Source((metric("AsyncEventsReceived", "Sum", fn),), _total),),
                zero_when_empty=True,
            )
        )
    chains += account_chains()
    if kind == "p99_latency":
        chains.append(Chain("duration_avg_ms", narrow_then_wide("Duration", "Average", _average)))
    return chains


def account_chains() -> list[Chain]:
    """The account's concurrency: every signal reads it (the guardrails keep what other functions use unreserved)."""
    rate = "(Invocations + Throttles) / 60 s, every function, the busiest minute"
    return [
        Chain("account_concurrency_peak", (Source((SeriesSpec.lambda_("ConcurrentExecutions", "Maximum"),), _peak),)),
        Chain(
            "account_request_rate_peak",
            (
                Source(
                    (SeriesSpec.lambda_("Invocations", "Sum"), SeriesSpec.lambda_("Throttles", "Sum")), _rate_peak, rate
                ),
            ),
        ),
        Chain(
            "account_claimed_concurrency_peak",
            (Source((SeriesSpec.lambda_("ClaimedAccountConcurrency", "Maximum"),), _peak),),
        ),
        Chain(
            "unreserved_concurrency_peak",
            (Source((SeriesSpec.lambda_("UnreservedConcurrentExecutions", "Maximum"),), _peak),),
        ),
    ]


def baseline_chain(name: str, qualifier: str | None) -> Chain:
    """Duration Average before the window (the series of `duration_avg_ms`, read further back)."""
    qualified = bool(qualifier and qualifier != "$LATEST")
    fn = {"FunctionName": name}
    res = {"FunctionName": name, "Resource": f"{name}:{qualifier}"} if qualified else fn
    sources = [Source((SeriesSpec.lambda_("Duration", "Average", **res),), _average)]
    if qualified:
        sources.append(Source((SeriesSpec.lambda_("Duration", "Average", **fn),), _average, "function-level"))
    return Chain("duration_baseline_avg_ms", tuple(sources))


def concurrency_series_sources(name: str) -> tuple[Source, ...]:
    """Where the function's concurrency minute by minute comes from (the throttles table's shape facts)."""
    fn = {"FunctionName": name}
    return (
        Source((SeriesSpec.lambda_("ConcurrentExecutions", "Maximum", **fn),), _peak),
        Source(
            (SeriesSpec.lambda_("Invocations", "Sum", **fn), SeriesSpec.lambda_("Duration", "Average", **fn)),
            _littles_peak,
            "Little's law: invocations/s × Duration, each minute's average concurrency",
        ),
    )


def throttles_series(name: str) -> SeriesSpec:
    return SeriesSpec.lambda_("Throttles", "Sum", FunctionName=name)


def all_series(chains: Sequence[Chain], *extra: Sequence[Source]) -> list[SeriesSpec]:
    """Every series the chains (and extra sources) may read, once each."""
    specs = [spec for chain in chains for source in chain.sources for spec in source.series]
    specs += [spec for sources in extra for source in sources for spec in source.series]
    return list(dict.fromkeys(specs))


PREFIX: Final = f"cloudwatch:GetMetricData [{window()}]"


def resolve(
    chains: Sequence[Chain], read: dict[SeriesSpec, Points], facts: Facts, now: datetime, *, baseline: bool = False
) -> None:
    """Set each chain's fact from its first source with data (in the window; before it for a baseline)."""
    for chain in chains:
        for source in chain.sources:
            points = [_part(read.get(spec, []), now, baseline) for spec in source.series]
            value = source.combine(points, facts)
            if value is not None:
                setattr(facts, chain.fact, value)
                facts.sources[chain.fact] = f"{PREFIX} {source.describe()}" + (" before the window" if baseline else "")
                facts.missing.pop(chain.fact, None)
                break
        else:
            tried = "; ".join(source.describe() for source in chain.sources)
            if chain.zero_when_empty:
                setattr(facts, chain.fact, 0.0)
                facts.sources[chain.fact] = f"{PREFIX} {tried}: no datapoints, and Lambda publishes it only when not 0"
            else:
                when = "before the window" if baseline else f"in the last {window()}"
                facts.missing[chain.fact] = f"no datapoints {when} for {tried}"


def _part(points: Points, now: datetime, baseline: bool) -> Points:
    inside = in_window(points, now)
    if not baseline:
        return inside
    return points[: len(points) - len(inside)]


@dataclass(frozen=True)
class ThrottleShape:
    """The function's concurrency minute by minute against its throttles."""

    peak: float
    ramp_per_min: float
    ramp_start_minute_of_day: float | None
    throttled_minutes: int
    climbing_when_throttled: bool | None


def throttle_shape(concurrency: Points, throttles: Points) -> ThrottleShape:
    """Peak, the steepest one-minute climb and when it began, and whether the throttles came while it climbed.

    "Climbing" weighs each throttled minute by its throttles: the minute counts as climbing when the function ran more
    concurrent executions than in the minute before (no datapoint before: it ran none). Throttles that come while
    concurrency still rises, below every limit, are the scaling rate's (Lambda adds at most 1,000 execution
    environments every 10 s per function); throttles at a flat plateau are a cap's.
    """
    peak = max(value for _, value in concurrency)
    steps = [(later[1] - earlier[1], earlier[0]) for earlier, later in itertools.pairwise(concurrency)]
    climb, began = max(steps, default=(0.0, concurrency[0][0]), key=lambda step: step[0])
    by_minute = dict(concurrency)
    throttled = [(t, count) for t, count in throttles if count > 0]
    rising = 0.0
    for moment, count in throttled:
        before = by_minute.get(_minute_before(moment), 0.0)
        if by_minute.get(moment, before) > before:
            rising += count
    total = sum(count for _, count in throttled)
    return ThrottleShape(
        peak=peak,
        ramp_per_min=max(0.0, climb) * (60 / METRIC_PERIOD_S),
        ramp_start_minute_of_day=float(began.hour * 60 + began.minute) if climb > 0 else None,
        throttled_minutes=len(throttled),
        climbing_when_throttled=(rising / total >= 0.5) if total else None,
    )


def _minute_before(moment: datetime) -> datetime:
    from datetime import timedelta

    return moment - timedelta(seconds=METRIC_PERIOD_S)
