"""The use cases: triage an alarm, decide on an approval, execute a plan, verify it.

Each takes the runtime (settings, clients, clock, ledger, runbook, Slack) explicitly; the Lambda
handlers are thin wrappers that parse and call one of these.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from medic.actions import get_action
from medic.actions.base import PlannedAction
from medic.aws import AwsClients, member_role_arn, partition_of
from medic.binding import apply_records_refusal, binding_refusal, recorded
from medic.clock import iso, parse_iso
from medic.errors import (
    ActionFailed,
    EventError,
    GuardrailRefused,
    LeaseHeld,
    StateConflict,
    VerificationIncomplete,
)
from medic.events import AlarmStateChangeEvent, parse_alarm_event
from medic.facts import FactCollector, Facts
from medic.guardrails import check_budget, check_plan
from medic.ledger import OPEN_PREFIX, ClaimLost
from medic.log import get_logger
from medic.plan import OPEN_STATES, Plan, Refusal, SlackRef, Verification, approval_hash, plan_id
from medic.recheck import guard_refusals
from medic.runbook import decide
from medic.runtime import Runtime
from medic.safety import BREAKER_KEY, KILL_SWITCH_KEY
from medic.signals import Signal, classify

# -- triage ----------------------------------------------------------------------------------------


def triage(raw_event: Mapping[str, Any] | str | bytes, rt: Runtime) -> dict[str, Any]:
    """Alarm event → signal → facts → decision → guarded plan → log → enqueue / Slack.

    Every parsed transition is recorded as a plan. One that must change nothing although it may name a signal and a
    target (`Signal.noop_reason`: an OK or INSUFFICIENT_DATA state, a value that fell, a direction that cannot be
    read) is a NOOP with that reason: no facts, no Slack card, and it never attaches to an open plan on its target."""
    log = get_logger(use_case="triage")
    now = rt.clock.now()
    try:
        event = parse_alarm_event(raw_event)
    except EventError as exc:
        return _reject_event(raw_event, exc, rt, now)
    log = log.bind(alarm=event.detail.alarm_name, state=event.detail.state.value)

    state_ts = iso(event.detail.state.timestamp)
    pid = plan_id(event.alarm_arn, state_ts)
    log = log.bind(plan_id=pid)
    signal = classify(event)
    # One read for what triage consults: this transition's plan, the target's claim, the safety controls.
    rt.ledger.prefetch([pid, OPEN_PREFIX + signal.target.display, KILL_SWITCH_KEY, BREAKER_KEY])
    try:
        return _triage(event, pid, signal, rt, now, log)
    finally:
        rt.ledger.forget_prefetched()


def _triage(
    event: AlarmStateChangeEvent, pid: str, signal: Signal, rt: Runtime, now: datetime, log: Any
) -> dict[str, Any]:
    state_ts = iso(event.detail.state.timestamp)
    existing = rt.ledger.get(pid)
    if existing is not None:
        log.info("duplicate_delivery", status=existing.status)
        carded = existing.diagnosis or existing.blocked_by  # as below: a NOOP without either never had a card
        if existing.status in ("PROPOSED", "BLOCKED", "NOOP") and carded and not existing.slack.ts:
            _post_card(existing, rt, now)  # a retry after a crash between the log write and the post
        elif existing.status == "APPROVED" and "enqueued" not in {e.kind for e in rt.ledger.events(pid)}:
            _enqueue(existing, rt, now)  # a retry after the enqueue failed: an approved plan must reach the executor
            if not existing.slack.ts:
                _post_card(existing, rt, now)
        return {"plan_id": pid, "status": existing.status, "duplicate": True}

    plan = Plan(
        id=pid, status="NOOP", alarm_arn=event.alarm_arn, alarm_name=event.detail.alarm_name,
        state_timestamp=state_ts, account=event.account, region=event.region, signal=signal.kind,
        target=signal.target.display, function_name=signal.target.function_name, qualifier=signal.target.qualifier,
        db_instance=signal.target.db_instance_id,
        metric=_metric_dict(event), dry_run=rt.settings.dry_run, created_at=iso(now), updated_at=iso(now),
    )  # fmt: skip
    reason_data = event.detail.state.reason_data
    if reason_data is not None:
        plan.recent_datapoints = list(reason_data.recent_datapoints)
        plan.alarm_threshold = reason_data.threshold
        plan.alarm_value = reason_data.recent_datapoints[-1] if reason_data.recent_datapoints else None

    held = signal.noop_reason is not None  # a recovery or a fall is not one more alarm of the open plan's incident
    holder = rt.ledger.holder(plan.target) if signal.target.kind != "none" and not held else None
    open_plan = rt.ledger.get(holder) if holder else None
    if open_plan is not None and open_plan.status in OPEN_STATES:
        return _attach(plan, open_plan, event, rt, now)

    facts: Facts | None = None
    undecided = signal.undecided_reason(rt.runbook.tables)
    if undecided is not None:
        plan.reason = undecided
    else:
        facts = fact_collector(plan, rt).collect(signal, event, now)
        if plan.function_name and not plan.qualifier and facts.qualifier and facts.qualifier != "$LATEST":
            plan.qualifier = facts.qualifier  # an unqualified alarm: act on the alias the traffic hits
            plan.target = f"{plan.function_name}:{plan.qualifier}"
        _decide_into(plan, facts, rt, now)

    finished = ("VERIFIED", "FAILED", "ROLLED_BACK")
    if (
        open_plan is not None
        and open_plan.status in finished
        and now - parse_iso(open_plan.updated_at) < timedelta(seconds=rt.settings.cooldown_s)
    ):
        plan.reason = f"flapping: the alarm fired again within the cooldown after {open_plan.id}; " + plan.reason
    records = _triage_records(plan, event, facts)
    try:  # the plan, its first records and (an open plan) its claim on the target: one write
        created = rt.ledger.create(
            plan, records, now, claim=(plan.target, holder) if plan.status in OPEN_STATES else None
        )
    except ClaimLost:
        winner = rt.ledger.get(rt.ledger.holder(plan.target) or "")
        if winner is not None and winner.id != plan.id:
            return _attach(plan, winner, event, rt, now)  # a concurrent triage claimed the target first
        created = rt.ledger.create(plan, records, now)
    if not created:
        log.info("duplicate_delivery", status="raced")
        return {"plan_id": pid, "status": "duplicate", "duplicate": True}
    rt.emit_outcome(plan)
    log.info("plan", status=plan.status, signal=plan.signal, diagnosis=plan.diagnosis, rule=plan.rule)

    with rt.ledger.deferred():  # what follows is logged in one write at the end
        if plan.status == "APPROVED":
            _enqueue(plan, rt, now)
            _post_card(plan, rt, now)
        elif plan.diagnosis or plan.blocked_by:
            _post_card(plan, rt, now)
    return {"plan_id": pid, "status": plan.status, "signal": plan.signal, "diagnosis": plan.diagnosis}


def _attach(plan: Plan, open_plan: Plan, event: AlarmStateChangeEvent, rt: Runtime, now: datetime) -> dict[str, Any]:
    """A storm: the target already has an open plan. Record this alarm as SUPERSEDED by it (one entry, no card)."""
    plan.status = "SUPERSEDED"
    plan.reason = f"attached to the open plan {open_plan.id} on {open_plan.target}"
    superseded = {
        "by": open_plan.id, "event_id": event.id, "alarm_arn": event.alarm_arn, "alarm_name": event.detail.alarm_name,
        "state_timestamp": plan.state_timestamp, "signal": plan.signal, "target": plan.target,
        "reason": event.detail.state.reason,
    }  # fmt: skip
    if not rt.ledger.create(plan, [("superseded", superseded)], now):
        return {"plan_id": plan.id, "status": "duplicate", "duplicate": True}
    rt.ledger.append(open_plan.id, "alarm_attached", {
        "plan_id": plan.id, "alarm_name": plan.alarm_name, "state_timestamp": plan.state_timestamp,
        "value": plan.alarm_value,
    }, now)  # fmt: skip
    if rt.ledger.count_attached(open_plan.id) == 1:  # one thread reply, not one per alarm of a storm
        _reply(open_plan, rt, f":repeat: {plan.alarm_name} fired too ({plan.alarm_value}); attached to this plan. "
                              "Further alarms on this target are in the log.")  # fmt: skip
    rt.emit_outcome(plan)
    get_logger(use_case="triage", plan_id=plan.id).info("attached", to=open_plan.id)
    return {"plan_id": plan.id, "status": "SUPERSEDED", "attached_to": open_plan.id}


def _decide_into(plan: Plan, facts: Facts, rt: Runtime, now: datetime) -> None:
    runbook = rt.runbook
    decision = decide(runbook, plan.signal, facts.values(), facts.tags)
    plan.decision = decision
    plan.runbook, plan.runbook_version = runbook.name, runbook.version
    plan.facts = {k: v for k, v in facts.values().items() if v is not None}
    plan.fact_sources = dict(facts.sources)
    plan.missing_facts = dict(facts.missing)
    if not decision.matched:
        plan.reason = decision.reason
        return
    plan.diagnosis, plan.rule, plan.mode = decision.diagnosis, decision.rule, decision.mode
    plan.rationale, plan.reason = decision.rationale, decision.reason
    plan.rollback_on_failure = decision.verify.rollback_on_failure
    target = _target_of(plan)
    for call in decision.actions:
        try:
            plan.actions.extend(get_action(call.kind).plan(target, call.params, facts))
        except GuardrailRefused as refused:
            plan.blocked_by.append(
                Refusal(guard=refused.guard, limit=refused.limit, observed=refused.observed, message=refused.message)
            )
    plan.blocked_by.extend(check_plan(plan.actions, facts, rt.settings))
    from medic.cost import annotate_costs

    annotate_costs(plan.actions, facts, plan.region, facts.architecture or "x86_64")
    plan.blocked_by.extend(check_budget(plan.actions, rt.settings))
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


def _target_of(plan: Plan) -> Any:
    from medic.signals import Target

    if plan.function_name:
        return Target.function(plan.function_name, plan.qualifier)
    if plan.db_instance:
        return Target.db_instance(plan.db_instance)
    return Target.none()


def _metric_dict(event: AlarmStateChangeEvent) -> dict[str, Any] | None:
    metric = event.detail.configuration.primary_metric
    if metric is None:
        return None
    return {
        "namespace": metric.metric.namespace, "name": metric.metric.name,
        "dimensions": dict(metric.metric.dimensions), "stat": metric.stat, "period": metric.period,
    }  # fmt: skip


def _triage_records(plan: Plan, event: AlarmStateChangeEvent, facts: Facts | None) -> list[tuple[str, dict[str, Any]]]:
    """The records triage starts a plan's chain with: the alarm, the facts, the decision, the guardrails, the plan."""
    records: list[tuple[str, dict[str, Any]]] = [("alarm_received", {
        "event_id": event.id, "alarm_arn": event.alarm_arn, "alarm_name": event.detail.alarm_name,
        "state": event.detail.state.value, "state_timestamp": plan.state_timestamp, "reason": event.detail.state.reason,
        "signal": plan.signal, "target": plan.target,
    })]  # fmt: skip
    if facts is not None:
        records.append(("facts_collected", {
            "facts": plan.facts, "sources": plan.fact_sources, "missing": plan.missing_facts,
        }))  # fmt: skip
    if plan.decision is not None:
        records.append(("decision", plan.decision.model_dump(mode="json")))
    if plan.actions or plan.blocked_by:
        records.append(("guardrails", {
            "clamps": {a.target + " " + a.kind: a.clamps for a in plan.actions if a.clamps},
            "refusals": [r.model_dump(mode="json") for r in plan.blocked_by],
        }))  # fmt: skip
    records.append(("plan_created", {
        "status": plan.status, "diagnosis": plan.diagnosis, "rule": plan.rule, "mode": plan.mode,
        "dry_run": plan.dry_run, "reason": plan.reason, "approval_hash": plan.approval_hash,
        "actions": [{"kind": a.kind, "target": a.target, "before": a.before, "after": a.after} for a in plan.actions],
        "expires_at": plan.expires_at,
    }))  # fmt: skip
    return records


