"""The remediation log: plans that change state only by conditional writes, and a hash-chained audit trail.

Runs against moto in-process, with Medic's two tables created as `medic simulate` creates them from
template.yaml. Races are played the way DynamoDB sees them: a second writer holding a stale copy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from medic.actions import get_action
from medic.alarms.signals import Target
from medic.clock import ManualClock, iso
from medic.errors import LeaseHeld, StateConflict
from medic.facts import Facts
from medic.ledger.store import GENESIS, Ledger, event_hash
from medic.plan import TRANSITIONS, Plan, approval_hash, plan_id
from medic.vocabulary import PLAN_STATES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REGION = "us-east-1"
PLANS, EVENTS = "medic-plans", "medic-events"
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-live-spillover"
STATE_TS = "2026-11-22T05:00:00.000Z"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 5, 1, tzinfo=UTC))


def floor_plan(clock: ManualClock, *, alarm_arn: str = ALARM_ARN, state_ts: str = STATE_TS,
               status: str = "PROPOSED", to: int = 72) -> Plan:  # fmt: skip
    """The plan for one spillover alarm transition on `checkout:live`: raise the PC floor 20 → `to`."""
    facts = Facts(function_name="checkout", qualifier="live", pc_requested=20)
    action = get_action("set_provisioned_concurrency").plan(Target.function("checkout", "live"), {"concurrency": to},
                                                            facts)[0]  # fmt: skip
    now = iso(clock.now())
    plan = Plan(
        id=plan_id(alarm_arn, state_ts), status=status, alarm_arn=alarm_arn, alarm_name=alarm_arn.rsplit(":", 1)[-1],
        state_timestamp=state_ts, account="123456789012", region=REGION, signal="spillover", target="checkout:live",
        function_name="checkout", qualifier="live", diagnosis="pc_floor_too_low", rule="floor-too-low",
        mode="approve", actions=[action], created_at=now, updated_at=now,
    )  # fmt: skip
    plan.approval_hash = approval_hash(plan)
    return plan


def stored_state(dynamodb: DynamoDBClient, pid: str) -> str:
    return dynamodb.get_item(TableName=PLANS, Key={"plan_id": {"S": pid}})["Item"]["state"]["S"]


# --- plan ids and approval hashes -----------------------------------------------------------------


def test_the_same_alarm_transition_always_gets_the_same_plan_id() -> None:
    assert plan_id(ALARM_ARN, STATE_TS) == plan_id(ALARM_ARN, STATE_TS)
    assert plan_id(ALARM_ARN, STATE_TS).startswith("p-")
    assert len(plan_id(ALARM_ARN, STATE_TS)) == 18


def test_another_transition_or_another_alarm_gets_another_plan_id() -> None:
    ids = {
        plan_id(ALARM_ARN, STATE_TS),
        plan_id(ALARM_ARN, "2026-11-22T05:00:00.001Z"),
        plan_id(ALARM_ARN.replace("checkout-live", "orders-live"), STATE_TS),
        plan_id(ALARM_ARN + "|" + STATE_TS, ""),  # the separator cannot be forged into the same id
    }

    assert len(ids) == 4


def test_the_approval_hash_binds_what_was_shown(clock: ManualClock) -> None:
    plan = floor_plan(clock)
    other_after = floor_plan(clock, to=73)

    assert approval_hash(plan) == approval_hash(floor_plan(clock))
    assert approval_hash(other_after) != approval_hash(plan)

    edited = plan.model_copy(deep=True)
    edited.actions[0].after["provisioned_concurrency"] = 500
    assert approval_hash(edited) != approval_hash(plan)

    retargeted = plan.model_copy(deep=True)
    retargeted.actions[0].target = "checkout:canary"
    assert approval_hash(retargeted) != approval_hash(plan)


def test_the_approval_hash_ignores_what_does_not_change_aws(clock: ManualClock) -> None:
    plan = floor_plan(clock)
    moved_on = plan.model_copy(update={"status": "APPROVED", "rationale": "reworded", "decided_by": ["U1"]})

    assert approval_hash(moved_on) == approval_hash(plan)


# --- creating plans -------------------------------------------------------------------------------


def test_create_stores_a_plan_once(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)

    assert ledger.create(plan) is True
    assert ledger.get(plan.id) == plan


def test_a_second_delivery_of_the_same_alarm_does_not_overwrite_the_plan(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    ledger.create(plan)
    clock.advance(5)
    redelivered = floor_plan(clock, to=90)
    assert redelivered.id == plan.id

    assert ledger.create(redelivered) is False
    assert ledger.get(plan.id) == plan


@pytest.mark.parametrize("status", ["APPLYING", "APPLIED", "VERIFIED", "REJECTED"])
def test_a_plan_cannot_be_created_mid_life(ledger: Ledger, clock: ManualClock, status: str) -> None:
    with pytest.raises(ValueError, match=f"cannot start in {status}"):
        ledger.create(floor_plan(clock, status=status))


def test_get_of_an_unknown_plan_is_none(ledger: Ledger) -> None:
    assert ledger.get("p-0000000000000000") is None


# --- state transitions ----------------------------------------------------------------------------


def test_a_transition_moves_the_plan_once(ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    ledger.create(plan)
    clock.advance(60)

    approved = ledger.transition(plan, "APPROVED", clock.now(), decided_by=["U0APPROVER"])

    assert approved.status == "APPROVED"
    assert approved.decided_by == ["U0APPROVER"]
    assert approved.updated_at == iso(clock.now())
    assert ledger.get(plan.id) == approved
    assert stored_state(dynamodb, plan.id) == "APPROVED"


def test_a_second_transition_from_the_same_state_loses_and_sees_who_won(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    """Two approvers click at once: both read PROPOSED; the conditional write lets only one through."""
    plan = floor_plan(clock)
    ledger.create(plan)
    seen_by_ana, seen_by_bo = ledger.get(plan.id), ledger.get(plan.id)
    assert seen_by_ana is not None and seen_by_bo is not None

    ledger.transition(seen_by_ana, "APPROVED", clock.now(), decided_by=["U0ANA"])
    with pytest.raises(StateConflict) as raised:
        ledger.transition(seen_by_bo, "REJECTED", clock.now(), decided_by=["U0BO"])

    conflict = raised.value
    assert (conflict.plan_id, conflict.expected, conflict.actual) == (plan.id, "PROPOSED", "APPROVED")
    stored = ledger.get(plan.id)
    assert stored is not None
    assert (stored.status, stored.decided_by) == ("APPROVED", ["U0ANA"])


def test_the_same_transition_twice_also_conflicts(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    ledger.create(plan)
    ledger.transition(plan, "APPROVED", clock.now(), decided_by=["U0ANA"])

    with pytest.raises(StateConflict) as raised:
        ledger.transition(plan, "APPROVED", clock.now(), decided_by=["U0BO"])

    assert raised.value.actual == "APPROVED"


def test_a_transition_of_a_plan_that_was_never_stored_conflicts(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)

    with pytest.raises(StateConflict) as raised:
        ledger.transition(plan, "APPROVED", clock.now())

    assert raised.value.actual is None
    assert ledger.get(plan.id) is None


def test_a_transition_the_state_machine_does_not_allow_is_refused_before_writing(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    ledger.create(plan)

    with pytest.raises(StateConflict) as raised:
        ledger.transition(plan, "APPLIED", clock.now())

    assert raised.value.expected == "a state that may become APPLIED"
    assert raised.value.actual == "PROPOSED"
    assert stored_state(dynamodb, plan.id) == "PROPOSED"


def test_every_transition_outside_the_table_is_refused(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    refused = []
    for old in PLAN_STATES:
        for new in PLAN_STATES:
            if new in TRANSITIONS.get(old, frozenset()):
                continue
            with pytest.raises(StateConflict):
                ledger.transition(plan.model_copy(update={"status": old}), new, clock.now())
            refused.append((old, new))

    assert ("PROPOSED", "PROPOSED") in refused, "no transition to the same state"
    assert ("REJECTED", "APPROVED") in refused, "terminal states stay terminal"
    assert ("APPROVED", "APPLIED") in refused, "nothing skips APPLYING"


def test_the_whole_happy_path_is_allowed(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    ledger.create(plan)

    for state in ("APPROVED", "APPLYING", "APPLIED", "VERIFIED"):
        clock.advance(30)
        plan = ledger.transition(plan, state, clock.now())

    assert ledger.get(plan.id) == plan
    assert plan.status == "VERIFIED"


def test_save_is_conditional_on_the_state_it_read(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    ledger.create(plan)
    ledger.transition(plan, "EXPIRED", clock.now())

    with pytest.raises(StateConflict) as raised:
        ledger.save(plan, clock.now(), rationale="stale edit")

    assert (raised.value.expected, raised.value.actual) == ("PROPOSED", "EXPIRED")
    stored = ledger.get(plan.id)
    assert stored is not None and stored.rationale == ""


# --- leases: one executor applies a plan --------------------------------------------------------


def approved_plan(ledger: Ledger, clock: ManualClock) -> Plan:
    plan = floor_plan(clock)
    ledger.create(plan)
    return ledger.transition(plan, "APPROVED", clock.now())


def test_a_lease_moves_an_approved_plan_to_applying_for_one_executor(ledger: Ledger, clock: ManualClock) -> None:
    plan = approved_plan(ledger, clock)
    until = clock.now() + timedelta(seconds=900)

    leased = ledger.lease(plan, clock.now(), until, "exec-a", record=("applying", {"actions": 1}))

    assert (leased.status, leased.lease_owner, leased.lease_until) == ("APPLYING", "exec-a", iso(until))
    assert ledger.get(plan.id) == leased
    assert [e.kind for e in ledger.events(plan.id)] == ["applying"]


def test_the_second_of_two_executors_given_the_same_approved_plan_finds_it_held(
    ledger: Ledger, clock: ManualClock
) -> None:
    plan = approved_plan(ledger, clock)  # both executors read it APPROVED
    until = clock.now() + timedelta(seconds=900)
    first = ledger.lease(plan, clock.now(), until, "exec-a", record=("applying", {"actions": 1}))

    with pytest.raises(LeaseHeld) as raised:
        ledger.lease(plan, clock.now(), until, "exec-b", record=("applying", {"actions": 1}))

    assert (raised.value.owner, raised.value.until) == ("exec-a", iso(until))
    assert ledger.get(plan.id) == first
    assert [e.kind for e in ledger.events(plan.id)] == ["applying"], "the loser's record is not written"


def test_an_applying_plan_is_taken_over_only_once_its_lease_expired(ledger: Ledger, clock: ManualClock) -> None:
    plan = approved_plan(ledger, clock)
    held = ledger.lease(plan, clock.now(), clock.now() + timedelta(seconds=900), "exec-a")
    clock.advance(899)
    with pytest.raises(LeaseHeld):
        ledger.lease(held, clock.now(), clock.now() + timedelta(seconds=900), "exec-b")

    clock.advance(1)
    taken = ledger.lease(held, clock.now(), clock.now() + timedelta(seconds=900), "exec-b")
    assert (taken.status, taken.lease_owner) == ("APPLYING", "exec-b")
    with pytest.raises(LeaseHeld):  # a third, racing with the second on the same expired copy
        ledger.lease(held, clock.now(), clock.now() + timedelta(seconds=900), "exec-c")
    assert ledger.get(plan.id) == taken


def test_an_applying_plan_stored_without_a_lease_may_be_taken_over(ledger: Ledger, clock: ManualClock) -> None:
    plan = ledger.transition(approved_plan(ledger, clock), "APPLYING", clock.now())  # before leases existed

    taken = ledger.lease(plan, clock.now(), clock.now() + timedelta(seconds=900), "exec-a")

    assert ledger.get(plan.id) == taken


def test_a_transition_ends_the_lease_so_a_rollback_may_take_the_failed_plan_at_once(
    ledger: Ledger, clock: ManualClock, dynamodb: DynamoDBClient
) -> None:
    plan = approved_plan(ledger, clock)
    applying = ledger.lease(plan, clock.now(), clock.now() + timedelta(seconds=900), "exec-a")
    failed = ledger.transition(ledger.transition(applying, "APPLIED", clock.now()), "FAILED", clock.now())
    assert (failed.lease_owner, failed.lease_until) == ("", None)
    assert "lease_until" not in dynamodb.get_item(TableName=PLANS, Key={"plan_id": {"S": plan.id}})["Item"]

    rolling = ledger.lease(failed, clock.now(), clock.now() + timedelta(seconds=900), "exec-b", hold="FAILED")

    assert (rolling.status, rolling.lease_owner) == ("FAILED", "exec-b")
    with pytest.raises(LeaseHeld):
        ledger.lease(failed, clock.now(), clock.now() + timedelta(seconds=900), "exec-c", hold="FAILED")


@pytest.mark.parametrize("status", ["PROPOSED", "APPLIED"])
def test_a_plan_that_is_not_approved_or_applying_cannot_be_leased(
    ledger: Ledger, clock: ManualClock, status: str
) -> None:
    plan = approved_plan(ledger, clock)
    if status == "APPLIED":
        plan = ledger.transition(ledger.lease(plan, clock.now(), clock.now(), "exec-a"), "APPLIED", clock.now())
    else:
        plan = plan.model_copy(update={"status": "PROPOSED"})  # a stale copy

    with pytest.raises(StateConflict):
        ledger.lease(plan, clock.now(), clock.now() + timedelta(seconds=900), "exec-b")


# --- finding plans --------------------------------------------------------------------------------


def test_by_state_finds_plans_through_the_index(ledger: Ledger, clock: ManualClock) -> None:
    proposed = [floor_plan(clock, state_ts=f"2026-11-22T05:0{n}:00.000Z") for n in range(3)]
    blocked = floor_plan(clock, state_ts="2026-11-22T05:09:00.000Z", status="BLOCKED")
    for plan in [*proposed, blocked]:
        ledger.create(plan)
    clock.advance(60)
    approved = ledger.transition(proposed[0], "APPROVED", clock.now())

    assert {plan.id for plan in ledger.by_state("PROPOSED")} == {proposed[1].id, proposed[2].id}
    assert ledger.by_state("APPROVED") == [approved]
    assert ledger.by_state("BLOCKED") == [blocked]
    assert ledger.by_state("APPLYING") == []
    assert sorted(plan.id for plan in ledger.all_plans()) == sorted(p.id for p in (*proposed, blocked))


def test_by_states_reads_several_states_in_one_request_and_follows_its_pages(
    ledger: Ledger, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety controls' read (one PartiQL SELECT on by_state) finds what one query per state finds, a sort-key
    bound included, across as many pages as DynamoDB returns (here one item each: as 1 MB does with big plans)."""
    from medic_tools.world import moto_partiql

    plans = []
    for n, status in enumerate(["PROPOSED", "BLOCKED", "PROPOSED", "NOOP", "BLOCKED"]):
        plans.append(floor_plan(clock, state_ts=f"2026-11-22T05:0{n}:00.000Z", status=status))
        ledger.create(plans[-1])
        clock.advance(60)
    since = plans[2].updated_at
    sent: list[str] = []
    ledger.dynamodb.meta.events.register("before-call", lambda model, **_: sent.append(model.name))
    monkeypatch.setattr(moto_partiql, "MAX_PAGE_BYTES", 1)

    found = ledger.by_states(("PROPOSED", "BLOCKED"))
    recent = ledger.by_states(("PROPOSED", "BLOCKED"), since=since)

    assert sorted(p.id for p in found) == sorted(p.id for s in ("PROPOSED", "BLOCKED") for p in ledger.by_state(s))
    assert sorted(p.id for p in found) == sorted(p.id for p in plans if p.status != "NOOP")
    assert sorted(p.id for p in recent) == sorted(p.id for p in (plans[2], plans[4]))
    assert sent[: sent.index("Query")].count("ExecuteStatement") > 2  # more than one page each


