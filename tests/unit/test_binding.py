"""The approval hash covers everything the executor acts on, and only that; the executor's binding checks
(medic.ledger.binding) refuse a plan that differs from what triage logged or the approver approved, and progress that
differs
from the executor's own records. Pure: plans and chains built in memory."""

from __future__ import annotations

from typing import Any

import pytest

from medic.actions.base import PlannedAction
from medic.ledger.binding import apply_records_refusal, binding_refusal, linked_chain
from medic.ledger.store import GENESIS, LogEvent, event_hash
from medic.plan import RECORDED_AT_APPLY, Plan, approval_hash, canonical_json, executable_content

NOW = "2026-11-22T05:01:00.000Z"


def action(**changes: Any) -> PlannedAction:
    base = PlannedAction(kind="set_provisioned_concurrency", target="checkout:live", function_name="checkout",
                         qualifier="live", primary="provisioned_concurrency", before={"provisioned_concurrency": 20},
                         after={"provisioned_concurrency": 66}, text="PC 20 → 66")  # fmt: skip
    return base.model_copy(update=changes)


def plan(**changes: Any) -> Plan:
    made = Plan(
        id="p-0123456789abcdef", status="PROPOSED", alarm_arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:a",
        alarm_name="a", state_timestamp=NOW, account="123456789012", region="us-east-1", signal="spillover",
        target="checkout:live", function_name="checkout", qualifier="live", rule="floor-too-low", mode="approve",
        runbook="lambda-latency", runbook_version=3, actions=[action()], created_at=NOW, updated_at=NOW,
        metric={"namespace": "AWS/Lambda", "name": "ProvisionedConcurrencySpilloverInvocations", "stat": "Sum",
                "period": 60, "dimensions": {"FunctionName": "checkout"}},
    )  # fmt: skip
    made = made.model_copy(update=changes)
    made.approval_hash = approval_hash(made)
    return made


#: Every field of a planned action, by whether the executor acts on it (bound) or it explains or records progress.
ACTION_BOUND = {"kind", "target", "function_name", "qualifier", "primary", "before", "after", "resource"}
ACTION_FREE = {"text", "clamps", "applied", "observed_after", "request_ids", "cost_monthly_usd", "cost_basis"}
PLAN_BOUND = {"id", "alarm_arn", "alarm_name", "metric", "account", "region", "target", "function_name", "qualifier",
              "db_instance", "runbook", "runbook_version", "rule", "mode", "dry_run", "rollback_on_failure",
              "actions"}  # fmt: skip
#: (template_warnings: what the stack's next deploy would undo, in words for the card; the executor never reads it)
PLAN_FREE = {"status", "state_timestamp", "signal", "alarm_value", "alarm_threshold", "recent_datapoints", "diagnosis",
             "rationale", "reason", "blocked_by", "decision", "facts", "fact_sources", "missing_facts",
             "approval_hash", "decided_by", "triggered_by", "slack", "created_at", "updated_at", "expires_at",
             "applied_at", "lease_owner", "lease_until", "verify_after", "verification", "rollback_requested_at",
             "abandoned_at", "template_warnings"}  # fmt: skip


def test_every_field_of_a_plan_and_its_actions_is_classified_bound_or_free() -> None:
    """A field added later must be put on one side on purpose: by default nothing escapes the approval unnoticed."""
    assert set(PlannedAction.model_fields) == ACTION_BOUND | ACTION_FREE
    assert set(Plan.model_fields) == PLAN_BOUND | PLAN_FREE
    assert set(executable_content(plan())) == (PLAN_BOUND - {"id"}) | {"plan_id"}


ACTION_EDITS: dict[str, dict[str, Any]] = {
    "kind": {"kind": "schedule_prewarm"}, "target": {"target": "checkout:canary"},
    "function_name": {"function_name": "payments"}, "qualifier": {"qualifier": "canary"},
    "primary": {"primary": "allocated"}, "before": {"before": {"provisioned_concurrency": 5}},
    "after": {"after": {"provisioned_concurrency": 500}}, "resource": {"resource": {"uuid": "another-mapping"}},
}  # fmt: skip


