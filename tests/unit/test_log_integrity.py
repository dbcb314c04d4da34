"""The remediation log against someone who can write its items (issue 18, items 2, 3 and 7), at the ledger's level.

Records put outside Medic's appends (beyond the head anchor, or in a seq Medic would take next) are named and never
adopted; the records of every plan write carry the plan's state and content hash, so an edited plan item no longer
matches its log; a non-finite number is never stored, and an unreadable item never stops the tools. The same attacks
through the real handlers and `medic log` over HTTP are in tests/integration/test_log_cli.py and test_log_digests.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from medic.actions import get_action
from medic.alarms.signals import Target
from medic.clock import ManualClock, iso
from medic.facts import Facts
from medic.ledger.chain import GENESIS, may_become
from medic.ledger.store import HEAD_PREFIX, Ledger, event_hash
from medic.plan import Plan, approval_hash, plan_content_hash, plan_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PLANS, EVENTS = "medic-plans", "medic-events"
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-live-spillover"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 5, 1, tzinfo=UTC))


def floor_plan(clock: ManualClock, *, state_ts: str = "2026-11-22T05:00:00.000Z", status: str = "PROPOSED",
               to: float = 72) -> Plan:  # fmt: skip
    facts = Facts(function_name="checkout", qualifier="live", pc_requested=20)
    [action] = get_action("set_provisioned_concurrency").plan(Target.function("checkout", "live"),
                                                              {"concurrency": 72}, facts)  # fmt: skip
    action.after["provisioned_concurrency"] = to
    now = iso(clock.now())
    plan = Plan(
        id=plan_id(ALARM_ARN, state_ts), status=status, alarm_arn=ALARM_ARN, alarm_name="checkout-live-spillover",
        state_timestamp=state_ts, account="123456789012", region="us-east-1", signal="spillover",
        target="checkout:live", function_name="checkout", qualifier="live", diagnosis="pc_floor_too_low",
        rule="floor-too-low", mode="approve", actions=[action], created_at=now, updated_at=now,
    )  # fmt: skip
    plan.approval_hash = approval_hash(plan)
    return plan


def put_forged(dynamodb: DynamoDBClient, pid: str, seq: int, prev_hash: str, kind: str = "approval") -> str:
    """A correctly hashed record linked to `prev_hash`, put with PutItem as any role of Medic's could."""
    at, data = "2026-11-22T05:30:00.000Z", {"user": "U0ATTACKER"}
    digest = event_hash(pid, seq, at, kind, data, prev_hash)
    dynamodb.put_item(TableName=EVENTS, Item={
        "plan_id": {"S": pid}, "seq": {"N": str(seq)}, "at": {"S": at}, "kind": {"S": kind},
        "data": {"S": json.dumps(data)}, "prev_hash": {"S": prev_hash}, "hash": {"S": digest},
    })  # fmt: skip
    return digest


def head_of(dynamodb: DynamoDBClient, pid: str) -> tuple[int, str]:
    item = dynamodb.get_item(TableName=PLANS, Key={"plan_id": {"S": HEAD_PREFIX + pid}})["Item"]
    return int(item["head_seq"]["N"]), item["head_hash"]["S"]


# --- item 2: records the head anchor does not cover ------------------------------------------------


def test_a_correctly_linked_record_beyond_the_head_anchor_is_named(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {}), ("plan_created", {})], clock.now())
    seq, digest = head_of(dynamodb, plan.id)

    put_forged(dynamodb, plan.id, seq + 1, digest)

    report = ledger.verify_report(plan.id)
    assert (report.ok, report.first_bad_seq) == (False, seq + 1)
    assert report.problem == (f"record #{seq + 1} is beyond the head anchor (#{seq}): not part of the log Medic's "
                              "writers committed")  # fmt: skip


def test_an_append_skips_a_record_beyond_the_anchor_instead_of_adopting_it(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {}), ("plan_created", {})], clock.now())
    seq, digest = head_of(dynamodb, plan.id)
    forged = put_forged(dynamodb, plan.id, seq + 1, digest)

    for writer in (ledger, Ledger(dynamodb, PLANS, EVENTS)):  # the one that wrote the head, and a cold one
        event = writer.append(plan.id, "click_ignored", {"user": "U0ONCALL"}, clock.now())
        assert event.prev_hash != forged, "the forged record was adopted into the chain"
    first, second = ledger.events(plan.id)[-2:]
    assert (first.seq, first.prev_seq, first.prev_hash) == (seq + 2, seq, digest)
    assert (second.seq, second.prev_seq, second.prev_hash) == (seq + 3, None, first.hash)
    assert head_of(dynamodb, plan.id) == (seq + 3, second.hash)
    report = ledger.verify_report(plan.id)
    assert report.first_bad_seq == seq + 1 and report.problems == [
        f"record #{seq + 1} is not linked into the chain (no later record links to it): not part of the log "
        "Medic's writers committed"
    ]


