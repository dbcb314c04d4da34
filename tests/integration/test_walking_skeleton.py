"""The walking skeleton, end to end on the embedded AWS world (moto's server over real HTTP).

Each scenario in scenarios/ runs through the real handlers; the tests then attack the path:
duplicates, forged clicks, double clicks, redelivery, drift, a failing change, bad input.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from medic_tools.cli import expectation_problems
from medic_tools.scenario import load_scenario
from medic_tools.simulate import APPROVER, Simulation, Story, simulate
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS
from support import sqs_event, sqs_record

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"
COLD_STARTS = ROOT / "scenarios" / "p99-cold-starts.yaml"
RESERVED_LIMIT = ROOT / "scenarios" / "throttles-reserved-limit.yaml"
RECURRING = ROOT / "scenarios" / "spillover-recurring-floor.yaml"
EVENTS = ROOT / "events"


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


def test_a_recurring_incident_earns_its_row_auto_and_the_summary_says_so(aws_server: EmbeddedAWS) -> None:
    from medic_tools.cli import ScenarioRun, promotion_lines

    document = simulate(RECURRING, decide="approve", aws=aws_server).contract()
    plans = document["plans"]
    assert [(p["status"], p["mode"]) for p in plans] == [("VERIFIED", "approve")] * 2 + [("VERIFIED", "auto")] * 2
    [promotion] = document["promotions"]
    assert (promotion["state"], promotion["chain_state"]) == ("ACTIVE", "ACTIVE")
    assert promotion["evidence"] == [plans[0]["id"], plans[1]["id"]]
    assert promotion["applied_in_auto"] == [plans[2]["id"], plans[3]["id"]]
    [line] = promotion_lines([ScenarioRun(path=str(RECURRING), document=document)])
    assert line.startswith("promotion: floor-too-low on checkout:live proposed after 2 verified human approvals")
    assert "then 2 plans applied in mode auto" in line


def test_a_scope_whose_evidence_restarted_is_not_said_to_be_proposed() -> None:
    from medic_tools.cli import ScenarioRun, promotion_lines

    reset = {"row": "floor-too-low", "target": "checkout:live", "evidence": [], "state": "RESET", "approvers": [],
             "applied_in_auto": []}  # fmt: skip
    [line] = promotion_lines([ScenarioRun(path="s.yaml", document={"promotions": [reset]})])
    assert line == ("promotion: floor-too-low on checkout:live: none proposed; its evidence restarted after a plan of "
                    "it failed, rolled back or drifted (RESET)")  # fmt: skip


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
    assert response["statusCode"] == 200  # Slack would show only a warning icon for a 403: the clicker is told apart
    assert sim.runtime.ledger.get(plan.id).status == "PROPOSED"
    refused = [e for e in sim.runtime.ledger.events(plan.id) if e.kind == "approval_refused"]
    assert refused and (refused[0].data["user"], refused[0].data["status"]) == ("U0INTRUDER", 403)
    assert sim.console.whispers[-1]["user"] == "U0INTRUDER"
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
    record = sqs_record(message)
    assert sim.handlers["executor"](sqs_event(record), None) == {"batchItemFailures": []}
    assert sim.handlers["executor"](sqs_event(record), None) == {"batchItemFailures": []}
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
    assert (action.before, action.after) == ({"provisioned_concurrency": 30}, {"provisioned_concurrency": 78})
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
    from medic_tools.simulation_steps import signed_click

    return signed_click(plan, decide, sim.console, sim.runtime, APPROVER)


def test_cli_json_contract_and_invalid_input_exit_codes(tmp_path: Path) -> None:
    medic = [sys.executable, "-m", "medic_tools.cli"]
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
    medic = [sys.executable, "-m", "medic_tools.cli", "simulate", str(FLOOR), str(FLOOR), "--json", "--check"]
    run = subprocess.run(medic, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    first, second = json.loads(run.stdout)
    assert first["plans"][0]["status"] == second["plans"][0]["status"] == "VERIFIED"
    assert second["world_after"]["checkout:live"]["provisioned_concurrency"] == first["plans"][0]["actions"][0]["after"]


# -- alarms that must change nothing: a recorded NOOP with the reason, in worlds where the runbook would act --------


def _event_file(tmp_path: Path, sample: str, edit: Any) -> Path:
    """A sample event changed by `edit` (a function of the decoded event), written next to the scenario."""
    event = json.loads((EVENTS / sample).read_text())
    edit(event)
    path = tmp_path / f"edited-{sample}"
    path.write_text(json.dumps(event))
    return path


def _throttles_lower_band(event: dict[str, Any]) -> None:
    """thumbnailer's Throttles under their anomaly band (fewer throttles than expected)."""
    detail = event["detail"]
    event["resources"] = ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:thumbnailer-throttles-anomaly"]
    detail["alarmName"] = "thumbnailer-throttles-anomaly"
    query = detail["configuration"]["metrics"][0]
    query["metricStat"]["metric"]["dimensions"] = {"FunctionName": "thumbnailer"}
    detail["configuration"]["metrics"].append(
        {
            "id": "ad1",
            "expression": "ANOMALY_DETECTION_BAND(m1, 2)",
            "label": "Throttles (expected)",
            "returnData": True,
        }
    )
    detail["state"]["reason"] = (
        "Thresholds Crossed: 1 out of the last 1 datapoints [0.0 (14/05/24 10:01:00)] was less than the lower "
        "thresholds [12.5] or greater than the upper thresholds [96.0] (minimum 1 datapoint for OK -> ALARM "
        "transition)."
    )
    detail["state"]["reasonData"] = json.dumps({
        "version": "1.0", "queryDate": "2024-05-14T10:02:40.512+0000", "startDate": "2024-05-14T10:01:00.000+0000",
        "period": 60, "recentDatapoints": [0.0], "recentLowerThresholds": [12.5], "recentUpperThresholds": [96.0],
    })  # fmt: skip