# --- the audit trail ------------------------------------------------------------------------------


def record_story(ledger: Ledger, pid: str, clock: ManualClock) -> None:
    ledger.append(pid, "alarm_received", {"alarm_name": "checkout-live-spillover", "state": "ALARM"}, clock.now())
    clock.advance(2)
    ledger.append(pid, "plan_created", {"status": "PROPOSED", "after": {"provisioned_concurrency": 72}}, clock.now())
    clock.advance(90)
    ledger.append(pid, "approval", {"user": "U0APPROVER", "at": clock.now()}, clock.now())


def test_append_builds_a_hash_chain(ledger: Ledger, clock: ManualClock) -> None:
    pid = plan_id(ALARM_ARN, STATE_TS)

    record_story(ledger, pid, clock)

    events = ledger.events(pid)
    assert [event.seq for event in events] == [1, 2, 3]
    assert [event.kind for event in events] == ["alarm_received", "plan_created", "approval"]
    assert events[0].prev_hash == GENESIS
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    for event in events:
        assert event.hash == event_hash(event.plan_id, event.seq, event.at, event.kind, event.data, event.prev_hash)
    assert events[2].data == {"user": "U0APPROVER", "at": str(clock.now())}, "data is stored as JSON"
    assert ledger.verify_chain(pid) is None