def test_a_record_squatting_the_first_seq_of_a_new_chain_neither_blocks_nor_joins_it(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    put_forged(dynamodb, plan.id, 1, GENESIS, kind="alarm_received")  # plan ids are predictable

    assert ledger.create(plan, [("alarm_received", {"real": True})], clock.now())

    [squatter, real] = ledger.events(plan.id)
    assert (real.seq, real.prev_seq, real.prev_hash, real.data) == (2, 0, GENESIS, {"real": True})
    report = ledger.verify_report(plan.id)
    assert (report.first_bad_seq, len(report.problems)) == (1, 1) and squatter.seq == 1


def test_a_writer_with_a_stale_head_links_after_the_real_one(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {})], clock.now())
    other = Ledger(ledger.dynamodb, PLANS, EVENTS)
    other.append(plan.id, "approval", {"user": "U1"}, clock.now())

    event = ledger.append(plan.id, "slack_posted", {}, clock.now())  # its cached head is #1: refused, then #3

    assert (event.seq, event.prev_seq) == (3, None)
    assert ledger.verify_report(plan.id).ok


# --- item 3: the plan item against its log --------------------------------------------------------


def test_every_plan_write_logs_the_plan_state_and_content(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {}), ("plan_created", {})], clock.now())
    clock.advance(60)
    approved = ledger.transition(plan, "APPROVED", clock.now(), decided_by=["U1"], record=("approval", {"user": "U1"}))
    ledger.append(plan.id, "enqueued", {}, clock.now())

    content = plan_content_hash(plan)
    assert [(e.kind, e.plan_state, e.plan_content) for e in ledger.events(plan.id)] == [
        ("alarm_received", "PROPOSED", content), ("plan_created", "PROPOSED", content),
        ("approval", "APPROVED", content), ("enqueued", "APPROVED", content),
    ]  # fmt: skip
    assert plan_content_hash(approved) == content, "deciding changes the state, not the content"
    assert ledger.verify_report(plan.id).ok


def test_a_plan_item_whose_actions_were_edited_no_longer_matches_its_log(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {})], clock.now())
    edited = plan.model_copy(deep=True)
    edited.actions[0].after["provisioned_concurrency"] = 900
    edited.approval_hash = approval_hash(edited)  # recomputed: the approval binding alone would not see it

    dynamodb.update_item(TableName=PLANS, Key={"plan_id": {"S": plan.id}}, UpdateExpression="SET doc = :doc",
                         ExpressionAttributeValues={":doc": {"S": edited.model_dump_json()}})  # fmt: skip

    report = ledger.verify_report(plan.id)
    assert (report.ok, report.first_bad_seq) == (False, None)
    assert report.problem.startswith(f"the plan item does not match its log: its content hash is "
                                     f"{plan_content_hash(edited)[:16]}…, record #1 logged "
                                     f"{plan_content_hash(plan)[:16]}…")  # fmt: skip


def test_an_edit_written_back_by_medic_is_still_caught_by_the_first_record(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {})], clock.now())
    edited = plan.model_copy(deep=True)
    edited.actions[0].after["provisioned_concurrency"] = 900
    dynamodb.update_item(TableName=PLANS, Key={"plan_id": {"S": plan.id}}, UpdateExpression="SET doc = :doc",
                         ExpressionAttributeValues={":doc": {"S": edited.model_dump_json()}})  # fmt: skip

    reader = Ledger(dynamodb, PLANS, EVENTS)
    current = reader.get(plan.id)
    assert current is not None
    reader.transition(current, "REJECTED", clock.now(), record=("rejection", {"user": "U1"}))

    report = ledger.verify_report(plan.id)
    assert "record #2 logs another plan content than record #1" in report.problems[0]


def test_a_plan_state_moved_back_is_named(ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {})], clock.now())
    ledger.transition(plan, "REJECTED", clock.now(), record=("rejection", {"user": "U1"}))

    dynamodb.update_item(
        TableName=PLANS,
        Key={"plan_id": {"S": plan.id}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": "APPROVED"}},
    )
    doc = plan.model_copy(update={"status": "APPROVED"}).model_dump_json()
    dynamodb.update_item(TableName=PLANS, Key={"plan_id": {"S": plan.id}}, UpdateExpression="SET doc = :doc",
                         ExpressionAttributeValues={":doc": {"S": doc}})  # fmt: skip

    report = ledger.verify_report(plan.id)
    assert report.problem == ("the plan item is APPROVED, which cannot follow REJECTED (logged at record #2): its "
                              "state was edited after the fact")  # fmt: skip


def test_records_written_from_a_stale_copy_of_the_plan_raise_no_false_alarm(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {})], clock.now())
    other = Ledger(ledger.dynamodb, PLANS, EVENTS)  # another function moves the plan on meanwhile
    current = other.get(plan.id)
    assert current is not None
    other.transition(current, "APPROVED", clock.now(), record=("approval", {"user": "U1"}))

    ledger.append(plan.id, "click_ignored", {"user": "U2"}, clock.now())  # logs the plan as PROPOSED, as it wrote it

    assert ledger.events(plan.id)[-1].plan_state == "PROPOSED"
    assert ledger.verify_report(plan.id).ok


