"""The use cases: triage an alarm, decide on an approval, execute a plan, verify it.

Each takes the runtime (settings, clients, clock, ledger, runbook, Slack) explicitly; the Lambda
handlers are thin wrappers that parse and call one of these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from medic import outcomes, queue
from medic.accounts import fact_collector
from medic.alarms.events import AlarmStateChangeEvent, parse_alarm_event
from medic.alarms.signals import Signal, classify
from medic.clock import iso, parse_iso
from medic.errors import (
    EventError,
)
from medic.facts import Facts
from medic.ledger.keys import REJECTED_PREFIX
from medic.ledger.store import OPEN_PREFIX, ClaimLost
from medic.log import get_logger
from medic.plan import OPEN_STATES, Plan, plan_id
from medic.planning.make import make_plan
from medic.promotions.effect import promotion_keys
from medic.runtime import Runtime
from medic.safety import BREAKER_KEY, KILL_SWITCH_KEY
from medic.stacks import WARNING_RECORD


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
    # One read for what triage consults: this transition's plan, the target's claim, the safety controls, and the
    # promotions the decided row may hold on the target (BatchGetItem takes 100 keys; any left out are read later).
    keys = [pid, OPEN_PREFIX + signal.target.display, KILL_SWITCH_KEY, BREAKER_KEY]
    if signal.undecided_reason(rt.runbook.tables) is None:
        keys += promotion_keys(signal.kind, signal.target.display, rt)
    rt.ledger.prefetch(keys[:100])
    try:
        return _triage(event, pid, signal, rt, now, log)
    finally:
        rt.ledger.forget_prefetched()


def new_plan(event: AlarmStateChangeEvent, signal: Signal, at: str, **fields: Any) -> Plan:
    """The plan of one alarm transition before anything is decided (a NOOP naming the alarm and its target), created
    and updated `at`; `fields` set more of it. Its id is the transition's (`plan_id`): one plan per transition."""
    stamp = iso(event.detail.state.timestamp)
    return Plan(
        id=plan_id(event.alarm_arn, stamp),
        status="NOOP",
        alarm_arn=event.alarm_arn,
        alarm_name=event.detail.alarm_name,
        state_timestamp=stamp,
        account=event.account,
        region=event.region,
        signal=signal.kind,
        target=signal.target.display,
        function_name=signal.target.function_name,
        qualifier=signal.target.qualifier,
        db_instance=signal.target.db_instance_id,
        created_at=at,
        updated_at=at,
        **fields,
    )


def _triage(
    event: AlarmStateChangeEvent, pid: str, signal: Signal, rt: Runtime, now: datetime, log: Any
) -> dict[str, Any]:
    existing = rt.ledger.get(pid)
    if existing is not None:
        log.info("duplicate_delivery", status=existing.status)
        carded = existing.diagnosis or existing.blocked_by  # as below: a NOOP without either never had a card
        if existing.status in ("PROPOSED", "BLOCKED", "NOOP") and carded and not existing.slack.ts:
            outcomes.post_card(existing, rt, now)  # a retry after a crash between the log write and the post
        elif existing.status == "APPROVED" and "enqueued" not in {e.kind for e in rt.ledger.events(pid)}:
            # A retry after the enqueue failed: an approved plan must reach the executor.
            queue.enqueue(existing, rt, now)
            if not existing.slack.ts:
                outcomes.post_card(existing, rt, now)
        return {"plan_id": pid, "status": existing.status, "duplicate": True}

    plan = new_plan(event, signal, iso(now), metric=_metric_dict(event), dry_run=rt.settings.dry_run)
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
        facts = fact_collector(plan, rt).on_demand(signal, event, now)  # each fact read when first needed
        if plan.function_name and not plan.qualifier and facts.qualifier and facts.qualifier != "$LATEST":
            plan.qualifier = facts.qualifier  # an unqualified alarm: act on the alias the traffic hits
            plan.target = f"{plan.function_name}:{plan.qualifier}"
        make_plan(plan, facts, rt, now)

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
            queue.enqueue(plan, rt, now)
            outcomes.post_card(plan, rt, now)
        elif plan.diagnosis or plan.blocked_by:
            outcomes.post_card(plan, rt, now)
    return {"plan_id": pid, "status": plan.status, "signal": plan.signal, "diagnosis": plan.diagnosis}


