"""The executor's use case: SQS messages → apply an approved plan (bound to its approval, every guardrail and control
checked again, drift never fought, failures rolled back), or roll back a FAILED one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from medic import outcomes
from medic.accounts import action_clients
from medic.actions import get_action
from medic.actions.base import PlannedAction
from medic.aws import AwsClients
from medic.clock import iso
from medic.errors import (
    LeaseHeld,
)
from medic.ledger.binding import apply_records_refusal, binding_refusal, recorded
from medic.log import get_logger
from medic.plan import Plan, Refusal
from medic.queue import ExecutorMessage
from medic.runtime import Runtime
from medic.safety import BREAKER_KEY, KILL_SWITCH_KEY
from medic.usecases.repropose import repropose
from medic.usecases.rollback import rollback_plan
from medic.usecases.steps import aws_errors, guard_refusals_now, lease_terms, same, undo


def execute_batch(sqs_event: Mapping[str, Any], rt: Runtime) -> dict[str, Any]:
    """SQS records → execute each plan; failed records are reported for redelivery (then the DLQ)."""
    failures: list[dict[str, str]] = []
    for record in sqs_event.get("Records", []):
        message_id = str(record.get("messageId", ""))
        try:
            message = ExecutorMessage.parse(record["body"])
            if message.rollback:
                rollback_plan(message.plan_id, rt)
            else:
                execute_plan(message.plan_id, message.approval_hash, rt)
        except (KeyError, TypeError, ValueError) as exc:
            get_logger(use_case="executor").error("bad_message", message_id=message_id, error=str(exc))
            failures.append({"itemIdentifier": message_id})
        except LeaseHeld as held:  # a duplicate delivery while another executor applies: back to the queue
            get_logger(use_case="executor", plan_id=held.plan_id).info(
                "plan_leased", message_id=message_id, owner=held.owner, until=held.until
            )
            failures.append({"itemIdentifier": message_id})
        except Exception:  # noqa: BLE001 - the dispatcher: log, and leave the message for redelivery / DLQ
            get_logger(use_case="executor").exception("execute_failed", message_id=message_id)
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def execute_plan(pid: str, expected_hash: str, rt: Runtime) -> str:
    """Apply an approved plan: re-read live state, refuse on drift, apply, wait, roll back on failure.

    The plan and the safety controls are read in one request; each record is written with the next state change
    of the plan (one transaction), the rest when the plan is done."""
    rt.ledger.prefetch([pid, KILL_SWITCH_KEY, BREAKER_KEY])
    try:
        with rt.ledger.deferred():
            return _execute_plan(pid, expected_hash, rt)
    finally:
        rt.ledger.forget_prefetched()


def _execute_plan(pid: str, expected_hash: str, rt: Runtime) -> str:
    log = get_logger(use_case="executor", plan_id=pid)
    now = rt.clock.now()
    plan = rt.ledger.get(pid)
    if plan is None:
        log.error("unknown_plan")
        return "unknown"
    if plan.status not in ("APPROVED", "APPLYING"):
        log.info("nothing_to_do", status=plan.status)  # a redelivery of a plan already handled
        return plan.status
    if plan.status == "APPLYING" and plan.lease_until and plan.lease_until > iso(now):
        # Another executor holds the plan (a duplicate delivery of its message) until its lease expires.
        raise LeaseHeld(plan.id, plan.lease_owner, plan.lease_until)
    events, head = rt.ledger.events(pid), rt.ledger.head(pid)
    stored = rt.ledger.stored_approval_hash(pid)
    binding = binding_refusal(plan, stored=stored, expected=expected_hash, events=events, head=head)
    if plan.status == "APPROVED":
        refusals = [binding] if binding else _apply_time_refusals(plan, rt, now)
        if refusals:
            return _blocked(plan, refusals, rt, now)
        owner, until = lease_terms(now, rt)
        plan = rt.ledger.lease(
            plan,
            now,
            until,
            owner,
            record=(
                "applying",
                {
                    "actions": len(plan.changes),
                    "lease_owner": owner,
                    "lease_until": iso(until),
                },
            ),
        )
        clients = action_clients(plan, rt)
    else:
        # APPLYING with its lease expired: a redelivery after a crash mid-apply (or the verifier's re-drive). Take the
        # plan over only if it is still what was approved, then read the kill switch and the guardrails again.
        binding = binding or apply_records_refusal(plan, events, head)
        if binding:
            return _tampered_mid_apply(plan, binding, rt, now)
        owner, until = lease_terms(now, rt)
        plan = rt.ledger.lease(
            plan,
            now,
            until,
            owner,
            record=(
                "lease_taken_over",
                {
                    "previous_owner": plan.lease_owner,
                    "expired_at": plan.lease_until,
                    "lease_owner": owner,
                    "lease_until": iso(until),
                },
            ),
        )
        clients = action_clients(plan, rt)
        done = [a for a in plan.changes if a.applied]
        switch = rt.safety.kill_switch()
        if switch.enabled:
            return _stopped(plan, done, rt, clients, "kill_switch", switch.reason or "no reason given")
        refusals = guard_refusals_now(plan, plan.changes, rt, now)
        if refusals:
            return _stopped(plan, done, rt, clients, refusals[0].guard, "; ".join(r.message for r in refusals))

    applied: list[PlannedAction] = []
    for action in plan.changes:
        impl = get_action(action.kind)
        try:
            live = impl.read_live(clients, action)
        except aws_errors() as exc:  # botocore's own (ParamValidationError...) too: a failure like any other
            return _failed(plan, action, exc, applied, rt, clients)
        if action.applied or same(live, action.after):
            # Resumed after a crash: the change is already there, never apply twice; but wait for it to take
            # effect (a PC allocation may have FAILED while the executor was down).
            action.applied = True
            applied.append(action)
            if not action.observed_after:
                rt.ledger.append(
                    pid, "change_found_applied", {"target": action.target, "live": dict(live)}, rt.clock.now()
                )
                try:
                    action.observed_after = impl.wait(clients, action, rt.clock, rt.settings.pc_ready_timeout_s)
                except aws_errors() as exc:
                    return _failed(plan, action, exc, applied, rt, clients)
            continue
        if not same(live, action.before):
            return _drifted(plan, action, live, applied, rt, clients)
        try:
            request = impl.apply(clients, action)
            action.applied = True
            action.request_ids.append(request)
            applied.append(action)
            plan = rt.ledger.save(
                plan,
                rt.clock.now(),
                record=(
                    "aws_call",
                    {
                        "action": action.kind,
                        "target": action.target,
                        "request_id": request,
                        "before": action.before,
                        "after": action.after,
                        "recorded": recorded(action),
                    },
                ),
            )
            action.observed_after = impl.wait(clients, action, rt.clock, rt.settings.pc_ready_timeout_s)
            rt.ledger.append(
                pid, "change_effective", {"target": action.target, "observed": action.observed_after}, rt.clock.now()
            )
        except aws_errors() as exc:
            return _failed(plan, action, exc, applied, rt, clients)

    now = rt.clock.now()
    verify_after = now + timedelta(seconds=rt.settings.verify_after_s)
    plan = outcomes.move(
        rt,
        plan,
        "APPLIED",
        now,
        applied_at=iso(now),
        verify_after=iso(verify_after),
        record=("applied", {"verify_after": iso(verify_after)}),
    )
    changes = "; ".join(outcomes.describe_change(a) for a in plan.changes)
    outcomes.reply(plan, rt, f":wrench: Applied: {changes}. Verifying after {plan.verify_after}.")
    log.info("applied")
    return plan.status


def _blocked(plan: Plan, refusals: list[Refusal], rt: Runtime, now: datetime) -> str:
    """APPROVED → BLOCKED before anything is changed: the refusals on the plan, the first (with the others) logged,
    the Slack thread told."""
    record = refusals[0].model_dump(mode="json")
    if len(refusals) > 1:
        record["others"] = [refusal.model_dump(mode="json") for refusal in refusals[1:]]
    plan = outcomes.move(
        rt,
        plan,
        "BLOCKED",
        now,
        blocked_by=[*plan.blocked_by, *refusals],
        record=("blocked", record),
        say=":octagonal_sign: Not applied: " + " · ".join(refusal.message for refusal in refusals),
    )
    return plan.status


def _tampered_mid_apply(plan: Plan, refusal: Refusal, rt: Runtime, now: datetime) -> str:
    """An APPLYING plan that no longer matches its approval (or its own records): FAILED, and nothing touched: its
    content cannot be trusted to say what to apply or to roll back. A human checks what the first executor changed."""
    plan = outcomes.move(
        rt,
        plan,
        "FAILED",
        now,
        unleased=True,
        blocked_by=[*plan.blocked_by, refusal],
        record=("binding_refused", refusal.model_dump(mode="json")),
        say=f":rotating_light: Stopped mid-apply, nothing more changed and nothing rolled back: "
        f"{refusal.message}. A human must check what was applied (the log has each call).",
    )
    return plan.status


def _stopped(
    plan: Plan, applied: list[PlannedAction], rt: Runtime, clients: AwsClients, guard: str, reason: str
) -> str:
    """A resumed apply refused by a control (the kill switch flipped mid-apply) or a guardrail on the live state:
    undo what was applied, stop."""
    now = rt.clock.now()
    rt.ledger.append(plan.id, "stopped", {"guard": guard, "reason": reason}, now)
    errors = undo(plan, applied, rt, clients)
    outcome = f"rollback failed: {'; '.join(errors)}" if errors else "applied steps rolled back"
    by = "the kill switch" if guard == "kill_switch" else f"the guardrail {guard}"
    say = f":octagonal_sign: Stopped by {by} ({reason}); {outcome}."
    plan = outcomes.move(rt, plan, "FAILED" if errors else "ROLLED_BACK", rt.clock.now(), say=say)
    return plan.status


def _apply_time_refusals(plan: Plan, rt: Runtime, now: datetime) -> list[Refusal]:
    """Why an approved plan (bound to its approval) may not be applied now: dry run; the stateful controls (the kill
    switch is read here, at every apply; the first refusal); else every guardrail on the live state."""
    if rt.settings.dry_run:
        return [Refusal(guard="dry_run", limit=True, observed=True, message="dry run is on: plans are never applied")]
    refusals = rt.safety.refusals(plan, now)
    if refusals:
        return refusals[:1]
    return guard_refusals_now(plan, plan.changes, rt, now)


def _drifted(
    plan: Plan,
    action: PlannedAction,
    live: Mapping[str, Any],
    applied: list[PlannedAction],
    rt: Runtime,
    clients: AwsClients,
) -> str:
    errors = undo(plan, applied, rt, clients)
    now = rt.clock.now()
    rt.ledger.append(
        plan.id,
        "drifted",
        {"target": action.target, "expected": action.before, "live": dict(live), "rollback_errors": errors},
        now,
    )
    plan = outcomes.move(
        rt,
        plan,
        "DRIFTED",
        now,
        say=f":twisted_rightwards_arrows: Not applied: {action.target} changed since the plan was made "
        f"(expected {action.before}, found {dict(live)}). Medic does not fight the human.",
    )
    repropose(plan, rt)
    return plan.status


def _failed(
    plan: Plan, action: PlannedAction, exc: Exception, applied: list[PlannedAction], rt: Runtime, clients: AwsClients
) -> str:
    reason = str(exc)
    rt.ledger.append(
        plan.id, "action_failed", {"target": action.target, "action": action.kind, "error": reason}, rt.clock.now()
    )
    if action not in applied and action.applied:
        applied.append(action)
    errors = undo(plan, applied, rt, clients)
    now = rt.clock.now()
    # FAILED: nothing was changed (nothing to undo), or undoing failed; ROLLED_BACK: changes were made and undone.
    if errors:
        outcome = "Rollback failed: " + "; ".join(errors)
    else:
        outcome = "Rolled back." if applied else "Nothing was changed."
    say = f":red_circle: {action.kind} on {action.target} failed: {reason}. {outcome}"
    plan = outcomes.move(rt, plan, "ROLLED_BACK" if applied and not errors else "FAILED", now, say=say)
    return plan.status
