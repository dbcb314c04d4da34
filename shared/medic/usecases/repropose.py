"""Re-proposal after drift: decide again from the live state, as a new plan for the same alarm transition."""

from __future__ import annotations

from medic import outcomes, queue
from medic.accounts import fact_collector
from medic.alarms.signals import Signal
from medic.clock import iso
from medic.plan import OPEN_STATES, Plan, SlackRef
from medic.planning.make import make_plan, target_of
from medic.runtime import Runtime
from medic.stacks import WARNING_RECORD

#: How many times one alarm transition is re-proposed after drift (then a human takes over).
MAX_REPROPOSALS = 2


def repropose(plan: Plan, rt: Runtime) -> Plan | None:
    """After drift, decide again from the live state: a new plan for the same alarm (`<id>-r1`, `-r2`), through
    the same facts → runbook → guardrails → approval path. It is never applied on the old approval."""
    base = plan.id.split("-r")[0] if "-r" in plan.id.removeprefix("p-") else plan.id
    taken = [n for n in range(1, MAX_REPROPOSALS + 1) if rt.ledger.get(f"{base}-r{n}") is not None]
    if len(taken) >= MAX_REPROPOSALS:
        rt.ledger.append(
            plan.id, "not_reproposed", {"reason": f"already re-proposed {len(taken)} times"}, rt.clock.now()
        )
        return None
    now = rt.clock.now()
    fresh = plan.model_copy(
        update={
            "id": f"{base}-r{len(taken) + 1}",
            "status": "NOOP",
            "created_at": iso(now),
            "updated_at": iso(now),
            "diagnosis": None,
            "rule": None,
            "mode": None,
            "rationale": "",
            "reason": "",
            "actions": [],
            "blocked_by": [],
            "decision": None,
            "approval_hash": "",
            "decided_by": [],
            "slack": SlackRef(),
            "expires_at": None,
            "applied_at": None,
            "verify_after": None,
            "verification": None,
        }
    )
    reason = f"re-proposed after {plan.id} drifted"
    signal = Signal(kind=plan.signal, target=target_of(plan), metric=None, reason=reason)
    facts = fact_collector(plan, rt).collect(signal, None, now)
    facts.alarm_value, facts.alarm_threshold = plan.alarm_value, plan.alarm_threshold
    make_plan(fresh, facts, rt, now)
    fresh.reason = f"re-proposed from the live state after {plan.id} drifted; " + fresh.reason
    if fresh.status in OPEN_STATES:
        rt.ledger.claim(fresh.target, fresh.id, stale_holder=rt.ledger.holder(fresh.target))
    if not rt.ledger.create(fresh):
        return None
    rt.ledger.append(plan.id, "reproposed", {"plan_id": fresh.id, "status": fresh.status}, now)
    rt.ledger.append(
        fresh.id, "reproposal_of", {"plan_id": plan.id, "facts": fresh.facts, "missing": fresh.missing_facts}, now
    )
    if fresh.decision is not None:
        rt.ledger.append(fresh.id, "decision", fresh.decision.model_dump(mode="json"), now)
    for warning in fresh.template_warnings:
        rt.ledger.append(fresh.id, WARNING_RECORD, warning.model_dump(mode="json"), now)
    created = {
        "status": fresh.status,
        "diagnosis": fresh.diagnosis,
        "rule": fresh.rule,
        "approval_hash": fresh.approval_hash,
    }
    rt.ledger.append(fresh.id, "plan_created", created, now)
    if fresh.status == "APPROVED":
        queue.enqueue(fresh, rt, now)
    outcomes.post_card(fresh, rt, now)
    return fresh
