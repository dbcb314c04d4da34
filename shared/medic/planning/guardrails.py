"""Guardrails: checked when a plan is made and again at apply time.

A guard either clamps a value (recorded on the action, shown to approvers) or refuses (the plan
becomes BLOCKED with the guard, its limit and the observed value):

- opt-in by tag, per function acted on: the alarm's target (``Facts.managed``), and every other function a plan
  touches (a database's consumers: ``ConsumerFacts.managed``);
- the account's concurrency, with AWS's own arithmetic (`medic.planning.pool`, the same functions the embedded world
  validates with), applied to the plan's changes *in order*, as the executor makes them: each change is judged
  against the account as the plan's earlier changes leave it;
- provisioned concurrency (a floor, autoscaling bounds, a scheduled pre-warm): never on an alias whose version another
  alias already provisions (AWS allows one configuration per version); the PC cap; PC ≤ reserved
  concurrency (with the PC on the function's other qualifiers, when known); on a function without a reservation,
  PC comes out of the unreserved pool, which keeps its minimum (``min(100, account limit)``): the pool is
  ``UnreservedConcurrentExecutions`` minus the PC already on the function, so that PC counts once. Autoscaling
  bounds never end with a minimum above the maximum;
- reserved concurrency: an increase takes from the unreserved pool, and never squeezes what the functions without a
  reservation use: the pool keeps ``max(minimum, their peak)`` (``unreserved_concurrency_peak``; the account's own
  peak when that is unknown, an upper bound; nothing is taken when both are unknown) (clamped); never below the
  function's provisioned concurrency (the PC the same plan sets included), never 0;
- an account whose whole limit is the unreserved minimum (a limit of 100 or less, as a new account's 10) has
  nothing to give: a reservation or PC increase drawn from it is refused (``unreserved_floor``), never clamped to a
  value AWS refuses;
- an increase that takes executions from the account's unreserved pool while the pool's size is unknown (account
  settings not read) is refused (``unreserved_unknown``): Medic never guesses what stays unreserved;
- SQS buffer: MaximumConcurrency above the function's reserved concurrency only turns into throttles (clamped);
- per-action caps from `Settings`: reserved concurrency ≤ ``max_reserved_concurrency``, memory ≤
  ``max_memory_mb``, a quota request ≤ ``max_quota_request`` (clamped). A cap limits an increase and never turns
  it into a cut: when the current value is already above the cap, the value stays as it is. The quota cap is a
  hard limit: once the account's limit has reached it, a further request is refused (``quota_hard_limit``), never
  crept towards step by step;
- nothing left to change after the clamps refuses the action (``no_effective_change``): a clamp never sends AWS a
  value it would refuse, it leaves the value as it is and the action is refused.

The monthly cost budget is checked separately, by :func:`check_budget`, once the plan's costs are annotated
(`medic.planning.cost.annotate_costs` prices the *clamped* values, so it runs after `check_plan`).
"""

from __future__ import annotations

from medic.actions import get_action
from medic.actions.base import PlannedAction
from medic.config import Settings
from medic.facts import ConsumerFacts, Facts
from medic.plan import Refusal
from medic.planning import pool
from medic.planning.headroom import AccountHeadroom, clamp_pc, clamp_reserved, pc_fields

#: AWS keeps at least this many concurrent executions unreserved in every account (all of a smaller limit).
MIN_UNRESERVED = pool.MINIMUM_UNRESERVED