@pytest.mark.parametrize("field", sorted(ACTION_BOUND))
def test_any_bound_field_of_an_action_changes_the_hash(field: str) -> None:
    assert approval_hash(plan(actions=[action(**ACTION_EDITS[field])])) != plan().approval_hash


PLAN_EDITS: dict[str, Any] = {
    "id": "p-fedcba9876543210", "alarm_arn": "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:a",
    "alarm_name": "b", "metric": None, "account": "210987654321", "region": "eu-west-1", "target": "payments:live",
    "function_name": "payments", "qualifier": "canary", "db_instance": "orders-db", "runbook": "team",
    "runbook_version": 4, "rule": "other-row", "mode": "auto", "dry_run": True, "rollback_on_failure": True,
    "actions": [],
}  # fmt: skip


@pytest.mark.parametrize("field", sorted(PLAN_BOUND))
def test_any_bound_field_of_a_plan_changes_the_hash(field: str) -> None:
    assert approval_hash(plan(**{field: PLAN_EDITS[field]})) != plan().approval_hash


def test_what_explains_a_plan_or_records_its_progress_leaves_the_hash_alone() -> None:
    made = plan()
    progressed = made.model_copy(deep=True, update={
        "status": "APPLYING", "decided_by": ["U1"], "rationale": "reworded", "lease_owner": "x", "facts": {"a": 1},
    })  # fmt: skip
    progressed.actions[0] = progressed.actions[0].model_copy(update={
        "applied": True, "observed_after": {"provisioned_concurrency": 66}, "request_ids": ["r"], "text": "other",
        "clamps": ["a clamp"], "cost_monthly_usd": 9.5,
    })  # fmt: skip
    assert approval_hash(progressed) == made.approval_hash


@pytest.mark.parametrize(("kind", "key"), [(k, name.rstrip(":") + (":x" if name.endswith(":") else ""))
                                            for k, names in RECORDED_AT_APPLY.items() for name in names])  # fmt: skip
def test_what_an_action_records_while_applying_is_outside_the_approval(kind: str, key: str) -> None:
    made = plan(actions=[action(kind=kind, resource={"queue": "medic-buffer-checkout"})])
    applying = made.model_copy(deep=True)
    applying.actions[0].resource[key] = "recorded"
    assert approval_hash(applying) == made.approval_hash
    applying.actions[0].resource["queue"] = "another-queue"  # an identifier the plan was approved with
    assert approval_hash(applying) != made.approval_hash


def test_the_canonical_serialization_is_stable() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None, "é"]}) == '{"a":[1.5,null,"\\u00e9"],"b":1}'
    assert approval_hash(plan()) == approval_hash(Plan.model_validate_json(plan().model_dump_json()))


# -- the executor's checks --------------------------------------------------------------------------------------------


def chain(pid: str, *records: tuple[str, dict[str, Any]]) -> list[LogEvent]:
    events, previous = [], GENESIS
    for seq, (kind, data) in enumerate(records, start=1):
        digest = event_hash(pid, seq, NOW, kind, data, previous)
        events.append(LogEvent(plan_id=pid, seq=seq, at=NOW, kind=kind, data=data, prev_hash=previous, hash=digest))
        previous = digest
    return events


def approved(made: Plan, *, approvals: list[str] | None = None) -> list[LogEvent]:
    hashes = [made.approval_hash] if approvals is None else approvals
    return chain(made.id, ("plan_created", {"status": "PROPOSED", "approval_hash": made.approval_hash}),
                 *(("approval", {"user": "U1", "approval_hash": h}) for h in hashes))  # fmt: skip


