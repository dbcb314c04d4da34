"""The stateful controls in the running pipeline: the kill switch flipped between approval and apply stops the
change at the executor; a freeze window blocks at triage; the CLI flips the switch and the breaker."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from medic.runtime import install
from medic.safety import KILL_SWITCH_KEY
from medic_tools.cli import main
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world.server import EmbeddedAWS
from support import sqs_event, sqs_record

FLOOR = Path(__file__).resolve().parents[2] / "scenarios" / "spillover-fixed-floor.yaml"


@pytest.fixture
def simulation(aws: EmbeddedAWS) -> Iterator[Simulation]:
    sim = Simulation(load_scenario(FLOOR), str(FLOOR), aws.endpoint_url, Story(None))
    sim.setup()
    yield sim
    install(None)


def _pc(sim: Simulation) -> int:
    config = sim.clients.lambda_.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")
    return int(config["RequestedProvisionedConcurrentExecutions"])


def test_the_kill_switch_flipped_after_approval_stops_the_apply(simulation: Simulation) -> None:
    sim = simulation
    assert sim.runtime is not None
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    sim.runtime.safety.set_control(KILL_SWITCH_KEY, True, "U0ONCALL", "stop everything", sim.clock.now())

    sim.drain_executor()

    final = sim.runtime.ledger.get(plan.id)
    assert final is not None and final.status == "BLOCKED"
    assert final.blocked_by[-1].guard == "kill_switch"
    assert _pc(sim) == 20  # nothing changed
    assert [e.kind for e in sim.runtime.ledger.events(plan.id)][-1] == "blocked"


def test_a_freeze_window_blocks_at_triage(aws: EmbeddedAWS) -> None:
    always = {"freeze_windows": "2000-01-01T00:00Z/2100-01-01T00:00Z"}
    scenario = load_scenario(FLOOR).model_copy(update={"settings": always})
    sim = Simulation(scenario, str(FLOOR), aws.endpoint_url, Story(None))
    try:
        sim.setup()
        [plan] = sim.triage(sim.alarm_events())
    finally:
        install(None)

    assert plan.status == "BLOCKED"
    assert [r.guard for r in plan.blocked_by] == ["freeze_window"]
    assert plan.slack.ts  # the card says why; it has no buttons


def test_the_cli_flips_the_kill_switch_and_resets_the_breaker(
    simulation: Simulation, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDIC_PLANS_TABLE", simulation.infra["plans"])
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", simulation.infra["events"])

    assert main(["control", "kill-switch", "on", "--by", "U0ONCALL", "--reason", "incident 42"]) == 0
    state: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert state["kill_switch"] == {"on": True, "by": "U0ONCALL", "at": state["kill_switch"]["at"],
                                    "reason": "incident 42"}  # fmt: skip

    assert main(["control", "kill-switch", "off", "--by", "U0ONCALL"]) == 0
    assert json.loads(capsys.readouterr().out)["kill_switch"]["on"] is False
    assert main(["control", "breaker-reset", "--by", "U0ONCALL", "--reason", "fixed"]) == 0
    assert json.loads(capsys.readouterr().out)["circuit_breaker"]["reset_at"]
    assert main(["control", "status"]) == 0
    assert json.loads(capsys.readouterr().out)["circuit_breaker"]["open"] is False


def test_changes_are_made_in_a_session_named_after_the_plan_with_the_approver(simulation: Simulation) -> None:
    sim = simulation
    assert sim.runtime is not None
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    sim.drain_executor()

    events = sim.runtime.ledger.events(plan.id)
    [session] = [e.data for e in events if e.kind == "session"]
    assert session["session_name"] == plan.id
    assert session["source_identity"] == "U0ONCALL"
    assert session["assumed_role_arn"] == f"arn:aws:sts::123456789012:assumed-role/medic-actions/{plan.id}"
    assert "secret" not in json.dumps(session).lower()
    call = next(e for e in events if e.kind == "aws_call")
    assert events.index(call) > events.index(next(e for e in events if e.kind == "session"))
    assert call.data["request_id"]
    assert call.context["slack_ts"] == plan.slack.ts  # every event ties back to the card and the alarm
    assert call.context["alarm_arn"] == plan.alarm_arn


def test_the_kill_switch_is_read_again_when_a_crashed_apply_is_redelivered(
    simulation: Simulation, monkeypatch: pytest.MonkeyPatch, after_visibility_timeout: Callable[[Simulation], None]
) -> None:
    from medic.actions import get_action
    from medic.usecases.execute import execute_batch

    sim = simulation
    assert sim.runtime is not None
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    [message] = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"])["Messages"]
    record = sqs_record(message)
    impl = get_action("set_provisioned_concurrency")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the executor died while waiting")

    monkeypatch.setattr(type(impl), "wait", crash)
    assert execute_batch(sqs_event(record), sim.runtime)["batchItemFailures"]  # left for redelivery
    monkeypatch.undo()
    assert _pc(sim) == 78 and sim.runtime.ledger.get(plan.id).status == "APPLYING"  # type: ignore[union-attr]
    sim.runtime.safety.set_control(KILL_SWITCH_KEY, True, "U0ONCALL", "stop", sim.clock.now())
    after_visibility_timeout(sim)

    assert execute_batch(sqs_event(record), sim.runtime) == {"batchItemFailures": []}

    final = sim.runtime.ledger.get(plan.id)
    assert final is not None and final.status == "ROLLED_BACK"
    assert _pc(sim) == 20
    kinds = [e.kind for e in sim.runtime.ledger.events(plan.id)]
    assert kinds.index("stopped") < kinds.index("rollback")


def test_a_plan_above_the_monthly_cost_budget_is_blocked(aws: EmbeddedAWS) -> None:
    scenario = load_scenario(FLOOR).model_copy(update={"settings": {"monthly_cost_budget_usd": 100.0}})
    sim = Simulation(scenario, str(FLOOR), aws.endpoint_url, Story(None))
    try:
        sim.setup()
        [plan] = sim.triage(sim.alarm_events())
    finally:
        install(None)

    assert plan.status == "BLOCKED"
    [refusal] = plan.blocked_by
    assert (refusal.guard, refusal.limit) == ("cost_budget", 100.0)
    assert refusal.observed == pytest.approx(plan.actions[0].cost_monthly_usd, abs=0.01)  # shown in cents
    assert refusal.observed > 100


def test_medic_counts_its_plans_and_times_each_stage_in_emf(aws: EmbeddedAWS) -> None:
    sim = Simulation(load_scenario(FLOOR), str(FLOOR), aws.endpoint_url, Story(None))
    try:
        sim.run("approve")
    finally:
        install(None)

    lines = [json.loads(line) for line in sim.metrics.getvalue().splitlines()]
    # The alarm's recovery to OK, when the world delivers it to triage, is counted as a NOOP plan of its own.
    outcomes = [(d["Signal"], d["Outcome"]) for d in lines if "Plans" in d and d["Outcome"] != "NOOP"]
    assert outcomes == [("spillover", "PROPOSED"), ("spillover", "APPLIED"), ("spillover", "VERIFIED")]
    stages = [name for d in lines for name in ("TimeToPlan", "TimeToApply", "TimeToVerify") if name in d]
    assert stages == ["TimeToPlan", "TimeToApply", "TimeToVerify"]
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Medic" for d in lines)