def check_plan(actions: list[PlannedAction], facts: Facts, settings: Settings) -> list[Refusal]:
    """Clamp `actions` in place and return the refusals (empty: the plan may proceed)."""
    refusals: list[Refusal] = []
    changing = [action for action in actions if action.kind != "advise"]
    if not changing:
        return refusals
    refusals += _opt_in(changing, facts, settings)
    account = AccountHeadroom.of(facts)
    for action in changing:
        impl = get_action(action.kind)  # what the action declares: its PC fields, its cap, whether it must change
        if impl.pc_fields and _on_target(action, facts) and facts.pc_version_taken and not facts.pc_requested:
            refusals.append(
                Refusal(
                    guard="pc_version_taken",
                    limit="one PC configuration per version",
                    observed=facts.pc_qualifiers,
                    message=f"another alias of {action.target}'s version holds provisioned concurrency "
                    f"({facts.pc_qualifiers}): AWS refuses a second configuration on the same version; point the "
                    "traffic at that alias, or move the PC (delete it there first)",
                )
            )
        if impl.pc_fields:
            refusals += clamp_pc(action, facts, settings, account)
        if impl.cap is not None:
            refusals += _cap(action, impl.cap, settings)
        if action.kind == "set_reserved_concurrency":
            refusals += clamp_reserved(action, facts, account)
        elif action.kind == "enable_sqs_buffer":
            _clamp_buffer(action, facts)
        refusals += _check_pool_known(action, facts)
        if impl.must_change and not _changes(action):
            refusals.append(
                Refusal(
                    guard="no_effective_change",
                    limit=action.before.get(action.primary),
                    observed=action.after.get(action.primary),
                    message=f"after the guardrails' clamps nothing would change on {action.target}",
                )
            )
        elif action.kind == "schedule_prewarm":
            refusals += _check_prewarm(action, facts)
    return refusals


def check_budget(actions: list[PlannedAction], settings: Settings) -> list[Refusal]:
    """Refusals of the monthly cost budget (empty when no budget is set or the plan fits in it).

    Run it after `medic.planning.cost.annotate_costs`: a plan whose added monthly cost (the sum of its positive
    ``cost_monthly_usd``; savings are not counted against increases) exceeds ``monthly_cost_budget_usd`` is refused
    (``cost_budget``), and so is every change whose cost is unknown (``cost_unknown``): under a budget, Medic never
    guesses.

    >>> from medic.actions.base import PlannedAction
    >>> pc = PlannedAction(kind="set_provisioned_concurrency", target="checkout:live",
    ...                    primary="provisioned_concurrency", cost_monthly_usd=109.5)
    >>> [r.guard for r in check_budget([pc], Settings(plans_table="p", events_table="e", monthly_cost_budget_usd=100))]
    ['cost_budget']
    """
    budget = settings.monthly_cost_budget_usd
    if budget is None:
        return []
    changing = [action for action in actions if action.kind != "advise"]
    refusals = [
        Refusal(
            guard="cost_unknown",
            limit=budget,
            observed=None,
            message=f"the monthly cost of {action.kind} on {action.target} is unknown "
            f"({action.cost_basis or 'not estimated'}), so it cannot be held to the budget of "
            f"${budget:,.2f}/month",
        )
        for action in changing
        if action.cost_monthly_usd is None
    ]
    added = sum(max(0.0, action.cost_monthly_usd or 0.0) for action in changing)
    if added > budget:
        refusals.append(
            Refusal(
                guard="cost_budget",
                limit=budget,
                observed=round(added, 2),
                message=f"the plan adds ${added:,.2f}/month, above the monthly cost budget of ${budget:,.2f}",
            )
        )
    return refusals


def _on_target(action: PlannedAction, facts: Facts) -> bool:
    return action.function_name is None or action.function_name == facts.function_name


def _opt_in(changing: list[PlannedAction], facts: Facts, settings: Settings) -> list[Refusal]:
    """The alarm's target must be opted in; so must every other function the plan changes (a database's consumers)."""
    refusals: list[Refusal] = []
    key, value = settings.opt_in_tag
    if any(_on_target(action, facts) for action in changing) and facts.managed is not True:
        observed = (facts.tags or {}).get(key) if facts.tags is not None else "unknown (tags not read)"
        refusals.append(
            Refusal(
                guard="opt_in_tag",
                limit=f"{key}={value}",
                observed=observed,
                message=f"{facts.function_name or 'the target'} is not opted in to changes by tag",
            )
        )
    others = dict.fromkeys(a.function_name for a in changing if a.function_name and not _on_target(a, facts))
    for name in others:
        consumer = _consumer(facts, name)
        if consumer is not None and consumer.managed:
            continue
        observed = "not opted in" if consumer is not None else "not a known consumer of the target"
        refusals.append(
            Refusal(
                guard="opt_in_tag",
                limit=f"{key}={value}",
                observed=observed,
                message=f"{name} is not opted in to changes by tag",
            )
        )
    return refusals


