"""The guardrails again at apply: an approved plan is judged on the live state before anything is changed.

Between the approval and the apply, the world moves: a function's opt-in tag is removed, its reserved concurrency is
lowered, the account's unreserved pool shrinks, the budget fills. The executor re-reads the facts the guards need
(the same collector as triage: tags, reservation, account settings, provisioned concurrency and autoscaling, the
database's consumers) and runs the same guards (`medic.planning.guardrails.check_plan`, then the cost budget) on a
copy of the
approved actions. A guard that refuses, or one that would now clamp an approved value, refuses the plan: Medic applies
exactly what was approved or nothing, never a silently smaller change. The stateful controls (kill switch, freeze
windows, circuit breaker, rate limit, cooldown, PC budget: `medic.safety`) are read again by the executor as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medic.plan import Refusal

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction
    from medic.config import Settings
    from medic.facts import Facts


def guard_refusals(actions: list[PlannedAction], facts: Facts, settings: Settings, region: str) -> list[Refusal]:
    """Why the approved `actions` may not be applied on the live `facts` (empty: every guard lets them through as
    approved). The actions themselves are left untouched.

    >>> from medic.actions.base import PlannedAction
    >>> from medic.config import Settings
    >>> from medic.facts import Facts
    >>> pc = PlannedAction(kind="set_provisioned_concurrency", target="checkout:live", function_name="checkout",
    ...                    qualifier="live", primary="provisioned_concurrency",
    ...                    before={"provisioned_concurrency": 20}, after={"provisioned_concurrency": 66})
    >>> live = Facts(function_name="checkout", qualifier="live", managed=False, tags={}, pc_requested=20,
    ...              has_reserved_concurrency=True, reserved_concurrency=100)
    >>> [r.guard for r in guard_refusals([pc], live, Settings(plans_table="p", events_table="e"), "us-east-1")]
    ['opt_in_tag']
    """
    from medic.planning.cost import annotate_costs
    from medic.planning.guardrails import check_budget, check_plan

    copies = [action.model_copy(deep=True) for action in actions]
    refusals = check_plan(copies, facts, settings)
    for approved, judged in zip(actions, copies, strict=True):
        if judged.after == approved.after:
            continue
        changed = ", ".join(
            f"{name} {approved.after.get(name)} → {judged.after.get(name)}"
            for name in dict.fromkeys([*approved.after, *judged.after])
            if approved.after.get(name) != judged.after.get(name)
        )
        why = "; ".join(judged.clamps[len(approved.clamps) :]) or "the guardrails' clamps"
        refusals.append(
            Refusal(
                guard="clamped_at_apply",
                limit=dict(judged.after),
                observed=dict(approved.after),
                message=f"{approved.kind} on {approved.target}: the guardrails would now clamp what was approved "
                f"({changed}; {why}); Medic applies what was approved or nothing",
            )
        )
    annotate_costs(copies, facts, region, facts.architecture or "x86_64")
    refusals += check_budget(copies, settings)
    return [
        refusal.model_copy(update={"message": f"at apply, on the live state: {refusal.message}"})
        for refusal in refusals
    ]