def test_each_plan_has_its_own_chain(ledger: Ledger, clock: ManualClock) -> None:
    first, second = plan_id(ALARM_ARN, STATE_TS), plan_id(ALARM_ARN, "2026-11-22T06:00:00.000Z")
    record_story(ledger, first, clock)

    event = ledger.append(second, "alarm_received", {}, clock.now())

    assert (event.seq, event.prev_hash) == (1, GENESIS)
    assert len(ledger.events(first)) == 3
    assert ledger.verify_chain(second) is None
    assert ledger.verify_chain("p-nothing-logged") is None


def test_editing_an_event_in_the_table_is_detected(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    pid = plan_id(ALARM_ARN, STATE_TS)
    record_story(ledger, pid, clock)

    dynamodb.update_item(
        TableName=EVENTS, Key={"plan_id": {"S": pid}, "seq": {"N": "2"}},
        UpdateExpression="SET #data = :forged", ExpressionAttributeNames={"#data": "data"},
        ExpressionAttributeValues={":forged": {"S": json.dumps({"status": "PROPOSED",
                                                                "after": {"provisioned_concurrency": 720}})}},
    )  # fmt: skip

    assert ledger.verify_chain(pid) == 2


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("kind", {"S": "rejection"}), ("at", {"S": "2026-11-22T04:00:00.000Z"}), ("prev_hash", {"S": GENESIS})],
)
def test_editing_any_part_of_an_event_is_detected(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock, attribute: str, value: dict[str, Any]
) -> None:
    pid = plan_id(ALARM_ARN, STATE_TS)
    record_story(ledger, pid, clock)

    dynamodb.update_item(
        TableName=EVENTS, Key={"plan_id": {"S": pid}, "seq": {"N": "3"}},
        UpdateExpression="SET #attr = :forged", ExpressionAttributeNames={"#attr": attribute},
        ExpressionAttributeValues={":forged": value},
    )  # fmt: skip

    assert ledger.verify_chain(pid) == 3


