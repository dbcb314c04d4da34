"""The concurrency budget toward a database, split over the functions that use it (its consumers).

A `db_connections` plan caps the concurrency toward the database: the runbook gives `set_reserved_concurrency` and
`set_event_source_max_concurrency` the same TOTAL budget, and :func:`split_budget` divides it. Only the consumers
opted in to changes by tag (``ConsumerFacts.managed``) are capped. A consumer that is not opted in is left as it
is: what it can run now — its peak concurrency, or its reserved concurrency or its SQS mappings' MaximumConcurrency
when lower — is counted as already spent, the opted-in consumers share the rest (:func:`consumer_shares`), and an
`advise` line names the cap the consumer should get (its share of the whole budget, as if it were opted in).

>>> from medic.facts import ConsumerFacts
>>> split = split_budget(280, [ConsumerFacts(function_name="api", managed=True, peak_concurrency=300),
...                            ConsumerFacts(function_name="legacy", peak_concurrency=100)])
>>> split.shares, split.spent, split.suggested
({'api': 180}, {'legacy': 100}, {'legacy': 70})
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from medic.actions.base import PlannedAction
from medic.errors import GuardrailRefused

if TYPE_CHECKING:
    from medic.alarms.signals import Target
    from medic.facts import ConsumerFacts, Facts

#: AWS's minimum of ScalingConfig.MaximumConcurrency on an SQS event source mapping.
ESM_MIN_CONCURRENCY: Final = 2


def consumer_minimum(consumer: ConsumerFacts) -> int:
    """The smallest share a consumer can get: 1 execution, or 2 per SQS mapping (MaximumConcurrency's minimum)."""
    mappings = len(consumer.sqs_sources)
    return ESM_MIN_CONCURRENCY * mappings if mappings else 1


def consumer_shares(budget: int, consumers: list[ConsumerFacts]) -> dict[str, int]:
    """Split a concurrency `budget` toward a database over its consumers (function name → share).

    Shares are proportional to each consumer's peak concurrency (an equal split when any peak is unknown or all are
    zero), rounded down, and at least :func:`consumer_minimum` (1, or 2 per SQS mapping). A consumer whose
    proportional share falls below its minimum gets the minimum, and the rest of the budget is split over the others
    again, so the shares add up to at most `budget` whenever the budget covers the minimums. Finally a share never
    raises an existing reserved cap: it is ``min(share, reserved_concurrency)`` when the consumer has one.

    >>> from medic.facts import ConsumerFacts, EventSourceFacts
    >>> queue = EventSourceFacts(uuid="u1", source_arn="arn:aws:sqs:us-east-1:123456789012:orders", kind="sqs")
    >>> consumer_shares(280, [
    ...     ConsumerFacts(function_name="api", peak_concurrency=300),
    ...     ConsumerFacts(function_name="worker", peak_concurrency=100, event_sources=[queue]),
    ...     ConsumerFacts(function_name="report", peak_concurrency=1, reserved_concurrency=5),
    ... ])
    {'api': 209, 'worker': 69, 'report': 1}
    """
    if not consumers:
        return {}
    minimum = {c.function_name: consumer_minimum(c) for c in consumers}
    peaks = [c.peak_concurrency for c in consumers]
    proportional = all(peak is not None for peak in peaks) and sum(peak or 0.0 for peak in peaks) > 0
    weight = {c.function_name: float(c.peak_concurrency or 0.0) if proportional else 1.0 for c in consumers}
    fixed: dict[str, int] = {}
    free = [c.function_name for c in consumers]
    raw: dict[str, float] = {}
    while free:
        rest = budget - sum(fixed.values())
        total = sum(weight[name] for name in free)
        # rest × (a fraction ≤ 1): never overflows, whatever the budget (rest × weight could reach infinity)
        raw = {name: rest * (weight[name] / total) if total > 0 else 0.0 for name in free}
        below = [name for name in free if raw[name] < minimum[name]]
        if not below:
            break
        fixed.update((name, minimum[name]) for name in below)
        free = [name for name in free if name not in fixed]
    shares = {**{name: math.floor(raw[name] + 1e-9) for name in free}, **fixed}
    for consumer in consumers:
        if consumer.reserved_concurrency is not None:
            shares[consumer.function_name] = min(shares[consumer.function_name], consumer.reserved_concurrency)
    return {c.function_name: shares[c.function_name] for c in consumers}


def database_consumers(target: Target, facts: Facts, kind: str) -> list[ConsumerFacts]:
    """The consumers of the target database, or a refusal: an unknown or empty set never means "all"."""
    if facts.consumers is None:
        raise GuardrailRefused(
            "target",
            "the database's consumers",
            "unknown",
            f"{kind}: the consumers of "
            f"{target.db_instance_id} could not be read ({facts.missing.get('consumers', '?')})",
        )
    if not facts.consumers:
        raise GuardrailRefused(
            "target",
            "at least one consumer",
            0,
            f"{kind}: no function is tagged as a consumer of {target.db_instance_id}",
        )
    return facts.consumers


def budget_note(budget: int, consumers: list[ConsumerFacts]) -> str:
    """A warning when `budget` cannot cover the consumers' minimums ("" when it can)."""
    needed = sum(consumer_minimum(c) for c in consumers)
    if needed <= budget:
        return ""
    return (
        f" The budget {budget} is below the consumers' minimums ({needed}: 1 execution each, 2 per SQS "
        f"mapping), so together they may exceed it."
    )


def current_share(consumer: ConsumerFacts) -> int | None:
    """What a consumer can run toward the database as it stands: its peak concurrency (rounded up), or its reserved
    concurrency, or the sum of its SQS mappings' MaximumConcurrency (when every mapping has one), whichever is
    lowest; None when none of them is known.

    >>> from medic.facts import ConsumerFacts
    >>> current_share(ConsumerFacts(function_name="legacy", peak_concurrency=120.5, reserved_concurrency=80))
    80
    """
    known: list[int] = []
    if consumer.peak_concurrency is not None:
        known.append(math.ceil(consumer.peak_concurrency))
    if consumer.reserved_concurrency is not None:
        known.append(consumer.reserved_concurrency)
    caps = [source.maximum_concurrency for source in consumer.sqs_sources]
    if caps and all(cap is not None for cap in caps):
        known.append(sum(cap or 0 for cap in caps))
    return min(known) if known else None


@dataclass(frozen=True)
class BudgetSplit:
    """A budget toward a database divided: the opted-in consumers' shares, what the others spend as they stand,
    and the cap each of those others should get."""

    budget: int
    shares: dict[str, int]
    spent: dict[str, int]
    suggested: dict[str, int]

    @property
    def rest(self) -> int:
        """What the opted-in consumers share: the budget less what the others spend (never below 0)."""
        return max(0, self.budget - sum(self.spent.values()))


def split_budget(budget: int, consumers: list[ConsumerFacts]) -> BudgetSplit:
    """Divide `budget` over `consumers`: see the module. A consumer not opted in whose concurrency is unknown makes
    the split impossible (refused: Medic never guesses what it spends)."""
    managed = [c for c in consumers if c.managed]
    spent: dict[str, int] = {}
    for consumer in consumers:
        if consumer.managed:
            continue
        share = current_share(consumer)
        if share is None:
            raise GuardrailRefused(
                "facts",
                "the concurrency of every consumer not opted in",
                f"unknown: {consumer.function_name}",
                f"{consumer.function_name} is not opted in and neither its peak concurrency nor a cap on it is known, "
                f"so what it leaves of the budget of {budget} toward the database cannot be told",
            )
        spent[consumer.function_name] = share
    everyone = consumer_shares(budget, consumers)
    return BudgetSplit(
        budget=budget,
        shares=consumer_shares(max(0, budget - sum(spent.values())), managed),
        spent=spent,
        suggested={name: everyone[name] for name in spent},
    )


def spent_note(split: BudgetSplit) -> str:
    """How the opted-in consumers' budget was reached, when others spend part of it ("" when none do)."""
    if not split.spent:
        return ""
    return (
        f" The consumers not opted in ({', '.join(sorted(split.spent))}) run {sum(split.spent.values())} of it as "
        f"they stand, so {split.rest} is left to share."
    )


def unmanaged_advice(
    split: BudgetSplit, consumers: list[ConsumerFacts], database: str, how: str
) -> list[PlannedAction]:
    """One `advise` line per consumer not opted in among `consumers`: Medic leaves it alone; the cap it should get."""
    return [
        PlannedAction(
            kind="advise",
            target=consumer.function_name,
            primary="advice",
            resource={
                "suggested_cap": split.suggested[consumer.function_name],
                "counted": split.spent[consumer.function_name],
            },
            text=(
                f"{consumer.function_name} is not opted in to changes by tag: Medic leaves it as it is and counts the "
                f"{split.spent[consumer.function_name]} concurrent executions it can run now against the budget of "
                f"{split.budget} toward {database}. Cap it at {split.suggested[consumer.function_name]} ({how}), its "
                f"share of the budget, or opt it in."
            ),
        )
        for consumer in consumers
        if consumer.function_name in split.spent
    ]
