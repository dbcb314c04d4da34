"""The remediation log for operators (`medic log list|show|verify|export`), on moto's in-process DynamoDB.

Plans and records are written the way the pipeline writes them (through the Ledger); tampering is done the
way an attacker with table access would: straight on the events table.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medic.actions import get_action
from medic.actions.base import PlannedAction
from medic.alarms.signals import Target
from medic.clock import ManualClock, iso
from medic.errors import InputError
from medic.facts import Facts
from medic.ledger import audit
from medic.ledger.store import Ledger, LogEvent, event_hash
from medic.plan import Plan, approval_hash, plan_id
from medic.planning.verdict import ConditionResult, Decision, RowTrace
from medic_tools.cli import main

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PLANS, EVENTS = "medic-plans", "medic-events"
START = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
APPROVER = "U0ONCALL"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def floor_plan(clock: ManualClock, alarm: str = "checkout-live-spillover", function: str = "checkout") -> Plan:
    """A PROPOSED plan raising `function:live`'s provisioned-concurrency floor 20 → 66."""
    arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
    facts = Facts(function_name=function, qualifier="live", pc_requested=20)
    target = Target.function(function, "live")
    [action] = get_action("set_provisioned_concurrency").plan(target, {"concurrency": 66}, facts)
    now = iso(clock.now())
    plan = Plan(
        id=plan_id(arn, now), status="PROPOSED", alarm_arn=arn, alarm_name=alarm, state_timestamp=now,
        account="123456789012", region="us-east-1", signal="spillover", target=f"{function}:live",
        function_name=function, qualifier="live", diagnosis="pc_floor_too_low", rule="floor-too-low", mode="approve",
        actions=[action], created_at=now, updated_at=now, decision=floor_decision(),
    )  # fmt: skip
    plan.approval_hash = approval_hash(plan)
    return plan


def floor_decision() -> Decision:
    return Decision(
        signal="spillover", table="spillover", row="floor-too-low", diagnosis="pc_floor_too_low", mode="approve",
        rationale="raise the floor to the peak plus 20% headroom",
        trace=[
            RowTrace(row="pc-not-ready", matched=False, conditions=[
                ConditionResult(expression="pc_status != 'READY'", result="false", facts={"pc_status": "READY"}),
            ]),
            RowTrace(row="floor-too-low", matched=True, conditions=[
                ConditionResult(expression="peak_concurrency > pc_allocated", result="true",
                                facts={"peak_concurrency": 55.0, "pc_allocated": 20}),
            ]),
        ],
    )  # fmt: skip


def triaged(ledger: Ledger, clock: ManualClock, plan: Plan) -> Plan:
    """Store the plan and the records triage writes for it (alarm, facts, decision, guardrails, plan, card)."""
    assert ledger.create(plan)
    now = clock.now()
    ledger.append(plan.id, "alarm_received", {
        "event_id": "e-1", "alarm_arn": plan.alarm_arn, "alarm_name": plan.alarm_name, "state": "ALARM",
        "state_timestamp": plan.state_timestamp, "reason": "Threshold Crossed: 1 datapoint [180.0] > 0.0",
        "signal": plan.signal, "target": plan.target,
    }, now)  # fmt: skip
    ledger.append(plan.id, "facts_collected", {
        "facts": {"pc_allocated": 20, "peak_concurrency": 55.0, "memory_mb": 1024},
        "sources": {"pc_allocated": "lambda:GetProvisionedConcurrencyConfig", "memory_mb": "lambda:GetFunction",
                    "peak_concurrency": "cloudwatch:GetMetricData ConcurrentExecutions Maximum"},
        "missing": {"downstream_database": "no DB_HOST in the function's environment"},
    }, now)  # fmt: skip
    assert plan.decision is not None
    ledger.append(plan.id, "decision", plan.decision.model_dump(mode="json"), now)
    ledger.append(plan.id, "guardrails", {"clamps": {}, "refusals": []}, now)
    ledger.append(plan.id, "plan_created", {
        "status": plan.status, "diagnosis": plan.diagnosis, "rule": plan.rule, "mode": plan.mode, "dry_run": False,
        "reason": "", "approval_hash": plan.approval_hash, "expires_at": None,
        "actions": [{"kind": a.kind, "target": a.target, "before": a.before, "after": a.after} for a in plan.actions],
    }, now)  # fmt: skip
    ledger.append(plan.id, "slack_posted", {"channel": "C0MEDICOPS", "ts": "1795323600.000100"}, now)
    return plan