def _function_arn_in(account: str) -> Any:
    def edit(event: dict[str, Any]) -> None:
        dimensions = event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
        dimensions["FunctionName"] = f"arn:aws:lambda:us-east-1:{account}:function:checkout"

    return edit


HELD_BACK = {
    # case: (the world, its function renamed to the event's, the event (or how to make it), the reason says)
    "ok-state": (FLOOR, None, "ok-state.json", "state OK: the alarm recovered; nothing to remediate"),
    "insufficient-data": (COLD_STARTS, ("checkout-api", "checkout"), "insufficient-data-state.json",
                          "state INSUFFICIENT_DATA: the alarm has no data to judge — check the metric is still"),
    "duration-lower-band": (COLD_STARTS, ("checkout-api", "checkout"), "anomaly-lower-band-alarm.json",
                            "fell below its band (datapoint 61.2 under its lower band 182.5): latency dropped; "
                            "Medic proposes no latency fix for a fall"),
    "throttles-lower-band": (RESERVED_LIMIT, None, ("throttles-alarm.json", _throttles_lower_band),
                             "throttling fell; Medic proposes no capacity fix for a fall"),
    "cross-account-metric": (FLOOR, None, "cross-account-metric-alarm.json",
                             "no actionable target: AWS/Lambda ProvisionedConcurrencySpilloverInvocations"),
    "cross-account-function-arn": (FLOOR, None, ("spillover-alarm.json", _function_arn_in("444455556666")),
                                   "is in account 444455556666 (us-east-1), not the alarm's account 123456789012"),
}  # fmt: skip


def _held_back_scenario(tmp_path: Path, case: str) -> tuple[Path, str]:
    world_of, rename, event, says = HELD_BACK[case]
    scenario = yaml.safe_load(world_of.read_text())
    world = yaml.safe_dump(scenario["world"])
    if rename:
        world = world.replace(*rename)
    path = _event_file(tmp_path, *event) if isinstance(event, tuple) else EVENTS / event
    document = {"description": f"{case}: must change nothing", "world": yaml.safe_load(world),
                "alarm_event": str(path), "expect": {"status": "NOOP", "actions": []}}  # fmt: skip
    scenario_path = tmp_path / f"{case}.yaml"
    scenario_path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return scenario_path, says


