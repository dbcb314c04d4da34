"""`medic log` on the tables of a real `medic simulate` run (the embedded AWS world, over HTTP).

The fixed-floor scenario is triaged, approved by U0ONCALL in Slack, applied by the executor and verified; the
command then reads the story back from DynamoDB as an operator would, and catches a record edited afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from medic.ledger.store import HEAD_PREFIX, LogEvent, event_hash
from medic.runtime import install
from medic_tools.cli import main
from medic_tools.scenario import load_scenario
from medic_tools.simulate import APPROVER, Outcome, Simulation, Story
from medic_tools.world.server import EmbeddedAWS

FLOOR = Path(__file__).resolve().parents[2] / "scenarios" / "spillover-fixed-floor.yaml"


@pytest.fixture
def run(aws: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch) -> tuple[Simulation, Outcome]:
    """The fixed-floor scenario, approved, applied and verified; MEDIC_* point `medic log` at its tables."""
    sim = Simulation(load_scenario(FLOOR), str(FLOOR), aws.endpoint_url, Story(None))
    outcome = sim.run("approve")
    monkeypatch.setenv("MEDIC_PLANS_TABLE", sim.infra["plans"])
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", sim.infra["events"])
    return sim, outcome


def in_order(text: str, *patterns: str) -> None:
    lines = text.splitlines()
    position = -1
    for pattern in patterns:
        found = next((i for i, line in enumerate(lines) if i > position and re.search(pattern, line)), None)
        assert found is not None, f"{pattern!r} not found after line {position}:\n{text}"
        position = found


def test_show_tells_the_simulated_story_from_the_alarm_to_verification(
    run: tuple[Simulation, Outcome], capsys: pytest.CaptureFixture[str]
) -> None:
    _, outcome = run
    [plan] = outcome.plans
    assert plan.status == "VERIFIED"
    [call] = [event for event in outcome.log if event.kind == "aws_call"]
    assert main(["log", "show", plan.id]) == 0
    story = capsys.readouterr().out
    in_order(
        story,
        rf"^plan {plan.id}: VERIFIED",
        r"alarm\s+checkout-live-spillover → ALARM at ",
        r"reason: Threshold Crossed",
        r"facts\s+\d+ facts collected",
        r"from lambda:GetProvisionedConcurrencyConfig: .*pc_allocated=20",
        r"decision\s+table spillover: row floor-too-low matched",
        r"✔ floor-too-low: matched",
        r"slack\s+card posted to C0MEDICOPS, ts \d+\.\d+",
        rf"approval\s+approved by {APPROVER}",
        rf"session\s+assumed .*medic-actions as session {plan.id}",
        r"aws call\s+set_provisioned_concurrency on checkout:live: provisioned_concurrency 20 → \d+",
        rf"request id {re.escape(call.data['request_id'])}",
        r"applied\s+every change made",
        r"verified\s+alarm OK",
        rf"^chain intact: {len(outcome.log)} records",
    )


def test_list_and_export_read_the_same_run(run: tuple[Simulation, Outcome], capsys: pytest.CaptureFixture[str]) -> None:
    _, outcome = run
    [plan] = outcome.plans
    assert main(["log", "list", "--since", "7d", "--state", "VERIFIED", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["id"], row["decided_by"], row["target"]) == (plan.id, APPROVER, "checkout:live")
    assert main(["log", "export", "--format", "csv"]) == 0
    # The run's plan; the alarm's recovery to OK, when the world delivers it to triage, is a NOOP plan of its own.
    rows = [r for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["plan_id"] == plan.id]
    assert [(r["plan_id"], int(r["seq"]), r["kind"]) for r in rows] == [(e.plan_id, e.seq, e.kind) for e in outcome.log]
    assert main(["log", "export", "--format", "jsonl"]) == 0
    exported = [LogEvent.model_validate(json.loads(line)) for line in capsys.readouterr().out.splitlines()]
    assert [event for event in exported if event.plan_id == plan.id] == outcome.log


def test_verify_names_the_plan_and_record_edited_after_the_fact(
    run: tuple[Simulation, Outcome], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, outcome = run
    [plan] = outcome.plans
    assert main(["log", "verify"]) == 0
    assert "0 broken" in capsys.readouterr().out
    [call] = [event for event in outcome.log if event.kind == "aws_call"]
    forged = {**call.data, "after": {"provisioned_concurrency": 20}}
    sim.clients.dynamodb.update_item(
        TableName=sim.infra["events"], Key={"plan_id": {"S": plan.id}, "seq": {"N": str(call.seq)}},
        UpdateExpression="SET #d = :d", ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":d": {"S": json.dumps(forged, sort_keys=True)}},
    )  # fmt: skip
    assert main(["log", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"{plan.id}: BROKEN at record #{call.seq}" in out and "1 broken" in out
    assert main(["log", "show", plan.id]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    problem = f"record #{call.seq} was modified (its hash does not match its content)"
    assert last == f"chain BROKEN at record #{call.seq}: {problem}"


# -- issue 18: records outside the committed chain (item 2), non-finite numbers and unreadable items (item 7) -----


def test_a_record_put_beyond_the_head_anchor_is_named_and_the_next_append_never_adopts_it(
    aws: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = Simulation(load_scenario(FLOOR), str(FLOOR), aws.endpoint_url, Story(None))
    sim.setup()
    monkeypatch.setenv("MEDIC_PLANS_TABLE", sim.infra["plans"])
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", sim.infra["events"])
    try:
        [plan] = sim.triage(sim.alarm_events())
        dynamodb = sim.clients.dynamodb
        anchor = dynamodb.get_item(TableName=sim.infra["plans"], Key={"plan_id": {"S": HEAD_PREFIX + plan.id}})
        seq, head = int(anchor["Item"]["head_seq"]["N"]) + 1, anchor["Item"]["head_hash"]["S"]
        at, data = plan.created_at, {"user": "U0ATTACKER", "approvals": ["U0ATTACKER"]}
        forged = event_hash(plan.id, seq, at, "approval", data, head)
        dynamodb.put_item(TableName=sim.infra["events"], Item={  # PutItem, as any of Medic's roles may
            "plan_id": {"S": plan.id}, "seq": {"N": str(seq)}, "at": {"S": at}, "kind": {"S": "approval"},
            "data": {"S": json.dumps(data)}, "prev_hash": {"S": head}, "hash": {"S": forged},
        })  # fmt: skip

        assert main(["log", "verify"]) == 1
        problem = f"record #{seq} is beyond the head anchor (#{seq - 1}): not part of the log Medic's writers committed"
        assert f"{plan.id}: BROKEN at record #{seq} (of {seq}): {problem}" in capsys.readouterr().out

        assert sim.click(plan, "approve")["statusCode"] == 200  # the real approval appends after the anchor
        sim.drain_executor()
    finally:
        install(None)
    approval = next(e for e in sim.outcome([plan]).log if e.kind == "approval" and e.data["user"] != "U0ATTACKER")
    assert (approval.seq, approval.prev_seq, approval.prev_hash) == (seq + 1, seq - 1, head)
    assert approval.prev_hash != forged, "the forged record was adopted into the chain"
    assert sim.outcome([plan]).plans[0].status == "APPLIED"
    assert main(["log", "verify", "--plan", plan.id]) == 1
    assert f"record #{seq} is not linked into the chain" in capsys.readouterr().out


def test_an_alarm_with_non_finite_datapoints_makes_a_readable_blocked_plan(
    aws: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = Simulation(load_scenario(FLOOR), str(FLOOR), aws.endpoint_url, Story(None))
    sim.setup()
    try:
        [event] = sim.alarm_events()
        reason = json.loads(event["detail"]["state"]["reasonData"])
        reason["recentDatapoints"] = [float("inf")]  # Python's json writes Infinity, and reads it back
        event["detail"]["state"]["reasonData"] = json.dumps(reason)
        [plan] = sim.triage([event])
        redelivered = sim.handlers["triage"](event, None)
    finally:
        install(None)

    assert (plan.status, plan.recent_datapoints, plan.alarm_value) == ("BLOCKED", [], None)
    assert plan.blocked_by[-1].guard == "non_finite_number"
    assert plan.blocked_by[-1].observed.startswith("alarm_value = inf, recent_datapoints[0] = inf")
    assert redelivered == {"plan_id": plan.id, "status": "BLOCKED", "duplicate": True}
    monkeypatch.setenv("MEDIC_PLANS_TABLE", sim.infra["plans"])
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", sim.infra["events"])
    assert main(["log", "list", "--state", "BLOCKED"]) == 0
    assert plan.id in capsys.readouterr().out
    assert main(["log", "verify", "--plan", plan.id]) == 0
    assert main(["log", "show", plan.id]) == 0
    assert "refused by non_finite_number" in capsys.readouterr().out


def test_an_unreadable_plan_item_is_named_by_every_log_tool_and_stops_none(
    run: tuple[Simulation, Outcome], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, outcome = run
    [plan] = outcome.plans
    poisoned = json.loads(plan.model_dump_json()) | {"recent_datapoints": [None]}  # a NaN, as it used to be stored
    sim.clients.dynamodb.update_item(
        TableName=sim.infra["plans"], Key={"plan_id": {"S": plan.id}}, UpdateExpression="SET doc = :d, #s = :s",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":d": {"S": json.dumps(poisoned)}, ":s": {"S": "APPLIED"}},
    )  # fmt: skip
    unreadable = f"UNREADABLE plan item {plan.id}: recent_datapoints.0: Input should be a valid number"

    assert main(["log", "list"]) == 0
    listed = capsys.readouterr()
    assert plan.id not in listed.out and "(no plans)" in listed.out and unreadable in listed.err
    assert main(["log", "verify"]) == 1
    assert f"{plan.id}: BROKEN: the plan item is unreadable: recent_datapoints.0" in capsys.readouterr().out
    assert main(["log", "show", plan.id]) == 0
    shown = capsys.readouterr().out
    assert f"chain {plan.id} (its plan item cannot be read)" in shown and unreadable in shown
    assert main(["log", "export", "--format", "jsonl"]) == 0
    exported = capsys.readouterr()
    assert len(exported.out.splitlines()) >= len(outcome.log) and unreadable in exported.err
    install(sim.runtime)  # the verifier's run reads the APPLIED plans: the unreadable one is passed over
    try:
        assert sim.handlers["verifier"]({"source": "aws.events"}, None) is not None
    finally:
        install(None)