def _reject_event(raw: Any, exc: EventError, rt: Runtime, now: datetime) -> dict[str, Any]:
    """Keep a rejected event in the log (with the raw input, for replay) and say why."""
    import hashlib

    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None
    if text is None:
        text = json.dumps(raw, default=str, sort_keys=True)
    pid = "rejected-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    plan = Plan(
        id=pid, status="NOOP", alarm_arn="", alarm_name="", state_timestamp="", account="", region="",
        signal="unknown", target="(none)", reason=f"rejected input: {exc}", created_at=iso(now), updated_at=iso(now),
    )  # fmt: skip
    rt.ledger.create(plan, [("input_rejected", {"error": str(exc), "field": exc.field, "raw": text[:32_000]})], now)
    get_logger(use_case="triage", plan_id=pid).warning("input_rejected", error=str(exc))
    return {"plan_id": pid, "status": "rejected", "error": str(exc)}


# -- Slack -----------------------------------------------------------------------------------------


def _post_card(plan: Plan, rt: Runtime, now: datetime) -> Plan:
    from slack_sdk.errors import SlackClientError

    from medic.slack.blocks import plan_blocks, plan_summary

    transport = rt.slack
    if transport is None or not rt.settings.slack_channel:
        return plan
    try:
        ts = transport.post(rt.settings.slack_channel, plan_summary(plan), plan_blocks(plan))
    except SlackClientError as exc:
        rt.ledger.append(plan.id, "slack_failed", {"error": type(exc).__name__, "detail": str(exc)[:500]}, now)
        return plan
    rt.ledger.append(plan.id, "slack_posted", {"channel": rt.settings.slack_channel, "ts": ts}, now)
    from medic.slack.graph import attach_metric_graph  # the alarm's graph in the card's thread, when available

    attach_metric_graph(plan, rt, rt.settings.slack_channel, ts, now, cloudwatch=_member_graph_client(plan, rt))
    try:
        return rt.ledger.save(plan, now, slack=SlackRef(channel=rt.settings.slack_channel, ts=ts))
    except StateConflict:
        return plan  # the plan moved on meanwhile (e.g. auto-applied); the card is in the log


