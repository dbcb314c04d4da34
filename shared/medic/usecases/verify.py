"""The verifier's use case, run every minute: APPLIED plans past their verification time are judged on their alarm
(VERIFIED or FAILED, a rollback handed to the executor when the rule asks for it); APPLYING plans whose executor's
lease expired are re-driven, then failed; FAILED plans whose rollback hand-off failed are handed again; recent
VERIFIED plans on CloudFormation-managed functions are read back, to notice a deploy that put the old value back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from medic import outcomes, queue
from medic.accounts import target_clients
from medic.clock import iso, parse_iso
from medic.errors import (
    StateConflict,
    VerificationIncomplete,
)
from medic.log import get_logger
from medic.plan import Plan, Verification
from medic.queue import ExecutorMessage
from medic.runtime import Runtime

if TYPE_CHECKING:
    from medic.actions.base import Scalar
    from medic.stacks import TemplateWarning

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
    for plan in _watched(rt, now):
        if plan.id not in outcomes:
            outcomes[plan.id] = _each(plan, rt, errors, lambda p: watch_template(p, rt, now))
    if errors:
        raise VerificationIncomplete(errors)
    return {"checked": len(outcomes), "outcomes": outcomes}


#: How long after its verification a plan on a CloudFormation-managed function is read back for a deploy that put
#: the old value back, and how many such plans one run reads at most (the most recently verified first).
TEMPLATE_WATCH = timedelta(days=7)
TEMPLATE_WATCH_MAX = 20


def _watched(rt: Runtime, now: datetime) -> list[Plan]:
    plans = [p for p in rt.ledger.by_state("VERIFIED", since=iso(now - TEMPLATE_WATCH)) if p.template_warnings]
    return sorted(plans, key=lambda plan: plan.updated_at, reverse=True)[:TEMPLATE_WATCH_MAX]


def watch_template(plan: Plan, rt: Runtime, now: datetime) -> str:
    """A VERIFIED plan whose changes live outside their stack's template (`plan.template_warnings`): each changed
    field is read live (the action's `read_live`, read-only, through the verifier's or the member account's read
    role); one back at its `before` means a deploy of the stack undid the fix. Said once per plan: a
    `reverted_by_deploy` record per field put back and one reply in the card's thread. A plan already settled (so
    recorded, or its template said to hold the change: `template_updated`) is not read again."""
    from botocore.exceptions import BotoCoreError, ClientError

    from medic.actions import get_action
    from medic.stacks import REVERTED_RECORD, settled_by

    if settled_by({event.kind for event in rt.ledger.events(plan.id)}) is not None:
        return "template_settled"
    clients = target_clients(plan, rt)
    reverted: list[tuple[TemplateWarning, Scalar]] = []
    live: dict[tuple[str, str], dict[str, Scalar]] = {}
    for warning in plan.template_warnings:
        action = next((a for a in plan.changes if (a.kind, a.target) == (warning.kind, warning.target)), None)
        if action is None:
            continue
        key = (action.kind, action.target)
        try:
            if key not in live:
                live[key] = get_action(action.kind).read_live(clients, action)
        except (ClientError, BotoCoreError) as exc:  # a read this role may not make, a resource deleted: not a revert
            get_logger(use_case="verifier", plan_id=plan.id).warning("template_watch_unreadable", error=str(exc))
            return "template_unreadable"
        value = live[key].get(warning.field)
        if value == warning.before and value != warning.value:
            reverted.append((warning, value))
    if not reverted:
        return "template_held"
    rt.ledger.remember(plan)
    for warning, value in reverted:
        rt.ledger.append(plan.id, REVERTED_RECORD, {"warning": warning.model_dump(mode="json"), "live": value}, now)
    outcomes.reply(plan, rt, ":rewind: " + " ".join(warning.reverted_text() for warning, _ in reverted))
    return "reverted_by_deploy"


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
        message_id = queue.send(ExecutorMessage.apply(plan), rt)
        rt.ledger.append(
            plan.id,
            "redriven",
            {
                "attempt": len(redrives) + 1,
                "of": MAX_REDRIVES,
                "lease_until": lease,
                "lease_owner": plan.lease_owner,
                "message_id": message_id,
            },
            now,
        )
        return "redriven"
    abandoned = {"redrives": len(redrives), "lease_until": lease, "lease_owner": plan.lease_owner}
    try:  # only while no executor holds it: one that took it over meanwhile finishes it
        plan = outcomes.move(
            rt,
            plan,
            "FAILED",
            now,
            unleased=True,
            abandoned_at=iso(now),
            record=("apply_abandoned", abandoned),
            say=f":red_circle: The apply never finished (re-driven {len(redrives)} times, the executor's lease "
            f"expired each time): FAILED; whatever it changed is handed back to be rolled back.",
        )
    except StateConflict:
        return "taken_over"
    _handoff_rollback(plan, rt, now)
    outcomes.update_card(plan, rt, "apply abandoned")
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
    asked = [
        int(a.after.get("account_concurrency_limit") or 0) for a in plan.changes if a.kind == "request_quota_increase"
    ]
    if not asked or now - parse_iso(plan.applied_at or plan.updated_at) > QUOTA_DECISION_WAIT:
        return None
    limit = target_clients(plan, rt).lambda_.get_account_settings()["AccountLimit"].get("ConcurrentExecutions", 0)
    if int(limit) >= max(asked):
        return None  # granted: the alarm is judged as any other
    if "awaiting_quota" not in {event.kind for event in rt.ledger.events(plan.id)}:
        rt.ledger.append(plan.id, "awaiting_quota", {"limit": limit, "asked": max(asked)}, now)
        outcomes.reply(
            plan,
            rt,
            f":hourglass_flowing_sand: The alarm still fires: the account's limit is {limit}, AWS has not "
            f"granted the {max(asked)} asked yet. Verifying once it has (or in {QUOTA_DECISION_WAIT.days} "
            "days).",
        )
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
        outcomes.reply(
            plan,
            rt,
            ":hourglass_flowing_sand: The alarm still fires: open connections close only as the idle "
            "execution environments holding them are reclaimed. Verifying again until "
            f"{iso(until)}.",
        )
    return "settling"


def _conclude(
    plan: Plan, rt: Runtime, now: datetime, verification: Verification, outcome: str, note: str, reply: str
) -> str:
    verification = verification.model_copy(update={"outcome": outcome, "note": note})
    plan = outcomes.move(rt, plan, outcome, now, verification=verification)
    rt.ledger.append(
        plan.id,
        "verified" if outcome == "VERIFIED" else "verification_failed",
        verification.model_dump(mode="json"),
        now,
    )
    outcomes.reply(plan, rt, reply)
    if outcome == "FAILED" and plan.rollback_on_failure:
        plan = _handoff_rollback(plan, rt, now)
    outcomes.update_card(plan, rt, "verified" if outcome == "VERIFIED" else "verification failed")
    return outcome


def _handoff_rollback(plan: Plan, rt: Runtime, now: datetime) -> Plan:
    """The verifier holds no change permissions: the rollback is the executor's job. The hand-off is kept on the
    plan (`rollback_requested_at`, with its record): a plan without it is handed again by the next run."""
    record = {"by": "verifier", "message_id": queue.send(ExecutorMessage.undo(plan), rt)}
    return rt.ledger.save(plan, now, rollback_requested_at=iso(now), record=("rollback_requested", record))


def _request_rollback(plan: Plan, rt: Runtime, now: datetime) -> str:
    """A FAILED plan whose rollback hand-off failed in an earlier run (SQS down): hand it again."""
    _handoff_rollback(plan, rt, now)
    return "rollback_requested"


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
        MetricDataQueries=[
            {
                "Id": "alarm",
                "MetricStat": {
                    "Metric": {
                        "Namespace": metric["namespace"],
                        "MetricName": metric["name"],
                        "Dimensions": [{"Name": k, "Value": v} for k, v in metric["dimensions"].items()],
                    },
                    "Period": period,
                    "Stat": metric["stat"],
                },
            }
        ],
        StartTime=start,
        EndTime=end,
        ScanBy="TimestampAscending",
    )
    results = response["MetricDataResults"]
    return [float(v) for v in results[0].get("Values", [])] if results else []