def test_deleting_an_event_from_the_middle_is_detected(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    pid = plan_id(ALARM_ARN, STATE_TS)
    record_story(ledger, pid, clock)

    dynamodb.delete_item(TableName=EVENTS, Key={"plan_id": {"S": pid}, "seq": {"N": "2"}})

    assert ledger.verify_chain(pid) == 2  # the missing record itself
    assert ledger.verify_report(pid).problem == "record #2 is missing (the next one is #3)"


def test_deleting_the_last_event_is_detected_by_the_head_anchor(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    pid = plan_id(ALARM_ARN, STATE_TS)
    record_story(ledger, pid, clock)
    last = len(ledger.events(pid))

    dynamodb.delete_item(TableName=EVENTS, Key={"plan_id": {"S": pid}, "seq": {"N": str(last)}})

    report = ledger.verify_report(pid)
    assert (report.ok, report.first_bad_seq) == (False, last)
    assert report.problem == f"records #{last}..#{last} are missing (the head anchor says the chain ends at #{last})"


def test_an_intact_chain_reports_ok_and_is_listed(ledger: Ledger, clock: ManualClock) -> None:
    pid = plan_id(ALARM_ARN, STATE_TS)
    record_story(ledger, pid, clock)

    assert ledger.verify_report(pid).ok
    assert pid in ledger.chain_ids()


def test_events_carry_the_plans_context(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan)

    event = ledger.append(plan.id, "alarm_received", {}, clock.now())

    assert event.context == {"alarm_arn": ALARM_ARN, "state_timestamp": STATE_TS}
    assert ledger.events(plan.id)[0].context == event.context
    assert ledger.verify_report(plan.id).ok


def test_appending_after_a_tampered_event_still_continues_from_the_last_record(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    pid = plan_id(ALARM_ARN, STATE_TS)
    record_story(ledger, pid, clock)
    dynamodb.delete_item(TableName=EVENTS, Key={"plan_id": {"S": pid}, "seq": {"N": "2"}})

    event = ledger.append(pid, "applied", {"request_id": "r-1"}, clock.now())

    assert event.seq == 4
    assert ledger.verify_chain(pid) == 2, "the gap stays visible"


def test_a_plan_whose_every_record_and_anchor_were_deleted_is_broken(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan)
    ledger.append(plan.id, "alarm_received", {}, clock.now())

    dynamodb.delete_item(TableName=EVENTS, Key={"plan_id": {"S": plan.id}, "seq": {"N": "1"}})
    dynamodb.delete_item(TableName=PLANS, Key={"plan_id": {"S": "head#" + plan.id}})

    report = ledger.verify_report(plan.id)
    assert (report.ok, report.first_bad_seq, report.problem) == (
        False,
        1,
        "every record and the head anchor are missing",
    )


# --- fewer round trips: a plan with its first records, deferred records, reads together ---------


def test_a_plan_and_its_first_records_are_written_together(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)

    assert ledger.create(plan, [("alarm_received", {"n": 1}), ("plan_created", {"n": 2})], clock.now())

    assert ledger.get(plan.id) is not None
    assert [(e.seq, e.kind) for e in ledger.events(plan.id)] == [(1, "alarm_received"), (2, "plan_created")]
    assert ledger.verify_report(plan.id).ok


def test_a_redelivered_transition_writes_neither_plan_nor_records(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {"first": True})], clock.now())

    again = Ledger(ledger.dynamodb, PLANS, EVENTS)  # another Lambda instance, same delivery
    assert again.create(floor_plan(clock, to=99), [("alarm_received", {"first": False})], clock.now()) is False

    assert [e.data for e in ledger.events(plan.id)] == [{"first": True}]
    assert ledger.get(plan.id).actions[0].after == plan.actions[0].after  # type: ignore[union-attr]


def test_a_new_plan_over_leftover_records_keeps_them_and_continues_after(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    Ledger(ledger.dynamodb, PLANS, EVENTS).append(plan.id, "leftover", {}, clock.now())  # e.g. a crash mid-way

    assert ledger.create(plan, [("alarm_received", {})], clock.now())

    assert [e.kind for e in ledger.events(plan.id)] == ["leftover", "alarm_received"]
    assert ledger.verify_report(plan.id).ok


def test_deferred_records_are_written_in_one_call_at_the_end(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {})], clock.now())
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    with ledger.deferred():
        ledger.append(plan.id, "slack_posted", {"ts": "1.2"}, clock.now())
        ledger.append(plan.id, "metric_graph", {"posted": False}, clock.now())
        assert ledger.events(plan.id)[-1].kind == "alarm_received"  # nothing written yet
        calls.clear()

    assert calls == ["TransactWriteItems"]
    assert [e.kind for e in ledger.events(plan.id)] == ["alarm_received", "slack_posted", "metric_graph"]
    assert ledger.verify_report(plan.id).ok