def _update_card(plan: Plan, rt: Runtime, note: str) -> None:
    from slack_sdk.errors import SlackClientError

    from medic.slack.blocks import plan_blocks, plan_summary

    if rt.slack is None or not plan.slack.ts:
        return
    try:
        rt.slack.update(plan.slack.channel, plan.slack.ts, plan_summary(plan), plan_blocks(plan, decided_note=note))
    except SlackClientError as exc:
        get_logger(plan_id=plan.id).warning("slack_update_failed", error=str(exc))


def _reply(plan: Plan, rt: Runtime, text: str) -> None:
    from slack_sdk.errors import SlackClientError

    if rt.slack is None or not plan.slack.ts:
        return
    try:
        rt.slack.reply(plan.slack.channel, plan.slack.ts, text)
    except SlackClientError as exc:
        get_logger(plan_id=plan.id).warning("slack_reply_failed", error=str(exc))


def _enqueue(plan: Plan, rt: Runtime, now: datetime) -> None:
    body = json.dumps({"plan_id": plan.id, "approval_hash": plan.approval_hash})
    response = rt.clients.sqs.send_message(QueueUrl=rt.settings.executor_queue_url, MessageBody=body)
    rt.ledger.append(plan.id, "enqueued", {"queue": "executor", "message_id": response.get("MessageId", "")}, now)


# -- executor --------------------------------------------------------------------------------------


