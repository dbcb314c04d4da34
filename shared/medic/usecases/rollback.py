"""Rollback of a FAILED plan, by the executor: asked by the verifier when the rule wants it, or after an apply the
verifier abandoned."""

from __future__ import annotations

from medic import outcomes
from medic.accounts import action_clients
from medic.actions import get_action
from medic.actions.base import PlannedAction
from medic.aws import AwsClients
from medic.clock import iso
from medic.errors import (
    LeaseHeld,
)
from medic.ledger.binding import apply_records_refusal, binding_refusal
from medic.log import get_logger
from medic.plan import Plan
from medic.runtime import Runtime
from medic.usecases.steps import aws_errors, lease_terms, same, undo


def rollback_plan(pid: str, rt: Runtime) -> str:
    """Undo a FAILED plan whose rule asks for it (queued by the verifier), or whose apply the verifier abandoned:
    FAILED → ROLLED_BACK. One executor at a time (a lease on the FAILED plan): a duplicate message waits, as for an
    apply. Only a plan that is still what was approved, with progress matching the executor's records, is rolled back
    (what it restores comes from the plan): otherwise the refusal is logged and a human restores it."""
    plan = rt.ledger.get(pid)
    if plan is None or plan.status != "FAILED" or not (plan.rollback_on_failure or plan.abandoned_at):
        get_logger(use_case="executor", plan_id=pid).info("nothing_to_roll_back", status=plan and plan.status)
        return plan.status if plan else "unknown"
    now = rt.clock.now()
    if plan.lease_until and plan.lease_until > iso(now):
        raise LeaseHeld(plan.id, plan.lease_owner, plan.lease_until)
    events, head = rt.ledger.events(pid), rt.ledger.head(pid)
    stored = rt.ledger.stored_approval_hash(pid)
    refusal = binding_refusal(plan, stored=stored, expected="", events=events, head=head) or apply_records_refusal(
        plan, events, head
    )
    if refusal is not None:
        rt.ledger.append(plan.id, "rollback_refused", refusal.model_dump(mode="json"), now)
        outcomes.reply(plan, rt, f":rotating_light: Not rolled back: {refusal.message}. A human must restore it.")
        return plan.status
    owner, until = lease_terms(now, rt)
    plan = rt.ledger.lease(
        plan,
        now,
        until,
        owner,
        hold="FAILED",
        record=(
            "rolling_back",
            {
                "actions": len([a for a in plan.changes if a.applied]),
                "lease_owner": owner,
                "lease_until": iso(until),
                **({"previous_owner": plan.lease_owner} if plan.lease_owner else {}),
            },
        ),
    )
    clients = action_clients(plan, rt)
    applied = [a for a in plan.changes if a.applied or (plan.abandoned_at and _found_applied(plan, a, rt, clients))]
    if not applied:
        rt.ledger.append(plan.id, "nothing_to_roll_back", {"reason": "no change of the plan reached AWS"}, now)
        outcomes.reply(plan, rt, ":information_source: Nothing to roll back: no change of this plan had reached AWS.")
        return plan.status
    errors = undo(plan, applied, rt, clients)
    if errors:
        outcomes.reply(plan, rt, f":red_circle: Rollback failed: {'; '.join(errors)}. A human must restore it.")
        return plan.status
    why = "as the rule asks" if plan.rollback_on_failure else "after the abandoned apply"
    plan = outcomes.move(
        rt,
        plan,
        "ROLLED_BACK",
        rt.clock.now(),
        say=f":rewind: Rolled back {why}: every change restored to its before-state.",
        note="verification failed; rolled back" if plan.rollback_on_failure else "apply abandoned",
    )
    return plan.status


def _found_applied(plan: Plan, action: PlannedAction, rt: Runtime, clients: AwsClients) -> bool:
    """An abandoned apply may have made a change it never recorded (it died between the call and the record): the
    live state at `after` (and not at `before`) says so."""
    try:
        live = get_action(action.kind).read_live(clients, action)
    except aws_errors():
        return False
    if not same(live, action.after) or same(live, action.before):
        return False
    rt.ledger.append(plan.id, "change_found_applied", {"target": action.target, "live": dict(live)}, rt.clock.now())
    return True
