"""A function's metric facts: which series a signal reads (its facts' fallback chains, and for throttles the
concurrency and throttles series of the ramp's shape, for p99 the Duration baseline), read in one `GetMetricData`
(none when the traffic's qualifier read them along), then resolved into facts (`chains`) and the throttles' shape.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from medic.aws import AwsClients
from medic.facts import chains
from medic.facts.model import BASELINE, METRIC_WINDOW, Facts
from medic.facts.series import Points, SeriesSpec, in_window, read_series, window

SHAPE_FACTS: Final = (
    "function_peak_concurrency",
    "concurrency_ramp_per_min",
    "ramp_start_minute_of_day",
    "throttled_minutes",
    "climbing_when_throttled",
)


def wanted(kind: str, name: str, qualifier: str | None) -> list[chains.Chain]:
    """The fallback chains of the signal's metric facts."""
    return chains.function_chains(kind, name, qualifier)


def metric_facts(kind: str, name: str, qualifier: str | None) -> tuple[str, ...]:
    """Every fact the signal's metrics fill (what a failed `GetMetricData` leaves unknown)."""
    return (
        *(chain.fact for chain in wanted(kind, name, qualifier)),
        *(SHAPE_FACTS if kind == "throttles" else ()),
        *(("duration_baseline_avg_ms",) if kind == "p99_latency" else ()),
    )


def extra(kind: str, name: str, qualifier: str | None) -> list[tuple[chains.Source, ...]]:
    """The series read beyond the chains: the throttles' shape, the p99's Duration baseline."""
    more: list[tuple[chains.Source, ...]] = []
    if kind == "throttles":
        more.append(chains.concurrency_series_sources(name))
        more.append((chains.Source((chains.throttles_series(name),), lambda _p, _f: None),))
    if kind == "p99_latency":
        more.append(chains.baseline_chain(name, qualifier).sources)
    return more


def lookback(kind: str) -> timedelta:
    return METRIC_WINDOW + BASELINE if kind == "p99_latency" else METRIC_WINDOW


def series_of(kind: str, name: str, qualifier: str | None) -> list[SeriesSpec]:
    """Every series the signal's chains and extras may read."""
    return chains.all_series(wanted(kind, name, qualifier), *extra(kind, name, qualifier))


def read_metrics(
    clients: AwsClients, kind: str, name: str, qualifier: str | None, now: datetime, read: dict[SeriesSpec, Points]
) -> None:
    """One GetMetricData for every series the chains may read (none when the traffic split read them along)."""
    missing = [spec for spec in series_of(kind, name, qualifier) if spec not in read]
    if missing:
        read.update(read_series(clients, missing, now, lookback(kind)))


def resolve_metrics(
    facts: Facts, kind: str, name: str, qualifier: str | None, now: datetime, read: dict[SeriesSpec, Points]
) -> None:
    """The metric facts from the series read: each chain's first source with datapoints, and the throttles' shape."""
    chains.resolve(wanted(kind, name, qualifier), read, facts, now)
    if kind == "p99_latency":
        chains.resolve([chains.baseline_chain(name, qualifier)], read, facts, now, baseline=True)
    if kind != "throttles":
        return
    for source in chains.concurrency_series_sources(name):
        parts = [in_window(read.get(spec, []), now) for spec in source.series]
        series = parts[0] if len(parts) == 1 else chains.littles_law_series(parts[0], parts[1])
        if series:
            break
    else:
        tried = "; ".join(source.describe() for source in chains.concurrency_series_sources(name))
        for fact in SHAPE_FACTS:
            facts.missing[fact] = f"no datapoints in the last {window()} for {tried}"
        return
    throttles = in_window(read.get(chains.throttles_series(name), []), now)
    shape = chains.throttle_shape(series, throttles)
    facts.function_peak_concurrency = shape.peak
    facts.concurrency_ramp_per_min = shape.ramp_per_min
    facts.ramp_start_minute_of_day = shape.ramp_start_minute_of_day
    facts.throttled_minutes = shape.throttled_minutes
    facts.climbing_when_throttled = shape.climbing_when_throttled
    described = f"{chains.PREFIX} {source.describe()}"
    for fact in SHAPE_FACTS:
        facts.sources[fact] = described
    facts.sources["throttled_minutes"] = facts.sources["climbing_when_throttled"] = (
        f"{described} against {chains.throttles_series(name).describe()}"
    )
    if shape.ramp_start_minute_of_day is None:
        facts.missing["ramp_start_minute_of_day"] = "the function's concurrency did not climb in the window"
    if shape.climbing_when_throttled is None:
        facts.missing["climbing_when_throttled"] = f"no throttled minute in the last {window()}"