def execute_batch(sqs_event: Mapping[str, Any], rt: Runtime) -> dict[str, Any]:
    """SQS records → execute each plan; failed records are reported for redelivery (then the DLQ)."""
    failures: list[dict[str, str]] = []
    for record in sqs_event.get("Records", []):
        message_id = str(record.get("messageId", ""))
        try:
            body = json.loads(record["body"])
            if body.get("rollback") is True:
                rollback_plan(str(body["plan_id"]), rt)
            else:
                execute_plan(str(body["plan_id"]), str(body.get("approval_hash", "")), rt)
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
        owner, until = _lease_terms(now, rt)
        plan = rt.ledger.lease(plan, now, until, owner, record=("applying", {
            "actions": len(plan.changes), "lease_owner": owner, "lease_until": iso(until),
        }))  # fmt: skip
        clients = action_clients(plan, rt)
    else:
        # APPLYING with its lease expired: a redelivery after a crash mid-apply (or the verifier's re-drive). Take the
        # plan over only if it is still what was approved, then read the kill switch and the guardrails again.
        binding = binding or apply_records_refusal(plan, events, head)
        if binding:
            return _tampered_mid_apply(plan, binding, rt, now)
        owner, until = _lease_terms(now, rt)
        plan = rt.ledger.lease(plan, now, until, owner, record=("lease_taken_over", {
            "previous_owner": plan.lease_owner, "expired_at": plan.lease_until, "lease_owner": owner,
            "lease_until": iso(until),
        }))  # fmt: skip
        clients = action_clients(plan, rt)
        done = [a for a in plan.changes if a.applied]
        switch = rt.safety.kill_switch()
        if switch.enabled:
            return _stopped(plan, done, rt, clients, "kill_switch", switch.reason or "no reason given")
        refusals = _guard_refusals(plan, plan.changes, rt, now)
        if refusals:
            return _stopped(plan, done, rt, clients, refusals[0].guard, "; ".join(r.message for r in refusals))

    applied: list[PlannedAction] = []
    for action in plan.changes:
        impl = get_action(action.kind)
        try:
            live = impl.read_live(clients, action)
        except _aws_errors() as exc:  # botocore's own (ParamValidationError...) too: a failure like any other
            return _failed(plan, action, exc, applied, rt, clients)
        if action.applied or _same(live, action.after):
            # Resumed after a crash: the change is already there, never apply twice; but wait for it to take
            # effect (a PC allocation may have FAILED while the executor was down).
            action.applied = True
            applied.append(action)
            if not action.observed_after:
                rt.ledger.append(pid, "change_found_applied", {"target": action.target, "live": dict(live)},
                                 rt.clock.now())  # fmt: skip
                try:
                    action.observed_after = impl.wait(clients, action, rt.clock, rt.settings.pc_ready_timeout_s)
                except _aws_errors() as exc:
                    return _failed(plan, action, exc, applied, rt, clients)
            continue
        if not _same(live, action.before):
            return _drifted(plan, action, live, applied, rt, clients)
        try:
            request = impl.apply(clients, action)
            action.applied = True
            action.request_ids.append(request)
            applied.append(action)
            plan = rt.ledger.save(plan, rt.clock.now(), record=("aws_call", {
                "action": action.kind, "target": action.target, "request_id": request,
                "before": action.before, "after": action.after, "recorded": recorded(action),
            }))  # fmt: skip
            action.observed_after = impl.wait(clients, action, rt.clock, rt.settings.pc_ready_timeout_s)
            rt.ledger.append(pid, "change_effective", {"target": action.target, "observed": action.observed_after},
                             rt.clock.now())  # fmt: skip
        except _aws_errors() as exc:
            return _failed(plan, action, exc, applied, rt, clients)

    now = rt.clock.now()
    verify_after = now + timedelta(seconds=rt.settings.verify_after_s)
    plan = rt.ledger.transition(plan, "APPLIED", now, applied_at=iso(now), verify_after=iso(verify_after),
                                record=("applied", {"verify_after": iso(verify_after)}))  # fmt: skip
    rt.emit_outcome(plan)
    changes = "; ".join(describe_change(a) for a in plan.changes)
    _reply(plan, rt, f":wrench: Applied: {changes}. Verifying after {plan.verify_after}.")
    log.info("applied")
    return plan.status


def _blocked(plan: Plan, refusals: list[Refusal], rt: Runtime, now: datetime) -> str:
    """APPROVED → BLOCKED before anything is changed: the refusals on the plan, the first (with the others) logged,
    the Slack thread told."""
    record = refusals[0].model_dump(mode="json")
    if len(refusals) > 1:
        record["others"] = [refusal.model_dump(mode="json") for refusal in refusals[1:]]
    plan = rt.ledger.transition(plan, "BLOCKED", now, blocked_by=[*plan.blocked_by, *refusals],
                                record=("blocked", record))  # fmt: skip
    rt.emit_outcome(plan)
    _reply(plan, rt, ":octagonal_sign: Not applied: " + " · ".join(refusal.message for refusal in refusals))
    return plan.status


def _tampered_mid_apply(plan: Plan, refusal: Refusal, rt: Runtime, now: datetime) -> str:
    """An APPLYING plan that no longer matches its approval (or its own records): FAILED, and nothing touched: its
    content cannot be trusted to say what to apply or to roll back. A human checks what the first executor changed."""
    plan = rt.ledger.transition(plan, "FAILED", now, unleased=True, blocked_by=[*plan.blocked_by, refusal],
                                record=("binding_refused", refusal.model_dump(mode="json")))  # fmt: skip
    rt.emit_outcome(plan)
    _reply(plan, rt, f":rotating_light: Stopped mid-apply, nothing more changed and nothing rolled back: "
                     f"{refusal.message}. A human must check what was applied (the log has each call).")  # fmt: skip
    return plan.status


def _lease_terms(now: datetime, rt: Runtime) -> tuple[str, datetime]:
    """A new owner id for this executor's hold on a plan, and when the hold ends (the executor's timeout: a live
    executor never outlives it)."""
    import os

    return os.urandom(6).hex(), now + timedelta(seconds=rt.settings.executor_lease_s)


def _stopped(plan: Plan, applied: list[PlannedAction], rt: Runtime, clients: AwsClients, guard: str,
             reason: str) -> str:  # fmt: skip
    """A resumed apply refused by a control (the kill switch flipped mid-apply) or a guardrail on the live state:
    undo what was applied, stop."""
    now = rt.clock.now()
    rt.ledger.append(plan.id, "stopped", {"guard": guard, "reason": reason}, now)
    errors = _rollback(plan, applied, rt, clients)
    plan = rt.ledger.transition(plan, "FAILED" if errors else "ROLLED_BACK", rt.clock.now())
    rt.emit_outcome(plan)
    outcome = f"rollback failed: {'; '.join(errors)}" if errors else "applied steps rolled back"
    by = "the kill switch" if guard == "kill_switch" else f"the guardrail {guard}"
    _reply(plan, rt, f":octagonal_sign: Stopped by {by} ({reason}); {outcome}.")
    return plan.status


def describe_change(action: PlannedAction) -> str:
    """One line for humans: every field that changes, and what AWS still has to do (e.g. a pending request)."""
    fields = ", ".join(
        f"{key} {action.before.get(key)} → {value}"
        for key, value in action.after.items()
        if action.before.get(key) != value
    )
    status = action.observed_after.get("request_status")
    pending = f" (request {status}: AWS applies it after review)" if status else ""
    return f"{action.kind} on {action.target}: {fields or 'no field changes'}{pending}"


