"""Facts → plan: the runbook's decision, each action's before → after, the guardrails (clamps and refusals), the costs,
the budget, the approval hash and the stateful controls; then the plan's status (BLOCKED, NOOP, PROPOSED or APPROVED).

`make_plan` is the one step that turns facts into a plan: triage and a re-proposal after drift call it, and so do the
property tests (tests/property), on the same code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

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


def make_plan(plan: Plan, facts: Facts, rt: Runtime, now: datetime) -> None:
    runbook = rt.runbook
    decision = decide(runbook, plan.signal, facts.environment(), facts.target_tags())
    plan.decision = decision
    plan.runbook, plan.runbook_version = runbook.name, runbook.version
    if not decision.matched:
        plan.reason = decision.reason
        _record_facts(plan, facts)
        return
    plan.diagnosis, plan.rule, plan.mode = decision.diagnosis, decision.rule, decision.mode
    plan.rationale, plan.reason = decision.rationale, decision.reason
    plan.rollback_on_failure = decision.verify.rollback_on_failure
    target = target_of(plan)
    for call in decision.actions:
        try:
            plan.actions.extend(get_action(call.kind).plan(target, call.params, facts))
        except GuardrailRefused as refused:
            plan.blocked_by.append(
                Refusal(guard=refused.guard, limit=refused.limit, observed=refused.observed, message=refused.message)
            )
    plan.blocked_by.extend(check_plan(plan.actions, facts, rt.settings))
    from medic.planning.cost import annotate_costs

    annotate_costs(plan.actions, facts, plan.region, facts.architecture or "x86_64")
    plan.blocked_by.extend(check_budget(plan.actions, rt.settings))
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


def target_of(plan: Plan) -> Any:
    from medic.alarms.signals import Target

    if plan.function_name:
        return Target.function(plan.function_name, plan.qualifier)
    if plan.db_instance:
        return Target.db_instance(plan.db_instance)
    return Target.none()