def test_a_plan_as_made_and_approved_binds() -> None:
    made = plan()
    assert binding_refusal(made, stored=made.approval_hash, expected=made.approval_hash, events=approved(made)) is None
    auto = plan(mode="auto")
    events = chain(auto.id, ("plan_created", {"status": "APPROVED", "approval_hash": auto.approval_hash}))
    assert binding_refusal(auto, stored=auto.approval_hash, expected="", events=events) is None


def refusal_of(made: Plan, **kwargs: Any) -> str:
    arguments: dict[str, Any] = {"stored": made.approval_hash, "expected": "", "events": approved(made), **kwargs}
    refusal = binding_refusal(made, **arguments)
    assert refusal is not None and refusal.guard == "approval_binding"
    return refusal.message


def test_a_rewritten_plan_is_refused_whichever_copy_of_the_hash_the_rewrite_also_changed() -> None:
    made = plan()
    rewritten = plan(function_name="payments")  # content and its own hash, consistent with each other
    events = approved(made)
    assert "stored with the plan" in refusal_of(rewritten, stored=made.approval_hash, events=events)
    assert "triage logged" in refusal_of(rewritten, stored=rewritten.approval_hash, events=events)
    assert "approvers approved" in refusal_of(rewritten, stored=rewritten.approval_hash, events=events)
    assert "its own approval_hash" in refusal_of(made.model_copy(update={"account": "210987654321"}))
    assert "message carries" in refusal_of(made, expected="0" * 64)


def test_an_approval_mode_plan_without_an_approval_in_the_log_is_refused() -> None:
    made = plan()
    assert "no approval" in refusal_of(made, events=approved(made, approvals=[]))
    assert "no plan_created" in refusal_of(made, events=chain(made.id, ("approval", {"approval_hash": "x"})))


def test_a_log_that_is_not_an_intact_chain_is_refused() -> None:
    made = plan()
    events = approved(made)
    assert linked_chain(events) == (events, None)
    edited = [events[0], events[1].model_copy(update={"data": {"user": "U2", "approval_hash": made.approval_hash}})]
    assert linked_chain(edited)[1] == "record #2 was modified"
    assert linked_chain(events[1:]) == ([], "record #1 is missing")
    assert "not intact" in refusal_of(made, events=edited)


def test_a_record_put_beside_the_chain_is_never_bound() -> None:
    """An approval record put with a free seq but not linked into the chain (any role may PutItem there) does not
    count as an approval: the walk follows the links."""
    made = plan(status="PROPOSED")
    events = approved(made, approvals=[])
    forged = events[-1].model_copy(
        update={
            "seq": events[-1].seq + 1,
            "kind": "approval",
            "prev_hash": "0" * 64,
            "data": {"user": "U9", "approval_hash": made.approval_hash},
        }
    )
    chain_only, broken = linked_chain([*events, forged])
    assert broken is None and forged not in chain_only
    assert "no approval" in refusal_of(made, events=[*events, forged])


def test_progress_that_differs_from_the_executors_records_is_refused() -> None:
    made = plan()
    applied = made.model_copy(deep=True)
    applied.actions[0].applied = True
    call = {"action": "set_provisioned_concurrency", "target": "checkout:live", "recorded": {}}
    assert apply_records_refusal(applied, chain(made.id, ("aws_call", call))) is None
    assert apply_records_refusal(applied, chain(made.id, ("change_found_applied", {"target": "checkout:live"}))) is None
    unrecorded = apply_records_refusal(applied, chain(made.id, ("plan_created", {})))
    assert unrecorded is not None and "no record says it was" in unrecorded.message
    memory = plan(actions=[action(kind="set_memory", resource={"published_version": "7"})])
    memory.actions[0].applied = True
    logged = {"action": "set_memory", "target": "checkout:live", "recorded": {"published_version": "6"}}
    moved = apply_records_refusal(memory, chain(made.id, ("aws_call", logged)))
    assert moved is not None and "differs from the log" in moved.message