def _attach(plan: Plan, open_plan: Plan, event: AlarmStateChangeEvent, rt: Runtime, now: datetime) -> dict[str, Any]:
    """A storm: the target already has an open plan. Record this alarm as SUPERSEDED by it (one entry, no card)."""
    plan.status = "SUPERSEDED"
    plan.reason = f"attached to the open plan {open_plan.id} on {open_plan.target}"
    superseded = {
        "by": open_plan.id,
        "event_id": event.id,
        "alarm_arn": event.alarm_arn,
        "alarm_name": event.detail.alarm_name,
        "state_timestamp": plan.state_timestamp,
        "signal": plan.signal,
        "target": plan.target,
        "reason": event.detail.state.reason,
    }
    if not rt.ledger.create(plan, [("superseded", superseded)], now):
        return {"plan_id": plan.id, "status": "duplicate", "duplicate": True}
    rt.ledger.append(
        open_plan.id,
        "alarm_attached",
        {
            "plan_id": plan.id,
            "alarm_name": plan.alarm_name,
            "state_timestamp": plan.state_timestamp,
            "value": plan.alarm_value,
        },
        now,
    )
    if rt.ledger.count_attached(open_plan.id) == 1:  # one thread reply, not one per alarm of a storm
        outcomes.reply(
            open_plan,
            rt,
            f":repeat: {plan.alarm_name} fired too ({plan.alarm_value}); attached to this plan. "
            "Further alarms on this target are in the log.",
        )
    rt.emit_outcome(plan)
    get_logger(use_case="triage", plan_id=plan.id).info("attached", to=open_plan.id)
    return {"plan_id": plan.id, "status": "SUPERSEDED", "attached_to": open_plan.id}


def _metric_dict(event: AlarmStateChangeEvent) -> dict[str, Any] | None:
    metric = event.detail.configuration.primary_metric
    if metric is None:
        return None
    return {
        "namespace": metric.metric.namespace,
        "name": metric.metric.name,
        "dimensions": dict(metric.metric.dimensions),
        "stat": metric.stat,
        "period": metric.period,
    }


def _triage_records(plan: Plan, event: AlarmStateChangeEvent, facts: Facts | None) -> list[tuple[str, dict[str, Any]]]:
    """The records triage starts a plan's chain with: the alarm, the facts, the decision, the guardrails, the plan."""
    records: list[tuple[str, dict[str, Any]]] = [
        (
            "alarm_received",
            {
                "event_id": event.id,
                "alarm_arn": event.alarm_arn,
                "alarm_name": event.detail.alarm_name,
                "state": event.detail.state.value,
                "state_timestamp": plan.state_timestamp,
                "reason": event.detail.state.reason,
                "signal": plan.signal,
                "target": plan.target,
            },
        )
    ]
    if facts is not None:
        records.append(
            (
                "facts_collected",
                {
                    "facts": plan.facts,
                    "sources": plan.fact_sources,
                    "missing": plan.missing_facts,
                },
            )
        )
    if plan.decision is not None:
        records.append(("decision", plan.decision.model_dump(mode="json")))
    records.extend((WARNING_RECORD, warning.model_dump(mode="json")) for warning in plan.template_warnings)
    if plan.actions or plan.blocked_by:
        records.append(
            (
                "guardrails",
                {
                    "clamps": {a.target + " " + a.kind: a.clamps for a in plan.actions if a.clamps},
                    "refusals": [r.model_dump(mode="json") for r in plan.blocked_by],
                },
            )
        )
    records.append(
        (
            "plan_created",
            {
                "status": plan.status,
                "diagnosis": plan.diagnosis,
                "rule": plan.rule,
                "mode": plan.mode,
                "dry_run": plan.dry_run,
                "reason": plan.reason,
                "approval_hash": plan.approval_hash,
                "actions": [
                    {"kind": a.kind, "target": a.target, "before": a.before, "after": a.after} for a in plan.actions
                ],
                "expires_at": plan.expires_at,
            },
        )
    )
    return records


def _reject_event(raw: Any, exc: EventError, rt: Runtime, now: datetime) -> dict[str, Any]:
    """Keep a rejected event in the log (with the raw input, for replay) and say why."""
    import hashlib

    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None
    if text is None:
        text = json.dumps(raw, default=str, sort_keys=True)
    pid = REJECTED_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]
    plan = Plan(
        id=pid,
        status="NOOP",
        alarm_arn="",
        alarm_name="",
        state_timestamp="",
        account="",
        region="",
        signal="unknown",
        target="(none)",
        reason=f"rejected input: {exc}",
        created_at=iso(now),
        updated_at=iso(now),
    )
    rt.ledger.create(plan, [("input_rejected", {"error": str(exc), "field": exc.field, "raw": text[:32_000]})], now)
    get_logger(use_case="triage", plan_id=pid).warning("input_rejected", error=str(exc))
    return {"plan_id": pid, "status": "rejected", "error": str(exc)}