def remediated(ledger: Ledger, clock: ManualClock, plan: Plan) -> Plan:
    """Approve, apply and verify a triaged plan, with the records each step writes."""
    clock.advance(60)
    plan = ledger.transition(plan, "APPROVED", clock.now(), decided_by=[APPROVER])
    ledger.append(plan.id, "approval", {"user": APPROVER, "team": "T0MEDIC", "channel": "C0MEDICOPS",
                                        "message_ts": "1795323600.000100", "approval_hash": plan.approval_hash},
                  clock.now())  # fmt: skip
    plan = ledger.transition(plan, "APPLYING", clock.now())
    ledger.append(plan.id, "applying", {"actions": 1}, clock.now())
    [action] = plan.actions
    ledger.append(plan.id, "aws_call", {"action": action.kind, "target": action.target, "request_id": "req-123",
                                        "before": action.before, "after": action.after}, clock.now())  # fmt: skip
    plan = ledger.transition(plan, "APPLIED", clock.now(), applied_at=iso(clock.now()))
    ledger.append(plan.id, "applied", {"verify_after": iso(clock.advance(300))}, clock.now())
    plan = ledger.transition(plan, "VERIFIED", clock.now())
    ledger.append(plan.id, "verified", {"outcome": "VERIFIED", "alarm_state": "OK", "datapoints": [40.0, 0.0],
                                        "threshold": 0.0, "checked_at": iso(clock.now()),
                                        "note": "alarm OK; latest 0 within threshold 0"}, clock.now())  # fmt: skip
    return plan


def tamper(dynamodb: DynamoDBClient, pid: str, seq: int, data: dict[str, Any]) -> None:
    """Rewrite one record's data in place, as someone with UpdateItem on the events table could."""
    dynamodb.update_item(
        TableName=EVENTS, Key={"plan_id": {"S": pid}, "seq": {"N": str(seq)}}, UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "data"}, ExpressionAttributeValues={":d": {"S": json.dumps(data)}},
    )  # fmt: skip


def in_order(text: str, *patterns: str) -> None:
    """Every pattern matches a line of `text`, each on a later line than the one before."""
    lines = text.splitlines()
    position = -1
    for pattern in patterns:
        found = next((i for i, line in enumerate(lines) if i > position and re.search(pattern, line)), None)
        assert found is not None, f"{pattern!r} not found after line {position}:\n{text}"
        position = found


# -- --since ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", "2026-11-22T04:30:00.000Z"), ("24h", "2026-11-21T05:00:00.000Z"), ("7d", "2026-11-15T05:00:00.000Z"),
    ("2w", "2026-11-08T05:00:00.000Z"), ("90s", "2026-11-22T04:58:30.000Z"), (" 24H ", "2026-11-21T05:00:00.000Z"),
    ("2026-11-20", "2026-11-20T00:00:00.000Z"), ("2026-11-20T06:30Z", "2026-11-20T06:30:00.000Z"),
    ("2026-11-20T06:30:00+02:00", "2026-11-20T04:30:00.000Z"),
])  # fmt: skip
def test_since_is_a_duration_back_from_now_or_an_iso_time(text: str, expected: str) -> None:
    assert audit.parse_since(text, START) == expected


