"""Facts derived from others, without a call: the alarm's own value and threshold (from the event), utilizations,
the unreserved pool's headroom, the Duration's change against its baseline, the invocation type, and the upper bounds
that stand in for a metric with no datapoints. Each derivation reads only the facts it names, so it can run once
they are known (`derive` runs them all, in order, once every reader has answered).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from medic.alarms.events import AlarmStateChangeEvent
from medic.facts.invokers import INVOCATION_TYPES, invocation_type
from medic.facts.model import INVOCATION_TAG, Facts


def alarm_facts(facts: Facts, event: AlarmStateChangeEvent) -> None:
    """The alarm's own value and threshold, from the event (free). An anomaly band's threshold is its upper edge."""
    data = event.detail.state.reason_data
    if data is None:
        return
    if data.recent_datapoints:
        facts.alarm_value = float(data.recent_datapoints[-1])
        facts.sources["alarm_value"] = "event:state.reasonData.recentDatapoints"
    if data.threshold is not None:
        facts.alarm_threshold = float(data.threshold)
        facts.sources["alarm_threshold"] = "event:state.reasonData.threshold"
    elif data.recent_upper_thresholds:
        facts.alarm_threshold = float(data.recent_upper_thresholds[-1])
        facts.sources["alarm_threshold"] = "event:state.reasonData.recentUpperThresholds (the anomaly band's edge)"


def _ratio(name: str, numerator: str, denominator: str) -> Callable[[Facts], None]:
    """The derivation of fact `name` as `numerator / denominator`, once both facts are known (a zero or missing
    denominator derives nothing); its source names both."""

    def derivation(facts: Facts) -> None:
        top, bottom = getattr(facts, numerator), getattr(facts, denominator)
        if top is not None and bottom:
            setattr(facts, name, top / bottom)
            facts.sources[name] = f"{numerator} / {denominator}"

    derivation.__name__ = derivation.__qualname__ = name
    return derivation


account_utilization = _ratio("account_utilization", "account_concurrency_peak", "account_limit")
claimed_utilization = _ratio("claimed_utilization", "account_claimed_concurrency_peak", "account_limit")
reserved_utilization = _ratio("reserved_utilization", "function_peak_concurrency", "reserved_concurrency")
unreserved_pool_utilization = _ratio(
    "unreserved_pool_utilization", "unreserved_concurrency_peak", "unreserved_concurrency"
)
duration_change_ratio = _ratio("duration_change_ratio", "duration_avg_ms", "duration_baseline_avg_ms")


def unreserved_peak_bound(facts: Facts) -> None:
    """Without the account's UnreservedConcurrentExecutions: everything that ran, less this function when it runs on
    its own reservation — an upper bound of what the functions without one used."""
    everything = facts.account_concurrency_peak
    if facts.unreserved_concurrency_peak is None and everything is not None:
        peak = facts.function_peak_concurrency
        own = (peak or 0.0) if facts.has_reserved_concurrency else 0.0
        facts.unreserved_concurrency_peak = max(0.0, everything - own)
        facts.sources["unreserved_concurrency_peak"] = (
            "account_concurrency_peak"
            + (" − function_peak_concurrency" if own else "")
            + " (UnreservedConcurrentExecutions had no datapoints): an upper bound"
        )
        facts.missing.pop("unreserved_concurrency_peak", None)


def unreserved_headroom(facts: Facts) -> None:
    """What a raise (a reservation, or PC on a function without one) could take without squeezing the others: the
    pool, less this function's own PC when it draws from the pool, less what the others use at peak (at least the
    minimum AWS keeps)."""
    if facts.unreserved_concurrency is not None and facts.unreserved_concurrency_peak is not None:
        peak = facts.function_peak_concurrency
        unreserved = not facts.has_reserved_concurrency
        own_use = (peak if peak is not None else facts.peak_concurrency or 0.0) if unreserved else 0.0
        own_pc = (facts.pc_requested or 0) + (facts.pc_on_other_qualifiers or 0) if unreserved else 0
        others = max(0.0, facts.unreserved_concurrency_peak - own_use)
        keep = max(float(facts.minimum_unreserved or 100), others)
        facts.unreserved_headroom = max(0.0, facts.unreserved_concurrency - own_pc - keep)
        facts.sources["unreserved_headroom"] = (
            "unreserved_concurrency − the function's own PC (no reservation) − max(minimum_unreserved, what the "
            "other functions without a reservation use at peak)"
        )


def invocation(facts: Facts) -> None:
    """The invocation type, once both who-invokes readers (mappings and policies) answered."""
    if "async_sources" not in facts.missing and "event_sources" not in facts.missing:
        facts.invocation_type = invocation_type(facts)
        facts.sources["invocation_type"] = (
            f"tag {INVOCATION_TAG}"
            if (facts.tags or {}).get(INVOCATION_TAG) in INVOCATION_TYPES
            else "event source mappings + resource-based policy + AsyncEventsReceived"
        )


def demand_bound(facts: Facts) -> None:
    if facts.demand_concurrency_peak is None and facts.peak_concurrency is not None:
        facts.demand_concurrency_peak = facts.peak_concurrency
        facts.sources["demand_concurrency_peak"] = "peak_concurrency (no Invocations × Duration): an upper bound"
        facts.missing.pop("demand_concurrency_peak", None)


def memory_ratio(facts: Facts) -> None:
    if facts.max_memory_used_mb is not None and facts.memory_mb and facts.memory_used_ratio is None:
        facts.memory_used_ratio = facts.max_memory_used_mb / facts.memory_mb


#: Each derivation, in the order `derive` runs them.
DERIVATIONS: Final[tuple[Callable[[Facts], None], ...]] = (
    account_utilization,
    claimed_utilization,
    reserved_utilization,
    unreserved_peak_bound,
    unreserved_headroom,
    unreserved_pool_utilization,
    duration_change_ratio,
    invocation,
    demand_bound,
    memory_ratio,
)


def derive(facts: Facts, kind: str) -> None:
    """Every derivation, once the readers have answered (the invocation type for throttles and p99 only)."""
    for derivation in DERIVATIONS:
        if derivation is not invocation or kind in ("throttles", "p99_latency"):
            derivation(facts)


#: The derived facts, each with its derivation (the upper bounds excepted: they stand in for a metric fact, and run
#: with the metrics).
DERIVED: Final[dict[str, Callable[[Facts], None]]] = {
    "account_utilization": account_utilization,
    "claimed_utilization": claimed_utilization,
    "reserved_utilization": reserved_utilization,
    "unreserved_headroom": unreserved_headroom,
    "unreserved_pool_utilization": unreserved_pool_utilization,
    "duration_change_ratio": duration_change_ratio,
    "invocation_type": invocation,
}
