"""Facts → plan: the runbook's decision, each action's before → after, the guardrails (clamps and refusals), the costs,
the budget, the approval hash and the stateful controls; then the plan's status (BLOCKED, NOOP, PROPOSED or APPROVED).

`make_plan` is the one step that turns facts into a plan: triage and a re-proposal after drift call it. Its pure part,
`plan_actions` (action calls → changes and refusals), is what the property tests (tests/property) exercise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from medic.actions import get_action
from medic.clock import iso
from medic.errors import (
    GuardrailRefused,
)
from medic.facts import Facts
from medic.plan import Plan, Refusal, approval_hash
from medic.planning.guardrails import check_budget, check_plan
from medic.planning.runbook import decide
from medic.runtime import Runtime
from medic.stacks import template_warnings

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction
    from medic.alarms.signals import Target
    from medic.config import Settings
    from medic.planning.verdict import ActionCall


def plan_actions(
    calls: Sequence[ActionCall], target: Target, facts: Facts, settings: Settings, region: str
) -> tuple[list[PlannedAction], list[Refusal]]:
    """The runbook's action calls → the planned changes (before → after, clamped by the guardrails, priced) and the
    refusals (an action that cannot apply to the target, a guardrail, the budget). Pure: no AWS call, no state."""
    actions: list[PlannedAction] = []
    refusals: list[Refusal] = []
    for call in calls:
        try:
            actions.extend(get_action(call.kind).plan(target, call.params, facts))
        except GuardrailRefused as refused:
            refusals.append(
                Refusal(guard=refused.guard, limit=refused.limit, observed=refused.observed, message=refused.message)
            )
    refusals.extend(check_plan(actions, facts, settings))
    from medic.planning.cost import annotate_costs

    annotate_costs(actions, facts, region, facts.architecture or "x86_64")
    refusals.extend(check_budget(actions, settings))
    return actions, refusals


def make_plan(plan: Plan, facts: Facts, rt: Runtime, now: datetime) -> None:
    """Decide on `plan` (its signal, from `facts`) and fill it in: the decision and its trace, the facts and their
    sources, the actions (`plan_actions`), the approval hash, the stateful controls' refusals, and the status."""
    runbook = rt.runbook
    decision = decide(runbook, plan.signal, facts.environment(), facts.target_tags())
    plan.decision = decision
    plan.runbook, plan.runbook_version = runbook.name, runbook.version
    if not decision.matched:
        plan.reason = decision.reason
        _record_facts(plan, facts)
        return
    from medic.promotions.effect import promotion_reason

    promoted = promotion_reason(plan, decision, rt)
    if promoted:  # the row earned auto on this target (medic.promotions): logged with the decision
        decision = decision.model_copy(update={"mode": "auto", "reason": f"{decision.reason}; {promoted}"})
        plan.decision = decision
    plan.diagnosis, plan.rule, plan.mode = decision.diagnosis, decision.rule, decision.mode
    plan.rationale, plan.reason = decision.rationale, decision.reason
    plan.rollback_on_failure = decision.verify.rollback_on_failure
    actions, refusals = plan_actions(decision.actions, target_of(plan), facts, rt.settings, plan.region)
    plan.actions.extend(actions)
    plan.blocked_by.extend(refusals)
    plan.template_warnings = template_warnings(plan.changes, plan.function_name, facts.tags)
    _record_facts(plan, facts)
    plan.approval_hash = approval_hash(plan)
    if not plan.blocked_by and plan.changes and decision.mode != "notify":
        plan.blocked_by.extend(rt.safety.refusals(plan, now))  # kill switch, freeze, breaker, rate, cooldown
    if plan.blocked_by:
        plan.status = "BLOCKED"
    elif not plan.changes or decision.mode == "notify":
        plan.status = "NOOP"
    elif rt.settings.dry_run or decision.mode == "approve":
        plan.status = "PROPOSED"
        plan.expires_at = iso(now + timedelta(seconds=rt.settings.approval_ttl_s))
    else:
        plan.status = "APPROVED"
        plan.decided_by = ["auto"]


def _record_facts(plan: Plan, facts: Facts) -> None:
    """The facts the plan was made on, with their sources and why the others are unknown: once the decision, the
    actions, the guardrails and the costs have read what they need (facts read on demand are read by then)."""
    plan.facts = facts.recorded()
    plan.fact_sources = dict(facts.sources)
    plan.missing_facts = dict(facts.missing)


def target_of(plan: Plan) -> Target:
    """What the plan acts on: its function (and qualifier), its database instance, or nothing."""
    from medic.alarms.signals import Target

    if plan.function_name:
        return Target.function(plan.function_name, plan.qualifier)
    if plan.db_instance:
        return Target.db_instance(plan.db_instance)
    return Target.none()