def test_deferred_records_are_written_even_when_the_block_raises(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan)

    with pytest.raises(RuntimeError), ledger.deferred():
        ledger.append(plan.id, "slack_failed", {"error": "timeout"}, clock.now())
        raise RuntimeError("the Slack call blew up")

    assert [e.kind for e in ledger.events(plan.id)] == ["slack_failed"]


def test_deferred_records_that_lose_a_race_are_appended_after_the_winner(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {})], clock.now())
    other = Ledger(ledger.dynamodb, PLANS, EVENTS)  # e.g. the interactions function, concurrently

    with ledger.deferred():
        ledger.append(plan.id, "slack_posted", {}, clock.now())
        ledger.append(plan.id, "metric_graph", {}, clock.now())
        other.append(plan.id, "approved", {"by": "U1"}, clock.now())  # takes seq 2 first

    assert [(e.seq, e.kind) for e in ledger.events(plan.id)] == [
        (1, "alarm_received"), (2, "approved"), (3, "slack_posted"), (4, "metric_graph"),
    ]  # fmt: skip
    assert ledger.verify_report(plan.id).ok


def test_prefetch_reads_several_items_in_one_call_each_used_once(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan)
    assert ledger.claim("checkout:live", plan.id, None)
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    ledger.prefetch([plan.id, "open#checkout:live", "control#kill-switch"])
    found = (ledger.get(plan.id), ledger.holder("checkout:live"), ledger.item("control#kill-switch"))

    assert calls == ["BatchGetItem"]
    assert found[0] is not None and found[0].id == plan.id and found[1] == plan.id and found[2] is None
    ledger.get(plan.id)  # used once: a second read goes to the table
    assert calls == ["BatchGetItem", "GetItem"]