def test_the_states_a_plan_may_reach() -> None:
    assert may_become("PROPOSED", "VERIFIED") and may_become("APPLYING", "APPLYING")
    assert not may_become("APPLIED", "APPROVED") and not may_become("REJECTED", "APPROVED")


# --- item 7: non-finite numbers and unreadable items ----------------------------------------------


def test_a_plan_holding_a_non_finite_number_is_stored_blocked_and_readable(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock, to=float("inf"))
    plan.recent_datapoints = [35.0, float("nan")]
    plan.alarm_value = float("inf")

    assert ledger.create(plan, [("alarm_received", {"value": float("inf")})], clock.now(),
                         claim=("checkout:live", None))  # fmt: skip

    stored = ledger.get(plan.id)
    assert stored is not None and stored == plan, "the caller goes on with what was stored"
    assert (stored.status, stored.alarm_value, stored.recent_datapoints) == ("BLOCKED", None, [35.0])
    assert stored.actions[0].after == {"provisioned_concurrency": None}
    [refusal] = stored.blocked_by
    assert refusal.guard == "non_finite_number"
    assert refusal.observed == ("alarm_value = inf, recent_datapoints[1] = nan, "
                                "actions[0].after.provisioned_concurrency = inf")  # fmt: skip
    assert [(e.kind, e.data.get("value")) for e in ledger.events(plan.id)] == [("alarm_received", "inf"),
                                                                               ("blocked", None)]  # fmt: skip
    assert ledger.holder("checkout:live") is None, "a refused plan holds no target"
    assert ledger.verify_report(plan.id).ok


def test_a_noop_with_a_non_finite_number_stays_a_noop_without_it(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock, status="NOOP")
    plan.alarm_threshold = float("-inf")

    assert ledger.create(plan, [("alarm_received", {})], clock.now())

    stored = ledger.get(plan.id)
    assert stored is not None and (stored.status, stored.alarm_threshold, stored.blocked_by) == ("NOOP", None, [])
    assert [e.kind for e in ledger.events(plan.id)] == ["alarm_received", "non_finite_removed"]


def test_an_unreadable_plan_item_is_named_and_the_others_still_read(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    good = floor_plan(clock)
    bad = floor_plan(clock, state_ts="2026-11-22T06:00:00.000Z")
    for plan in (good, bad):
        assert ledger.create(plan, [("alarm_received", {})], clock.now())
    poisoned = json.loads(bad.model_dump_json()) | {"recent_datapoints": [None]}  # how a NaN was stored before
    dynamodb.update_item(TableName=PLANS, Key={"plan_id": {"S": bad.id}}, UpdateExpression="SET doc = :doc",
                         ExpressionAttributeValues={":doc": {"S": json.dumps(poisoned)}})  # fmt: skip

    assert ledger.get(bad.id) is None
    assert ledger.plan_or_problem(bad.id)[1] == "recent_datapoints.0: Input should be a valid number (1 problem)"
    assert [plan.id for plan in ledger.by_state("PROPOSED")] == [good.id]
    plans, unreadable = ledger.scan_plans()
    assert [p.id for p in plans] == [good.id] and [item.key for item in unreadable] == [bad.id]
    report = ledger.verify_report(bad.id)
    assert report.problem.startswith("the plan item is unreadable: recent_datapoints.0")


def test_an_unreadable_record_is_named_and_the_chain_still_checked(
    ledger: Ledger, dynamodb: DynamoDBClient, clock: ManualClock
) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan, [("alarm_received", {}), ("plan_created", {}), ("slack_posted", {})], clock.now())
    dynamodb.update_item(TableName=EVENTS, Key={"plan_id": {"S": plan.id}, "seq": {"N": "2"}},
                         UpdateExpression="SET #d = :d", ExpressionAttributeNames={"#d": "data"},
                         ExpressionAttributeValues={":d": {"S": "{not json"}})  # fmt: skip

    events, unreadable = ledger.records(plan.id)
    assert [e.seq for e in events] == [1, 3] and [(r.seq, r.problem[:24]) for r in unreadable] == [
        (2, "Expecting property name ")
    ]
    report = ledger.verify_report(plan.id)
    assert report.first_bad_seq == 2 and report.problem.startswith("record #2 is unreadable: Expecting property")