def action_clients(plan: Plan, rt: Runtime) -> AwsClients:
    """The clients the plan's changes are made with: the actions role assumed for this plan (session = plan id,
    SourceIdentity = the approver, both in CloudTrail), or the runtime's own clients when no role is set. A plan in
    another account of the organization goes one hop further, into that account's remediation role (which trusts the
    actions role only): the `session` event then names the member session, its account, and the first hop (`via`)."""
    approver = plan.decided_by[0] if plan.decided_by else "medic"
    clients, session = rt.clients, dict[str, Any]()
    if rt.settings.actions_role_arn:
        clients, session = rt.clients.assume(rt.settings.actions_role_arn, plan.id, approver)
    member = member_role_arn(rt.settings.account_id, plan.account, rt.settings.member_role_name,
                             partition_of(plan.alarm_arn))  # fmt: skip
    if member is not None:
        clients, hop = clients.assume(member, plan.id, approver)
        session = {**hop, "account": plan.account, **({"via": session} if session else {})}
    if session:
        rt.ledger.append(plan.id, "session", session, rt.clock.now())
    return clients


#: The session name of the read-only role in member accounts (CloudTrail in the member account: Medic read this).
READ_SESSION_NAME = "medic-read"


def target_clients(plan: Plan, rt: Runtime) -> AwsClients:
    """The clients that read the plan's account: the runtime's own in Medic's account; in another account of the
    organization, that account's read-only role (assumed once per environment, renewed before it expires)."""
    role = member_role_arn(rt.settings.account_id, plan.account, rt.settings.member_read_role_name,
                           partition_of(plan.alarm_arn), setting="MEDIC_MEMBER_READ_ROLE_NAME")  # fmt: skip
    return rt.clients if role is None else rt.clients.reader(role, READ_SESSION_NAME)


def fact_collector(plan: Plan, rt: Runtime) -> FactCollector:
    """The runtime's collector, or, for a plan in a member account, one reading it through `target_clients`."""
    clients = target_clients(plan, rt)
    return rt.collector if clients is rt.clients else FactCollector(clients, rt.settings.opt_in_tag)


def _member_graph_client(plan: Plan, rt: Runtime) -> Any:
    """CloudWatch in the plan's member account for the card's graph, with slack.graph's one-attempt, short-timeout
    config (None in Medic's own account: the graph makes its own client)."""
    clients = target_clients(plan, rt)
    if clients is rt.clients:
        return None
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
    return clients.with_config(config).cloudwatch