@pytest.mark.parametrize("text", ["yesterday", "24", "h24", "-1d", "2026-13-01", ""])
def test_a_bad_since_names_the_field(text: str) -> None:
    with pytest.raises(InputError) as error:
        audit.parse_since(text, START)
    assert error.value.field == "--since"
    assert "duration" in error.value.problem and "ISO" in error.value.problem


# -- log list --------------------------------------------------------------------------------------


@pytest.fixture
def three_plans(ledger: Ledger, clock: ManualClock) -> list[Plan]:
    """checkout (VERIFIED, decided by U0ONCALL), search (PROPOSED), then a database plan acting on orders-worker."""
    first = remediated(ledger, clock, triaged(ledger, clock, floor_plan(clock)))
    clock.set(datetime(2026, 11, 23, 5, 0, tzinfo=UTC))
    second = triaged(ledger, clock, floor_plan(clock, alarm="search-live-spillover", function="search"))
    clock.advance(3600)
    now = iso(clock.now())
    action = PlannedAction(kind="set_reserved_concurrency", target="orders-worker", function_name="orders-worker",
                           primary="reserved_concurrency", before={"reserved_concurrency": 200},
                           after={"reserved_concurrency": 80})  # fmt: skip
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-db-connections"
    database = Plan(
        id=plan_id(arn, now), status="PROPOSED", alarm_arn=arn, alarm_name="orders-db-connections",
        state_timestamp=now, account="123456789012", region="us-east-1", signal="db_connections",
        target="db:orders", db_instance="orders", diagnosis="consumer_floods_db", rule="cap-consumer",
        mode="approve", actions=[action], created_at=now, updated_at=now,
    )  # fmt: skip
    assert ledger.create(database)
    ledger.append(database.id, "plan_created", {"status": "PROPOSED"}, clock.now())
    return [first, second, database]


def test_list_is_newest_first_with_who_decided(ledger: Ledger, three_plans: list[Plan]) -> None:
    first, second, database = three_plans
    plans = audit.list_plans(ledger)
    assert [p.id for p in plans] == [database.id, second.id, first.id]
    rows = [audit.plan_row(p) for p in plans]
    assert rows[2]["state"] == "VERIFIED" and rows[2]["decided_by"] == APPROVER
    assert rows[0]["decided_by"] is None and rows[0]["functions"] == ["orders-worker"]
    assert set(rows[0]) >= {"id", "created_at", "state", "signal", "diagnosis", "target", "rule", "decided_by"}


def test_list_filters_by_function_including_the_functions_a_database_plan_acts_on(
    ledger: Ledger, three_plans: list[Plan]
) -> None:
    first, _, database = three_plans
    assert [p.id for p in audit.list_plans(ledger, function="checkout")] == [first.id]
    assert [p.id for p in audit.list_plans(ledger, function="orders-worker")] == [database.id]
    assert audit.list_plans(ledger, function="nobody") == []


def test_list_by_state_and_since(ledger: Ledger, three_plans: list[Plan]) -> None:
    first, second, database = three_plans
    assert [p.id for p in audit.list_plans(ledger, state="verified")] == [first.id]
    assert [p.id for p in audit.list_plans(ledger, state="PROPOSED")] == [database.id, second.id]
    recent = audit.list_plans(ledger, state="PROPOSED", since="2026-11-23T05:30:00.000Z")
    assert [p.id for p in recent] == [database.id]
    assert [p.id for p in audit.list_plans(ledger, since="2026-11-23T00:00:00.000Z")] == [database.id, second.id]


def test_an_unknown_state_names_the_field_and_the_states(ledger: Ledger) -> None:
    with pytest.raises(InputError) as error:
        audit.list_plans(ledger, state="DONE")
    assert error.value.field == "--state" and "VERIFIED" in error.value.problem


def test_the_table_is_aligned(ledger: Ledger, three_plans: list[Plan]) -> None:
    lines = audit.plans_table(audit.list_plans(ledger)).splitlines()
    header, rows = lines[0], lines[1:4]
    for column in ("CREATED", "STATE", "SIGNAL", "DIAGNOSIS", "TARGET", "RULE", "DECIDED BY"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows), column
    assert "VERIFIED" in rows[2] and rows[2].endswith(APPROVER)
    assert lines[-1] == "3 plans"


