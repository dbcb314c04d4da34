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

from medic.cli import main
from medic.ledger import LogEvent
from medic.scenario import load_scenario
from medic.simulate import APPROVER, Outcome, Simulation, Story
from medic.world.server import EmbeddedAWS

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