def _consumer(facts: Facts, function_name: str | None) -> ConsumerFacts | None:
    return next((c for c in facts.consumers or [] if c.function_name == function_name), None)


def _changes(action: PlannedAction) -> bool:
    """Whether applying `after` changes anything (fields only in `before`, like a version, are context)."""
    return any(action.before.get(name) != value for name, value in action.after.items())


def _check_pool_known(action: PlannedAction, facts: Facts) -> list[Refusal]:
    """Refuse an increase drawn from the account's unreserved pool when the pool's size is unknown."""
    if facts.unreserved_concurrency is not None:
        return []
    if action.kind == "set_reserved_concurrency":
        taken = int(action.after.get("reserved_concurrency") or 0) - int(action.before.get("reserved_concurrency") or 0)
    elif pc_fields(action.kind) and not facts.has_reserved_concurrency:
        taken = max(int(action.after.get(name) or 0) for name in pc_fields(action.kind)) - int(facts.pc_requested or 0)
    else:
        return []
    if taken <= 0:
        return []
    return [
        Refusal(
            guard="unreserved_unknown",
            limit=MIN_UNRESERVED,
            observed="unknown (account settings not read)",
            message=f"{action.target} would take {taken} executions from the account's unreserved pool, whose "
            f"size is unknown: Medic never guesses what stays unreserved",
        )
    ]


def _clamp_buffer(action: PlannedAction, facts: Facts) -> None:
    wanted = action.after.get("maximum_concurrency")
    reserved = facts.reserved_concurrency if _on_target(action, facts) else None
    if wanted is None or reserved is None or int(wanted) <= reserved:
        return
    value = max(reserved, 2)
    if value < int(wanted):
        action.clamps.append(
            f"maximum_concurrency {wanted} → {value}: above the function's reserved concurrency ({reserved}) the "
            f"queue's pollers would only be throttled"
        )
        action.after["maximum_concurrency"] = value


def _check_prewarm(action: PlannedAction, facts: Facts) -> list[Refusal]:
    """A pre-warm at or below today's floor changes nothing at the burst."""
    floor = max(int(facts.autoscaling_min or 0), int(facts.pc_requested or 0))
    wanted = int(action.after.get("prewarm_concurrency") or 0)
    if wanted > floor:
        return []
    return [
        Refusal(
            guard="no_effective_change",
            limit=floor,
            observed=wanted,
            message=f"after the guardrails' clamps the pre-warm of {action.target} is not above its "
            f"provisioned concurrency floor ({floor})",
        )
    ]


def _cap(action: PlannedAction, cap_of: tuple[str, str], settings: Settings) -> list[Refusal]:
    """Clamp the action's field to its cap (an increase only); refuse a quota request once the hard limit is hit."""
    name, setting = cap_of
    cap = int(getattr(settings, setting))
    wanted = action.after.get(name)
    if wanted is None:
        return []
    before = action.before.get(name)
    current = int(before or 0)
    if action.kind == "request_quota_increase" and current >= cap:
        return [
            Refusal(
                guard="quota_hard_limit",
                limit=cap,
                observed=before,
                message=f"the account's concurrency limit {before} has reached the hard limit of quota "
                f"requests ({setting}={cap}): Medic asks for no more",
            )
        ]
    if int(wanted) <= cap:
        return []
    # A cap limits an increase; it never turns a remediation into a cut (nothing changes instead).
    value = max(cap, min(current, int(wanted)))
    above = " (already above it: left as it is)" if value > cap else ""
    action.clamps.append(f"{name} {wanted} → {value}: cap {setting}={cap}{above}")
    action.after[name] = before if value == current else value
    return []