def test_auto_mode_plans_were_decided_by_medic() -> None:
    plan = floor_plan(ManualClock(START)).model_copy(update={"mode": "auto", "status": "APPLIED"})
    assert audit.who_decided(plan) == "medic (auto)"
    assert audit.who_decided(plan.model_copy(update={"status": "BLOCKED"})) is None


# -- log show --------------------------------------------------------------------------------------


def test_show_tells_the_whole_story_in_order(ledger: Ledger, clock: ManualClock) -> None:
    plan = remediated(ledger, clock, triaged(ledger, clock, floor_plan(clock)))
    text = audit.load_story(ledger, plan.id).text()
    in_order(
        text,
        rf"^plan {plan.id}: VERIFIED$",
        r"alarm\s+checkout-live-spillover → ALARM at 2026-11-22T05:00:00.000Z",
        r"reason: Threshold Crossed",
        r"facts\s+3 facts collected, 1 missing",
        r"from lambda:GetProvisionedConcurrencyConfig: pc_allocated=20",
        r"missing downstream_database: no DB_HOST",
        r"decision\s+table spillover: row floor-too-low matched → pc_floor_too_low \(mode approve\)",
        r"✘ pc-not-ready: `pc_status != 'READY'` is false",
        r"✔ floor-too-low: matched",
        r"guardrails\s+passed",
        r"plan\s+plan PROPOSED",
        r"change: set_provisioned_concurrency on checkout:live: provisioned_concurrency 20 → 66",
        r"slack\s+card posted to C0MEDICOPS, ts 1795323600.000100",
        r"approval\s+approved by U0ONCALL",
        r"aws call\s+set_provisioned_concurrency on checkout:live: provisioned_concurrency 20 → 66",
        r"request id req-123",
        r"applied\s+every change made",
        r"verified\s+alarm OK",
        r"^chain intact: 11 records",
    )


def test_show_json_holds_the_plan_every_record_and_the_chain(ledger: Ledger, clock: ManualClock) -> None:
    plan = triaged(ledger, clock, floor_plan(clock))
    document = json.loads(json.dumps(audit.load_story(ledger, plan.id).as_json()))
    assert document["plan"]["id"] == plan.id
    assert [e["kind"] for e in document["events"]][:2] == ["alarm_received", "facts_collected"]
    assert document["chain"]["ok"] is True and document["chain"]["events"] == 6


def test_a_reproposed_plan_and_its_origin_point_to_each_other(ledger: Ledger, clock: ManualClock) -> None:
    origin = triaged(ledger, clock, floor_plan(clock))
    fresh = origin.model_copy(update={"id": f"{origin.id}-r1"})
    assert ledger.create(fresh)
    ledger.append(origin.id, "reproposed", {"plan_id": fresh.id, "status": "PROPOSED"}, clock.now())
    ledger.append(fresh.id, "reproposal_of", {"plan_id": origin.id, "facts": {}, "missing": {}}, clock.now())
    old, new = audit.load_story(ledger, origin.id), audit.load_story(ledger, fresh.id)
    assert old.links["reproposed_as"] == [fresh.id] and new.links["reproposal_of"] == origin.id
    assert f"re-proposed as {fresh.id}" in old.text() and f"re-proposal of {origin.id}" in new.text()
    assert re.search(rf"re-proposed\s+decided again from the live state as {fresh.id}", old.text())