def _aws_errors() -> tuple[type[Exception], ...]:
    """What a step of an apply or a rollback may raise that fails the plan (not the executor): the action's own
    refusal, AWS's answers, and botocore's own errors raised before or instead of a call (a `ParamValidationError`
    such as a provisioned concurrency of 0, a connection or read timeout)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return ActionFailed, ClientError, BotoCoreError


def _same(live: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    return all(live.get(key) == value for key, value in expected.items())


def _apply_time_refusals(plan: Plan, rt: Runtime, now: datetime) -> list[Refusal]:
    """Why an approved plan (bound to its approval) may not be applied now: dry run; the stateful controls (the kill
    switch is read here, at every apply; the first refusal); else every guardrail on the live state."""
    if rt.settings.dry_run:
        return [Refusal(guard="dry_run", limit=True, observed=True, message="dry run is on: plans are never applied")]
    refusals = rt.safety.refusals(plan, now)
    if refusals:
        return refusals[:1]
    return _guard_refusals(plan, plan.changes, rt, now)


def _guard_refusals(plan: Plan, actions: list[PlannedAction], rt: Runtime, now: datetime) -> list[Refusal]:
    """The guardrails on `actions` as approved, against the facts re-read now (`medic.recheck`)."""
    if not actions:
        return []
    signal = Signal(kind=plan.signal, target=_target_of(plan), metric=None, reason="re-read at apply")
    facts = fact_collector(plan, rt).collect(signal, None, now)
    return guard_refusals(actions, facts, rt.settings, plan.region)


def _rollback(plan: Plan, applied: list[PlannedAction], rt: Runtime, clients: AwsClients) -> list[str]:
    errors: list[str] = []
    for action in reversed(applied):
        try:
            request = get_action(action.kind).rollback(clients, action)
            rt.ledger.append(plan.id, "rollback", {"target": action.target, "restored": action.before,
                                                   "request_id": request}, rt.clock.now())  # fmt: skip
        except _aws_errors() as exc:
            errors.append(f"{action.target}: {exc}")
            rt.ledger.append(plan.id, "rollback_failed", {"target": action.target, "error": str(exc)}, rt.clock.now())
    return errors


def _drifted(plan: Plan, action: PlannedAction, live: Mapping[str, Any], applied: list[PlannedAction],
             rt: Runtime, clients: AwsClients) -> str:  # fmt: skip
    errors = _rollback(plan, applied, rt, clients)
    now = rt.clock.now()
    rt.ledger.append(plan.id, "drifted", {"target": action.target, "expected": action.before, "live": dict(live),
                                          "rollback_errors": errors}, now)  # fmt: skip
    plan = rt.ledger.transition(plan, "DRIFTED", now)
    rt.emit_outcome(plan)
    _reply(plan, rt, f":twisted_rightwards_arrows: Not applied: {action.target} changed since the plan was made "
                     f"(expected {action.before}, found {dict(live)}). Medic does not fight the human.")  # fmt: skip
    repropose(plan, rt)
    return plan.status


#: How many times one alarm transition is re-proposed after drift (then a human takes over).
MAX_REPROPOSALS = 2


def repropose(plan: Plan, rt: Runtime) -> Plan | None:
    """After drift, decide again from the live state: a new plan for the same alarm (`<id>-r1`, `-r2`), through
    the same facts → runbook → guardrails → approval path. It is never applied on the old approval."""
    base = plan.id.split("-r")[0] if "-r" in plan.id.removeprefix("p-") else plan.id
    taken = [n for n in range(1, MAX_REPROPOSALS + 1) if rt.ledger.get(f"{base}-r{n}") is not None]
    if len(taken) >= MAX_REPROPOSALS:
        rt.ledger.append(plan.id, "not_reproposed", {"reason": f"already re-proposed {len(taken)} times"},
                         rt.clock.now())  # fmt: skip
        return None
    now = rt.clock.now()
    fresh = plan.model_copy(update={
        "id": f"{base}-r{len(taken) + 1}", "status": "NOOP", "created_at": iso(now), "updated_at": iso(now),
        "diagnosis": None, "rule": None, "mode": None, "rationale": "", "reason": "", "actions": [], "blocked_by": [],
        "decision": None, "approval_hash": "", "decided_by": [], "slack": SlackRef(), "expires_at": None,
        "applied_at": None, "verify_after": None, "verification": None,
    })  # fmt: skip
    reason = f"re-proposed after {plan.id} drifted"
    signal = Signal(kind=plan.signal, target=_target_of(plan), metric=None, reason=reason)
    facts = fact_collector(plan, rt).collect(signal, None, now)
    facts.alarm_value, facts.alarm_threshold = plan.alarm_value, plan.alarm_threshold
    _decide_into(fresh, facts, rt, now)
    fresh.reason = f"re-proposed from the live state after {plan.id} drifted; " + fresh.reason
    if fresh.status in OPEN_STATES:
        rt.ledger.claim(fresh.target, fresh.id, stale_holder=rt.ledger.holder(fresh.target))
    if not rt.ledger.create(fresh):
        return None
    rt.ledger.append(plan.id, "reproposed", {"plan_id": fresh.id, "status": fresh.status}, now)
    rt.ledger.append(fresh.id, "reproposal_of", {"plan_id": plan.id, "facts": fresh.facts,
                                                 "missing": fresh.missing_facts}, now)  # fmt: skip
    if fresh.decision is not None:
        rt.ledger.append(fresh.id, "decision", fresh.decision.model_dump(mode="json"), now)
    created = {"status": fresh.status, "diagnosis": fresh.diagnosis, "rule": fresh.rule,
               "approval_hash": fresh.approval_hash}  # fmt: skip
    rt.ledger.append(fresh.id, "plan_created", created, now)
    if fresh.status == "APPROVED":
        _enqueue(fresh, rt, now)
    _post_card(fresh, rt, now)
    return fresh


def _failed(
    plan: Plan, action: PlannedAction, exc: Exception, applied: list[PlannedAction], rt: Runtime, clients: AwsClients
) -> str:
    reason = str(exc)
    rt.ledger.append(plan.id, "action_failed", {"target": action.target, "action": action.kind, "error": reason},
                     rt.clock.now())  # fmt: skip
    if action not in applied and action.applied:
        applied.append(action)
    errors = _rollback(plan, applied, rt, clients)
    now = rt.clock.now()
    # FAILED: nothing was changed (nothing to undo), or undoing failed; ROLLED_BACK: changes were made and undone.
    plan = rt.ledger.transition(plan, "ROLLED_BACK" if applied and not errors else "FAILED", now)
    rt.emit_outcome(plan)
    if errors:
        outcome = "Rollback failed: " + "; ".join(errors)
    else:
        outcome = "Rolled back." if applied else "Nothing was changed."
    _reply(plan, rt, f":red_circle: {action.kind} on {action.target} failed: {reason}. {outcome}")
    return plan.status


# -- verifier --------------------------------------------------------------------------------------

_BREACHING: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


#: How long the verifier keeps handing a FAILED plan's rollback to the executor when the hand-off fails.
ROLLBACK_HANDOFF_RETRY = timedelta(hours=24)


def verify_applied(rt: Runtime) -> dict[str, Any]:
    """Plans APPLIED past their verification time: alarm back to OK → VERIFIED; still ALARM → FAILED. Plans APPLYING
    past their executor's lease: re-driven, then failed (`stale_apply`).

    Each plan is verified on its own: one that cannot be (CloudWatch failing, a member account's role missing)
    never stalls the others; the run then fails (Lambda retries it, its errors alarm) after doing the rest. A FAILED
    plan whose rollback could not be handed to the executor is handed again on the next runs."""
    now = rt.clock.now()
    outcomes: dict[str, str] = {}
    errors: dict[str, str] = {}
    for plan in rt.ledger.by_state("APPLIED"):
        if plan.verify_after and now < parse_iso(plan.verify_after):
            outcomes[plan.id] = "waiting"
            continue
        outcomes[plan.id] = _each(plan, rt, errors, lambda p: verify_plan(p, rt, now))
    for plan in rt.ledger.by_state("APPLYING"):
        if not plan.lease_until or plan.lease_until <= iso(now):  # no executor holds it: it died, or never ran
            outcomes[plan.id] = _each(plan, rt, errors, lambda p: stale_apply(p, rt, now))
    for plan in rt.ledger.by_state("FAILED", since=iso(now - ROLLBACK_HANDOFF_RETRY)):
        wanted = plan.rollback_on_failure or plan.abandoned_at
        if wanted and not plan.rollback_requested_at and plan.id not in outcomes:
            outcomes[plan.id] = _each(plan, rt, errors, lambda p: _request_rollback(p, rt, now))
    if errors:
        raise VerificationIncomplete(errors)
    return {"checked": len(outcomes), "outcomes": outcomes}


#: How many times the verifier hands an apply whose executor's lease expired back to the executor before failing it.
MAX_REDRIVES = 2


def stale_apply(plan: Plan, rt: Runtime, now: datetime) -> str:
    """An APPLYING plan whose executor's lease has expired (the executor died, its message ended in the DLQ, it was
    stopped by an error it did not handle): no plan stays in a transient state, holding its target, past its lease.

    It is re-driven through the executor queue (`redriven`), which takes it over as after a crash (the approval, the
    kill switch and the guardrails checked again), at most `MAX_REDRIVES` times, each once the previous one had an
    executor's lease of time to be taken; after that it is FAILED (`apply_abandoned`, `abandoned_at`) and its applied
    steps are handed to the executor to roll back. The thread is told."""
    redrives = [event for event in rt.ledger.events(plan.id) if event.kind == "redriven"]
    lease = plan.lease_until or ""
    if redrives:
        last = redrives[-1]
        waited = now - parse_iso(last.at) < timedelta(seconds=rt.settings.executor_lease_s)
        if last.data.get("lease_until") == lease and waited:
            return "redrive_pending"  # not taken over yet: give the executor its time
    if len(redrives) < MAX_REDRIVES:
        body = json.dumps({"plan_id": plan.id, "approval_hash": plan.approval_hash})
        response = rt.clients.sqs.send_message(QueueUrl=rt.settings.executor_queue_url, MessageBody=body)
        rt.ledger.append(plan.id, "redriven", {
            "attempt": len(redrives) + 1, "of": MAX_REDRIVES, "lease_until": lease, "lease_owner": plan.lease_owner,
            "message_id": response.get("MessageId", ""),
        }, now)  # fmt: skip
        return "redriven"
    abandoned = {"redrives": len(redrives), "lease_until": lease, "lease_owner": plan.lease_owner}
    try:  # only while no executor holds it: one that took it over meanwhile finishes it
        plan = rt.ledger.transition(plan, "FAILED", now, unleased=True, abandoned_at=iso(now),
                                    record=("apply_abandoned", abandoned))  # fmt: skip
    except StateConflict:
        return "taken_over"
    rt.emit_outcome(plan)
    _reply(plan, rt, f":red_circle: The apply never finished (re-driven {len(redrives)} times, the executor's lease "
                     f"expired each time): FAILED; whatever it changed is handed back to be rolled back.")  # fmt: skip
    _handoff_rollback(plan, rt, now)
    _update_card(plan, rt, "apply abandoned")
    return "FAILED"


def _each(plan: Plan, rt: Runtime, errors: dict[str, str], step: Callable[[Plan], str]) -> str:
    try:
        return step(plan)
    except Exception as exc:  # noqa: BLE001 - one plan's failure is logged and reported; the others go on
        get_logger(use_case="verifier", plan_id=plan.id).exception("verification_error")
        errors[plan.id] = f"{type(exc).__name__}: {exc}"[:300]
        return "error"


def verify_plan(plan: Plan, rt: Runtime, now: datetime) -> str:
    alarms = target_clients(plan, rt).cloudwatch.describe_alarms(AlarmNames=[plan.alarm_name])["MetricAlarms"]
    if not alarms:
        return "alarm_missing"
    alarm = alarms[0]
    state = alarm["StateValue"]
    threshold = float(alarm.get("Threshold", 0.0))
    breaching = _BREACHING.get(alarm.get("ComparisonOperator", ""), _BREACHING["GreaterThanThreshold"])
    datapoints = _datapoints_since(plan, rt, parse_iso(plan.applied_at or plan.updated_at), now)
    verification = Verification(alarm_state=state, datapoints=datapoints, threshold=threshold, checked_at=iso(now))
    if not datapoints or state == "INSUFFICIENT_DATA":
        return "awaiting_data"
    latest = datapoints[-1]
    if state == "OK" and not breaching(latest, threshold):
        note = f"alarm OK; latest {latest:g} within threshold {threshold:g}"
        reply = f":large_green_circle: Verified: {note} (since the change: {', '.join(f'{v:g}' for v in datapoints)})."
        return _conclude(plan, rt, now, verification, "VERIFIED", note, reply)
    if state == "ALARM" and (waiting := _quota_undecided(plan, rt, now) or _connections_settling(plan, rt, now)):
        return waiting
    if state == "ALARM":
        note = f"alarm still ALARM after the change; latest {latest:g} vs threshold {threshold:g}"
        rollback = " (rollback requested by the rule)" if plan.rollback_on_failure else ""
        reply = f":red_circle: Not fixed: {note}. Escalating to a human{rollback}."
        return _conclude(plan, rt, now, verification, "FAILED", note, reply)
    return "awaiting_data"


#: How long a plan that asked AWS for a higher concurrency quota waits for AWS's decision before it is judged.
QUOTA_DECISION_WAIT = timedelta(days=7)


def _quota_undecided(plan: Plan, rt: Runtime, now: datetime) -> str | None:
    """A plan whose change is a quota increase AWS has not granted yet is not judged on an alarm still firing: AWS
    reviews such requests (hours to days), so the plan stays APPLIED ("awaiting_quota", said once in the thread)
    until the account's limit reaches what was asked, or `QUOTA_DECISION_WAIT` has passed."""
    asked = [int(a.after.get("account_concurrency_limit") or 0) for a in plan.changes
             if a.kind == "request_quota_increase"]  # fmt: skip
    if not asked or now - parse_iso(plan.applied_at or plan.updated_at) > QUOTA_DECISION_WAIT:
        return None
    limit = target_clients(plan, rt).lambda_.get_account_settings()["AccountLimit"].get("ConcurrentExecutions", 0)
    if int(limit) >= max(asked):
        return None  # granted: the alarm is judged as any other
    if "awaiting_quota" not in {event.kind for event in rt.ledger.events(plan.id)}:
        rt.ledger.append(plan.id, "awaiting_quota", {"limit": limit, "asked": max(asked)}, now)
        _reply(plan, rt, f":hourglass_flowing_sand: The alarm still fires: the account's limit is {limit}, AWS has not "
                         f"granted the {max(asked)} asked yet. Verifying once it has (or in {QUOTA_DECISION_WAIT.days} "
                         "days).")  # fmt: skip
    return "awaiting_quota"