@pytest.mark.parametrize("case", sorted(HELD_BACK))
def test_an_alarm_that_must_change_nothing_is_a_recorded_noop_with_its_reason(
    case: str, aws_server: EmbeddedAWS, tmp_path: Path
) -> None:
    """Each world is one where the runbook proposes a change for a rising alarm (the scenario it comes from); the
    event is delivered through the real triage handler. Nothing is read, decided, posted or changed."""
    path, says = _held_back_scenario(tmp_path, case)

    document = simulate(path, decide="approve", aws=aws_server).contract()

    assert expectation_problems(str(path), document) == []
    [plan] = document["plans"]
    assert (plan["diagnosis"], plan["rule"], plan["blocked_by"]) == (None, None, [])
    assert [event["kind"] for event in document["log"]] == ["alarm_received", "plan_created"]  # no facts, no card
    created = document["log"][-1]["data"]
    assert created["status"] == "NOOP"
    assert says in created["reason"]


def test_a_same_named_function_in_this_account_is_left_alone_for_another_accounts_metric(
    aws_server: EmbeddedAWS, tmp_path: Path
) -> None:
    path, _ = _held_back_scenario(tmp_path, "cross-account-metric")

    document = simulate(path, decide="approve", aws=aws_server).contract()

    [plan] = document["plans"]
    assert plan["signal"] == "spillover"
    assert document["log"][0]["data"]["target"] == "(none)"
    assert document["world_after"]["checkout:live"]["provisioned_concurrency"] == 20  # the scenario's, unchanged


def _recovered(alarm_event: dict[str, Any]) -> dict[str, Any]:
    """The same alarm back to OK two minutes after it fired (the ALARM state becomes the previous one)."""
    from datetime import timedelta

    from medic.clock import iso, parse_iso

    ok = copy.deepcopy(alarm_event)
    ok["id"] = "0b9d3f53-3c86-4c5e-8f0a-0f1d8c2b7e11"
    ok["detail"]["previousState"] = copy.deepcopy(alarm_event["detail"]["state"])
    fired = parse_iso(alarm_event["detail"]["state"]["timestamp"].replace("+0000", "+00:00"))
    ok["detail"]["state"].update(value="OK", timestamp=iso(fired + timedelta(minutes=2)), reason="recovered")
    return ok


def test_a_recovery_while_a_plan_is_open_is_its_own_noop_never_attached_to_the_plan(proposed) -> None:
    sim, (plan, events) = proposed
    ok = _recovered(events[0])

    result = sim.handlers["triage"](ok, None)
    again = sim.handlers["triage"](ok, None)  # EventBridge delivers at least once

    assert result["status"] == "NOOP" and result["plan_id"] != plan.id
    assert again == {"plan_id": result["plan_id"], "status": "NOOP", "duplicate": True}
    recovery = sim.runtime.ledger.get(result["plan_id"])
    assert recovery.reason == "state OK: the alarm recovered; nothing to remediate"
    assert recovery.target == plan.target and not recovery.slack.ts
    assert "alarm_attached" not in [e.kind for e in sim.runtime.ledger.events(plan.id)]
    assert sim.runtime.ledger.get(plan.id).status == "PROPOSED"
    assert len(sim.console.messages) == 1 and not sim.console.replies  # the plan's card only, no "fired too"


def test_cli_json_shows_the_noop_plan_of_an_ok_event(tmp_path: Path) -> None:
    path, _ = _held_back_scenario(tmp_path, "ok-state")
    medic = [sys.executable, "-m", "medic_tools.cli", "simulate", str(path), "--json", "--check"]

    run = subprocess.run(medic, capture_output=True, text=True, check=False)

    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    [plan] = document["plans"]
    assert (plan["signal"], plan["status"], plan["actions"]) == ("spillover", "NOOP", [])
    assert document["log"][0]["data"]["state"] == "OK"
