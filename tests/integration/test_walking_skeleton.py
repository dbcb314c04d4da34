"""The walking skeleton, end to end on the embedded AWS world (moto's server over real HTTP).

Each scenario in scenarios/ runs through the real handlers; the tests then attack the path:
duplicates, forged clicks, double clicks, redelivery, drift, a failing change, bad input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medic.cli import expectation_problems
from medic.scenario import load_scenario
from medic.simulate import APPROVER, Simulation, Story, simulate
from medic.world import moto_ext
from medic.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_meets_its_expectations(path: Path, aws_server: EmbeddedAWS) -> None:
    outcome = simulate(path, decide="approve", aws=aws_server)
    assert expectation_problems(str(path), outcome.contract()) == []


def test_approved_floor_is_raised_and_verified(aws_server: EmbeddedAWS) -> None:
    document = simulate(FLOOR, decide="approve", aws=aws_server).contract()
    [plan] = document["plans"]
    assert plan["status"] == "VERIFIED"
    [action] = plan["actions"]
    assert action["kind"] == "set_provisioned_concurrency"
    assert action["after"] > action["before"] == 20
    assert document["world_after"]["checkout:live"]["provisioned_concurrency"] == action["after"]
    kinds = [event["kind"] for event in document["log"]]
    assert kinds[0] == "alarm_received"
    for expected in ("facts_collected", "decision", "plan_created", "slack_posted", "approval", "aws_call", "verified"):
        assert expected in kinds


def test_rejected_plan_changes_nothing(aws_server: EmbeddedAWS) -> None:
    document = simulate(FLOOR, decide="reject", aws=aws_server).contract()
    assert document["plans"][0]["status"] == "REJECTED"
    assert document["world_after"]["checkout:live"]["provisioned_concurrency"] == 20
    assert "aws_call" not in [event["kind"] for event in document["log"]]


def test_undecided_plan_stays_proposed(aws_server: EmbeddedAWS) -> None:
    document = simulate(FLOOR, decide="none", aws=aws_server).contract()
    assert document["plans"][0]["status"] == "PROPOSED"
    assert document["world_after"]["checkout:live"]["provisioned_concurrency"] == 20


def test_without_post_fix_data_the_plan_stays_applied(aws_server: EmbeddedAWS, tmp_path: Path) -> None:
    text = FLOOR.read_text().split("after_fix:")[0] + "expect: {status: APPLIED}\n"
    scenario = tmp_path / "no-after-fix.yaml"
    scenario.write_text(text)
    document = simulate(scenario, aws=aws_server).contract()
    assert document["plans"][0]["status"] == "APPLIED"


@pytest.fixture
def proposed(aws_server: EmbeddedAWS) -> tuple[Simulation, object]:
    """The fixed-floor scenario triaged to a PROPOSED plan with its card posted."""
    aws_server.reset()
    sim = Simulation(load_scenario(FLOOR), str(FLOOR), aws_server.endpoint_url, Story(None))
    sim.setup()
    events = sim.alarm_events()
    [plan] = sim.triage(events)
    assert plan.status == "PROPOSED" and plan.slack.ts
    yield sim, (plan, events)
    from medic.runtime import install

    install(None)


def _queue_depth(sim: Simulation) -> int:
    attributes = sim.clients.sqs.get_queue_attributes(
        QueueUrl=sim.infra["queue"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_the_same_alarm_transition_delivered_twice_is_one_plan(proposed) -> None:
    sim, (plan, events) = proposed
    before = len(sim.runtime.ledger.events(plan.id))
    again = sim.handlers["triage"](events[0], None)
    assert again == {"plan_id": plan.id, "status": "PROPOSED", "duplicate": True}
    assert len(sim.runtime.ledger.all_plans()) == 1
    assert len(sim.runtime.ledger.events(plan.id)) == before


def test_a_forged_click_is_refused_before_any_work(proposed) -> None:
    sim, (plan, _) = proposed
    request = _click_request(sim, plan)
    request["headers"]["x-slack-signature"] = "v0=" + "0" * 64
    response = sim.handlers["interactions"](request, None)
    assert response["statusCode"] == 401
    assert sim.runtime.ledger.get(plan.id).status == "PROPOSED"
    assert _queue_depth(sim) == 0


def test_a_click_by_someone_not_an_approver_is_refused_and_logged(proposed) -> None:
    sim, (plan, _) = proposed
    response = sim.click(plan, "approve", user="U0INTRUDER")
    assert response["statusCode"] == 403
    assert sim.runtime.ledger.get(plan.id).status == "PROPOSED"
    refused = [e for e in sim.runtime.ledger.events(plan.id) if e.kind == "approval_refused"]
    assert refused and refused[0].data["user"] == "U0INTRUDER"
    assert _queue_depth(sim) == 0


def test_a_double_click_decides_once(proposed) -> None:
    sim, (plan, _) = proposed
    approve, reject = _click_request(sim, plan, "approve"), _click_request(sim, plan, "reject")  # both from one card
    first = sim.handlers["interactions"](approve, None)
    second = sim.handlers["interactions"](reject, None)
    assert first["statusCode"] == second["statusCode"] == 200
    assert "Already APPROVED" in json.loads(second["body"])["text"]
    assert sim.runtime.ledger.get(plan.id).status == "APPROVED"
    assert _queue_depth(sim) == 1


def test_a_redelivered_executor_message_applies_once(proposed) -> None:
    sim, (plan, _) = proposed
    sim.click(plan, "approve")
    message = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"])["Messages"][0]
    record = {"messageId": message["MessageId"], "body": message["Body"]}
    assert sim.handlers["executor"]({"Records": [record]}, None) == {"batchItemFailures": []}
    assert sim.handlers["executor"]({"Records": [record]}, None) == {"batchItemFailures": []}
    calls = [e for e in sim.runtime.ledger.events(plan.id) if e.kind == "aws_call"]
    assert len(calls) == 1
    assert sim.runtime.ledger.get(plan.id).status == "APPLIED"


def test_drift_between_approval_and_apply_is_not_overwritten(proposed) -> None:
    sim, (plan, _) = proposed
    sim.click(plan, "approve")
    sim.clients.lambda_.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=30
    )
    sim.drain_executor()
    assert sim.runtime.ledger.get(plan.id).status == "DRIFTED"
    live = sim.clients.lambda_.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")
    assert live["RequestedProvisionedConcurrentExecutions"] == 30


def test_after_drift_medic_re_proposes_from_the_live_state(proposed) -> None:
    sim, (plan, _) = proposed
    sim.click(plan, "approve")
    sim.clients.lambda_.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=30
    )
    sim.drain_executor()

    fresh = sim.runtime.ledger.get(plan.id + "-r1")
    assert fresh is not None and fresh.status == "PROPOSED"  # a new decision, never the old approval
    [action] = fresh.changes
    assert (action.before, action.after) == ({"provisioned_concurrency": 30}, {"provisioned_concurrency": 66})
    assert fresh.reason.startswith(f"re-proposed from the live state after {plan.id} drifted")
    assert fresh.slack.ts and fresh.slack.ts != plan.slack.ts
    assert [e.data for e in sim.runtime.ledger.events(plan.id) if e.kind == "reproposed"] == [
        {"plan_id": fresh.id, "status": "PROPOSED"}
    ]
    assert sim.runtime.ledger.verify_chain(fresh.id) is None


def test_a_failed_pc_allocation_is_rolled_back(proposed) -> None:
    sim, (plan, _) = proposed
    sim.click(plan, "approve")
    moto_ext.inject_provisioned_concurrency_failure("checkout", "live", "FUNCTION_ERROR_INIT_FAILURE")
    sim.drain_executor()
    final = sim.runtime.ledger.get(plan.id)
    assert final.status == "ROLLED_BACK"
    kinds = [e.kind for e in sim.runtime.ledger.events(plan.id)]
    assert "action_failed" in kinds and "rollback" in kinds
    failed = next(e for e in sim.runtime.ledger.events(plan.id) if e.kind == "action_failed")
    assert "FUNCTION_ERROR_INIT_FAILURE" in failed.data["error"]
    live = sim.clients.lambda_.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")
    assert live["RequestedProvisionedConcurrentExecutions"] == 20


def test_a_malformed_event_is_logged_for_replay_not_crashed_on(proposed) -> None:
    sim, _ = proposed
    result = sim.handlers["triage"]({"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch"}, None)
    assert result["status"] == "rejected"
    [events] = [sim.runtime.ledger.events(result["plan_id"])]
    assert events[0].kind == "input_rejected"
    assert "aws.cloudwatch" in events[0].data["raw"]


def test_a_poisoned_executor_message_ends_in_the_dlq(proposed) -> None:
    sim, _ = proposed
    sqs = sim.clients.sqs
    sqs.send_message(QueueUrl=sim.infra["queue"], MessageBody="not json")
    sqs.set_queue_attributes(QueueUrl=sim.infra["queue"], Attributes={"VisibilityTimeout": "0"})
    for _ in range(4):
        sim.drain_executor()
    dlq = sqs.get_queue_url(QueueName="medic-executor-dlq")["QueueUrl"]
    moved = sqs.receive_message(QueueUrl=dlq).get("Messages", [])
    assert [m["Body"] for m in moved] == ["not json"]


def _click_request(sim: Simulation, plan, decide: str = "approve") -> dict:
    from medic.simulate import _signed_click

    return _signed_click(plan, decide, sim.console, sim.runtime, APPROVER)


def test_cli_json_contract_and_invalid_input_exit_codes(tmp_path: Path) -> None:
    medic = [sys.executable, "-m", "medic.cli"]
    run = subprocess.run([*medic, "simulate", str(FLOOR), "--json"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    assert set(document) >= {"scenario", "plans", "log"}
    plan = document["plans"][0]
    assert set(plan) >= {"id", "signal", "diagnosis", "rule", "mode", "status", "actions", "blocked_by"}
    assert set(plan["actions"][0]) >= {"kind", "target", "before", "after"}

    broken = tmp_path / "broken.yaml"
    broken.write_text("world:\n  functions:\n    - {name: checkout, memory_mb: 64}\nalarm: {name: a}\n")
    run = subprocess.run([*medic, "simulate", str(broken)], capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert "broken.yaml" in run.stderr and "world.functions.0.memory_mb" in run.stderr


def test_cli_runs_several_scenarios_each_on_a_fresh_world() -> None:
    medic = [sys.executable, "-m", "medic.cli", "simulate", str(FLOOR), str(FLOOR), "--json", "--check"]
    run = subprocess.run(medic, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    first, second = json.loads(run.stdout)
    assert first["plans"][0]["status"] == second["plans"][0]["status"] == "VERIFIED"
    assert second["world_after"]["checkout:live"]["provisioned_concurrency"] == first["plans"][0]["actions"][0]["after"]