#: How long a database-connections plan is given before a still-firing alarm fails it. A cap on the consumers stops
#: new connections at once, but the open ones are released only as the idle execution environments holding them are
#: reclaimed (AWS documents no idle lifetime: minutes, not seconds) or the database closes idle sessions.
CONNECTIONS_SETTLE = timedelta(minutes=30)


def _connections_settling(plan: Plan, rt: Runtime, now: datetime) -> str | None:
    """A db_connections plan whose alarm still fires within `CONNECTIONS_SETTLE` of its change stays APPLIED
    ("settling", said once in the thread) and is verified again by the next runs; past it, it is judged."""
    applied = parse_iso(plan.applied_at or plan.updated_at)
    if plan.signal != "db_connections" or now - applied >= CONNECTIONS_SETTLE:
        return None
    if "settling" not in {event.kind for event in rt.ledger.events(plan.id)}:
        until = applied + CONNECTIONS_SETTLE
        rt.ledger.append(plan.id, "settling", {"until": iso(until)}, now)
        _reply(plan, rt, ":hourglass_flowing_sand: The alarm still fires: open connections close only as the idle "
                         "execution environments holding them are reclaimed. Verifying again until "
                         f"{iso(until)}.")  # fmt: skip
    return "settling"


def _conclude(
    plan: Plan, rt: Runtime, now: datetime, verification: Verification, outcome: str, note: str, reply: str
) -> str:
    verification = verification.model_copy(update={"outcome": outcome, "note": note})
    plan = rt.ledger.transition(plan, outcome, now, verification=verification)
    rt.emit_outcome(plan)
    rt.ledger.append(plan.id, "verified" if outcome == "VERIFIED" else "verification_failed",
                     verification.model_dump(mode="json"), now)  # fmt: skip
    _reply(plan, rt, reply)
    if outcome == "FAILED" and plan.rollback_on_failure:
        plan = _handoff_rollback(plan, rt, now)
    _update_card(plan, rt, "verified" if outcome == "VERIFIED" else "verification failed")
    return outcome