def test_a_storm_attachment_is_linked_both_ways(ledger: Ledger, clock: ManualClock) -> None:
    open_plan = triaged(ledger, clock, floor_plan(clock))
    late = floor_plan(clock, alarm="checkout-live-p99").model_copy(update={"status": "SUPERSEDED"})
    assert ledger.create(late)
    ledger.append(late.id, "superseded", {"by": open_plan.id, "alarm_name": late.alarm_name, "target": late.target,
                                          "state_timestamp": late.state_timestamp}, clock.now())  # fmt: skip
    ledger.append(open_plan.id, "alarm_attached", {"plan_id": late.id, "alarm_name": late.alarm_name,
                                                   "state_timestamp": late.state_timestamp, "value": 3.0},
                  clock.now())  # fmt: skip
    assert f"attached to the open plan {open_plan.id}" in audit.load_story(ledger, late.id).text()
    assert audit.load_story(ledger, open_plan.id).links["attached"] == [late.id]


def test_a_record_of_an_unknown_or_unexpected_shape_is_shown_as_it_is(ledger: Ledger, clock: ManualClock) -> None:
    plan = floor_plan(clock)
    assert ledger.create(plan)
    ledger.append(plan.id, "something_new", {"answer": 42}, clock.now())
    ledger.append(plan.id, "aws_call", {"unexpected": True}, clock.now())
    text = audit.load_story(ledger, plan.id).text()
    assert re.search(r'#1 .*something_new\s+\{"answer": 42\}', text)
    assert re.search(r'#2 .*aws_call\s+\{"unexpected": true\}', text)


def test_show_of_an_unknown_plan_is_an_input_error(ledger: Ledger) -> None:
    with pytest.raises(InputError) as error:
        audit.load_story(ledger, "p-nope")
    assert error.value.field == "PLAN" and "p-nope" in error.value.problem


# -- log verify ------------------------------------------------------------------------------------


def test_verify_names_a_modified_record_and_its_position(
    ledger: Ledger, clock: ManualClock, dynamodb: DynamoDBClient
) -> None:
    good = remediated(ledger, clock, triaged(ledger, clock, floor_plan(clock)))
    bad = remediated(ledger, clock, triaged(ledger, clock, floor_plan(clock, alarm="search-live", function="search")))
    [call] = [e for e in ledger.events(bad.id) if e.kind == "aws_call"]
    tamper(dynamodb, bad.id, call.seq, {**call.data, "request_id": "req-forged"})
    reports = audit.verify_chains(ledger)
    assert {r.plan_id: r.ok for r in reports} == {good.id: True, bad.id: False}
    [broken] = [r for r in reports if not r.ok]
    assert broken.first_bad_seq == call.seq
    text = audit.verify_text(reports)
    assert f"{bad.id}: BROKEN at record #{call.seq} (of 11): record #{call.seq} was modified" in text
    assert text.endswith("2 chains checked: 1 intact, 1 broken")


def test_verify_detects_a_deleted_last_record(ledger: Ledger, clock: ManualClock, dynamodb: DynamoDBClient) -> None:
    plan = remediated(ledger, clock, triaged(ledger, clock, floor_plan(clock)))
    dynamodb.delete_item(TableName=EVENTS, Key={"plan_id": {"S": plan.id}, "seq": {"N": "11"}})
    [report] = audit.verify_chains(ledger, plan.id)
    assert not report.ok and report.first_bad_seq == 11
    assert audit.verify_text([report], one=True).startswith(f"{plan.id}: BROKEN at record #11")


def test_verify_covers_the_control_flags_chains(ledger: Ledger, clock: ManualClock, dynamodb: DynamoDBClient) -> None:
    plan = triaged(ledger, clock, floor_plan(clock))
    ledger.append("control#kill-switch", "control_set", {"enabled": True, "by": APPROVER, "reason": "drill"},
                  clock.now())  # fmt: skip
    ledger.append("control#kill-switch", "control_set", {"enabled": False, "by": APPROVER, "reason": ""}, clock.now())
    assert {r.plan_id for r in audit.verify_chains(ledger)} == {plan.id, "control#kill-switch"}
    tamper(dynamodb, "control#kill-switch", 1, {"enabled": False, "by": APPROVER, "reason": "drill"})
    [broken] = [r for r in audit.verify_chains(ledger) if not r.ok]
    assert (broken.plan_id, broken.first_bad_seq) == ("control#kill-switch", 1)
    story = audit.load_story(ledger, "control#kill-switch").text()
    assert story.startswith("chain control#kill-switch (a control flag)")
    assert re.search(r"control\s+turned off by U0ONCALL", story)
    assert story.endswith("chain BROKEN at record #1: record #1 was modified (its hash does not match its content)")