def _handoff_rollback(plan: Plan, rt: Runtime, now: datetime) -> Plan:
    """The verifier holds no change permissions: the rollback is the executor's job. The hand-off is kept on the
    plan (`rollback_requested_at`, with its record): a plan without it is handed again by the next run."""
    body = json.dumps({"plan_id": plan.id, "rollback": True})
    response = rt.clients.sqs.send_message(QueueUrl=rt.settings.executor_queue_url, MessageBody=body)
    record = {"by": "verifier", "message_id": response.get("MessageId", "")}
    return rt.ledger.save(plan, now, rollback_requested_at=iso(now), record=("rollback_requested", record))


def _request_rollback(plan: Plan, rt: Runtime, now: datetime) -> str:
    """A FAILED plan whose rollback hand-off failed in an earlier run (SQS down): hand it again."""
    _handoff_rollback(plan, rt, now)
    return "rollback_requested"


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
        _reply(plan, rt, f":rotating_light: Not rolled back: {refusal.message}. A human must restore it.")
        return plan.status
    owner, until = _lease_terms(now, rt)
    plan = rt.ledger.lease(plan, now, until, owner, hold="FAILED", record=("rolling_back", {
        "actions": len([a for a in plan.changes if a.applied]), "lease_owner": owner, "lease_until": iso(until),
        **({"previous_owner": plan.lease_owner} if plan.lease_owner else {}),
    }))  # fmt: skip
    clients = action_clients(plan, rt)
    applied = [a for a in plan.changes if a.applied or (plan.abandoned_at and _found_applied(plan, a, rt, clients))]
    if not applied:
        rt.ledger.append(plan.id, "nothing_to_roll_back", {"reason": "no change of the plan reached AWS"}, now)
        _reply(plan, rt, ":information_source: Nothing to roll back: no change of this plan had reached AWS.")
        return plan.status
    errors = _rollback(plan, applied, rt, clients)
    if errors:
        _reply(plan, rt, f":red_circle: Rollback failed: {'; '.join(errors)}. A human must restore it.")
        return plan.status
    plan = rt.ledger.transition(plan, "ROLLED_BACK", rt.clock.now())
    rt.emit_outcome(plan)
    why = "as the rule asks" if plan.rollback_on_failure else "after the abandoned apply"
    _reply(plan, rt, f":rewind: Rolled back {why}: every change restored to its before-state.")
    _update_card(plan, rt, "verification failed; rolled back" if plan.rollback_on_failure else "apply abandoned")
    return plan.status


def _found_applied(plan: Plan, action: PlannedAction, rt: Runtime, clients: AwsClients) -> bool:
    """An abandoned apply may have made a change it never recorded (it died between the call and the record): the
    live state at `after` (and not at `before`) says so."""
    try:
        live = get_action(action.kind).read_live(clients, action)
    except _aws_errors():
        return False
    if not _same(live, action.after) or _same(live, action.before):
        return False
    rt.ledger.append(plan.id, "change_found_applied", {"target": action.target, "live": dict(live)}, rt.clock.now())
    return True


def _datapoints_since(plan: Plan, rt: Runtime, since: datetime, now: datetime) -> list[float]:
    metric = plan.metric
    if not metric:
        return []
    period = int(metric["period"])
    start = datetime.fromtimestamp(int(since.timestamp()) // period * period, tz=since.tzinfo)
    end = datetime.fromtimestamp(-(-int(now.timestamp()) // period) * period, tz=now.tzinfo)
    if end <= start:
        return []
    response = target_clients(plan, rt).cloudwatch.get_metric_data(
        MetricDataQueries=[{
            "Id": "alarm",
            "MetricStat": {
                "Metric": {
                    "Namespace": metric["namespace"], "MetricName": metric["name"],
                    "Dimensions": [{"Name": k, "Value": v} for k, v in metric["dimensions"].items()],
                },
                "Period": period, "Stat": metric["stat"],
            },
        }],
        StartTime=start, EndTime=end, ScanBy="TimestampAscending",
    )  # fmt: skip
    results = response["MetricDataResults"]
    return [float(v) for v in results[0].get("Values", [])] if results else []