def test_a_control_flag_whose_head_anchor_was_deleted_is_still_checked(
    ledger: Ledger, clock: ManualClock, dynamodb: DynamoDBClient
) -> None:
    ledger.append("control#circuit-breaker", "control_set", {"enabled": False, "by": APPROVER, "reason": "fixed"},
                  clock.now())  # fmt: skip
    dynamodb.delete_item(TableName=PLANS, Key={"plan_id": {"S": "head#control#circuit-breaker"}})
    [report] = audit.verify_chains(ledger)
    assert (report.plan_id, report.ok, report.first_bad_seq) == ("control#circuit-breaker", False, 1)


def test_verify_of_an_unknown_plan_is_an_input_error(ledger: Ledger) -> None:
    with pytest.raises(InputError) as error:
        audit.verify_chains(ledger, "p-nope")
    assert error.value.field == "--plan"


# -- log export ------------------------------------------------------------------------------------


def test_export_jsonl_holds_every_record_of_the_plans_in_range(
    ledger: Ledger, three_plans: list[Plan], clock: ManualClock
) -> None:
    first, second, database = three_plans
    ledger.append("control#kill-switch", "control_set", {"enabled": True, "by": APPROVER, "reason": ""}, clock.now())
    out = io.StringIO()
    count = audit.write_export(audit.export_events(ledger), "jsonl", out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(records) == 11 + 6 + 1 + 1
    assert [r["plan_id"] for r in records[:11]] == [first.id] * 11 and records[-1]["plan_id"] == "control#kill-switch"
    assert list(records[0]) == list(audit.EXPORT_FIELDS)
    assert records[0]["kind"] == "alarm_received" and isinstance(records[0]["data"], dict)
    recent = io.StringIO()
    audit.write_export(audit.export_events(ledger, since="2026-11-23T00:00:00.000Z"), "jsonl", recent)
    kept = {json.loads(line)["plan_id"] for line in recent.getvalue().splitlines()}
    assert kept == {second.id, database.id, "control#kill-switch"}


def test_export_csv_has_a_header_and_records_that_verify_again(ledger: Ledger, clock: ManualClock) -> None:
    plan = remediated(ledger, clock, triaged(ledger, clock, floor_plan(clock)))
    out = io.StringIO()
    audit.write_export(audit.export_events(ledger), "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert out.getvalue().splitlines()[0] == ",".join(audit.EXPORT_FIELDS)
    assert len(rows) == 11 and rows[0]["plan_id"] == plan.id and rows[0]["seq"] == "1"
    for row in rows:  # the export alone is enough to re-check every hash
        recomputed = event_hash(row["plan_id"], int(row["seq"]), row["at"], row["kind"], json.loads(row["data"]),
                                row["prev_hash"], json.loads(row["context"]),
                                prev_seq=int(row["prev_seq"]) if row["prev_seq"] else None,
                                plan_state=row["plan_state"], plan_content=row["plan_content"])  # fmt: skip
        assert recomputed == row["hash"]


def test_an_unknown_export_format_is_an_input_error() -> None:
    with pytest.raises(InputError) as error:
        audit.write_export(iter(list[LogEvent]()), "xml", io.StringIO())
    assert error.value.field == "--format"


# -- the command -----------------------------------------------------------------------------------


@pytest.fixture
def tables(monkeypatch: pytest.MonkeyPatch, ledger: Ledger) -> Ledger:
    """The environment `medic log` reads its tables from (boto3 inside the command talks to the same moto)."""
    monkeypatch.setenv("MEDIC_PLANS_TABLE", PLANS)
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", EVENTS)
    return ledger


def test_log_list_json(tables: Ledger, three_plans: list[Plan], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "list", "--function", "checkout", "--since", "2026-11-01", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == three_plans[0].id and row["decided_by"] == APPROVER


def test_log_verify_exits_1_naming_the_plan_and_record(
    tables: Ledger, clock: ManualClock, dynamodb: DynamoDBClient, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = remediated(tables, clock, triaged(tables, clock, floor_plan(clock)))
    assert main(["log", "verify"]) == 0
    assert "1 chain checked: 1 intact, 0 broken" in capsys.readouterr().out
    tamper(dynamodb, plan.id, 3, {"row": "forged"})
    assert main(["log", "verify"]) == 1
    assert f"{plan.id}: BROKEN at record #3" in capsys.readouterr().out
    assert main(["log", "verify", "--plan", plan.id, "--json"]) == 1
    [report] = json.loads(capsys.readouterr().out)
    assert (report["plan_id"], report["ok"], report["first_bad_seq"]) == (plan.id, False, 3)


def test_log_export_to_a_file(
    tables: Ledger, clock: ManualClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    triaged(tables, clock, floor_plan(clock))
    target = tmp_path / "log.csv"
    assert main(["log", "export", "--format", "csv", "--output", str(target)]) == 0
    assert len(target.read_text().splitlines()) == 1 + 6
    assert "6 records written" in capsys.readouterr().err
    assert main(["log", "export", "--format", "csv", "--output", str(tmp_path / "missing" / "log.csv")]) == 2
    assert "--output" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "field"), [
    (["log", "list", "--since", "last week"], "--since"),
    (["log", "list", "--since", ""], "--since"),
    (["log", "export", "--format", "jsonl", "--since", "soon"], "--since"),
    (["log", "list", "--state", "DONE"], "--state"),
    (["log", "show", "p-nope"], "PLAN"),
    (["log", "verify", "--plan", "p-nope"], "--plan"),
])  # fmt: skip
def test_bad_input_exits_2_naming_the_field(
    tables: Ledger, argv: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert f": {field}: " in capsys.readouterr().err


def test_without_the_tables_configured_the_command_says_which_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MEDIC_PLANS_TABLE", raising=False)
    monkeypatch.delenv("MEDIC_EVENTS_TABLE", raising=False)
    assert main(["log", "list"]) == 2
    assert "MEDIC_PLANS_TABLE" in capsys.readouterr().err


def test_a_lease_and_its_take_over_are_told_with_who_held_the_plan_until_when() -> None:
    from medic.ledger.audit import describe_event
    from medic.ledger.store import LogEvent

    def event(kind: str, data: dict[str, object]) -> LogEvent:
        return LogEvent(plan_id="p-1", seq=1, at="2026-11-22T05:00:00.000Z", kind=kind, data=data, prev_hash="",
                        hash="")  # fmt: skip

    applying = event("applying", {"actions": 1, "lease_owner": "a1", "lease_until": "2026-11-22T05:15:00.000Z"})
    taken = event("lease_taken_over", {"previous_owner": "a1", "expired_at": "2026-11-22T05:15:00.000Z",
                                       "lease_owner": "b2", "lease_until": "2026-11-22T06:45:00.000Z"})  # fmt: skip

    assert describe_event(applying) == ("applying", ["1 change(s) to make; executor a1 holds the plan until "
                                                     "2026-11-22T05:15:00.000Z"])  # fmt: skip
    assert describe_event(taken) == ("applying", ["resumed by executor b2 (until 2026-11-22T06:45:00.000Z): the lease "
                                                  "of a1 expired at 2026-11-22T05:15:00.000Z"])  # fmt: skip
    assert describe_event(event("applying", {"actions": 2})) == ("applying", ["2 change(s) to make"])  # older records
