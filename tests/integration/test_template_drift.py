"""Issue 21, part 3: "the next deploy will revert this", end to end on the embedded world through the real handlers
and `medic log`. The function carries the tags CloudFormation puts on what it creates; the fix is approved, applied
and verified; the card and the log say which template property to set; `medic log show` lists the fix as waiting for
its template; then the stack is deployed again (the reservation back at 100) and the verifier tells the thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medic.runtime import install
from medic_tools.cli import main
from medic_tools.scenario import Scenario, load_scenario
from medic_tools.simulate import Outcome, Simulation, Story
from medic_tools.world.server import EmbeddedAWS

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "throttles-reserved-limit-cfn-redeploy.yaml"
SETTING = "set ResizerFunction.ReservedConcurrentExecutions to 150"


def _without_redeploy(scenario: Scenario) -> Scenario:
    assert scenario.after_fix is not None and scenario.after_fix.redeploy
    return scenario.model_copy(update={"after_fix": scenario.after_fix.model_copy(update={"redeploy": False})})


@pytest.fixture
def verified(aws: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Simulation, Outcome]]:
    """The scenario up to its verification (no deploy yet); MEDIC_* point `medic log` at its tables."""
    sim = Simulation(_without_redeploy(load_scenario(SCENARIO)), str(SCENARIO), aws.endpoint_url, Story(None))
    outcome = sim.run("approve")
    install(sim.runtime)  # run() uninstalls it: the test goes on with the same world
    monkeypatch.setenv("MEDIC_PLANS_TABLE", sim.infra["plans"])
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", sim.infra["events"])
    yield sim, outcome
    install(None)


def test_the_card_and_the_log_name_the_template_property(verified: tuple[Simulation, Outcome]) -> None:
    sim, outcome = verified
    [plan] = outcome.plans
    assert plan.status == "VERIFIED"
    [warning] = [event.data for event in outcome.log if event.kind == "template_drift_warning"]
    assert (warning["stack"], warning["logical_id"], warning["property"], warning["value"]) == (
        "media", "ResizerFunction", "ReservedConcurrentExecutions", 150,
    )  # fmt: skip
    assert warning["stack_id"].startswith("arn:aws:cloudformation:us-east-1:123456789012:stack/media/")
    card = json.dumps(sim.console.messages[plan.slack.ts]["blocks"])
    assert f"The next deploy of stack media will undo this: {SETTING} in its template." in card


def test_log_show_lists_the_fix_waiting_for_its_template_until_a_deploy_reverts_it(
    verified: tuple[Simulation, Outcome], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, outcome = verified
    [plan] = outcome.plans
    assert main(["log", "show"]) == 0
    waiting = capsys.readouterr().out
    assert "1 fix waiting for the template" in waiting and plan.id in waiting and SETTING in waiting
    assert main(["log", "show", plan.id]) == 0
    story = capsys.readouterr().out
    assert "CloudFormation: waiting for the template" in story
    assert "template    The next deploy of stack media will undo this" in story  # the record, in words

    sim.clock.advance(60)
    assert sim.handlers["verifier"]({"source": "aws.events"}, None)["outcomes"] == {plan.id: "template_held"}
    assert not [reply for reply in sim.console.replies if "A deploy of stack" in reply["text"]]

    sim.redeploy([plan])  # the stack's deploy: the reservation is the template's 100 again; the verifier runs
    assert sim.clients.lambda_.get_function_concurrency(FunctionName="resizer")["ReservedConcurrentExecutions"] == 100
    [reverted] = [e.data for e in sim.runtime.ledger.events(plan.id) if e.kind == "reverted_by_deploy"]
    assert (reverted["live"], reverted["warning"]["before"], reverted["warning"]["value"]) == (100, 100, 150)
    [reply] = [reply for reply in sim.console.replies if "A deploy of stack" in reply["text"]]
    assert reply["thread_ts"] == plan.slack.ts
    assert "A deploy of stack media put reserved_concurrency of resizer back to 100" in reply["text"]

    sim.clock.advance(60)  # said once: the next run reads nothing back
    assert sim.handlers["verifier"]({"source": "aws.events"}, None)["outcomes"] == {plan.id: "template_settled"}
    assert len([r for r in sim.console.replies if "A deploy of stack" in r["text"]]) == 1
    assert main(["log", "show"]) == 0
    assert capsys.readouterr().out.startswith("No fix is waiting for its template")
    assert main(["log", "show", plan.id]) == 0
    story = capsys.readouterr().out
    assert "CloudFormation: reverted by a deploy of its stack" in story
    assert "reverted    A deploy of stack media put reserved_concurrency of resizer back to 100" in story


def test_template_updated_takes_the_fix_off_the_list(
    verified: tuple[Simulation, Outcome], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, outcome = verified
    [plan] = outcome.plans
    assert main(["log", "template-updated", plan.id, "--by", "U0ONCALL"]) == 0
    capsys.readouterr()
    assert main(["log", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["log", "show", plan.id]) == 0
    story = capsys.readouterr().out
    assert "CloudFormation: the template holds it" in story
    assert "stack media's template holds the change now (said by U0ONCALL)" in story
    sim.redeploy([plan])  # a deploy after the template was updated would not revert; Medic reads nothing back anyway
    assert not [e for e in sim.runtime.ledger.events(plan.id) if e.kind == "reverted_by_deploy"]


def test_the_demo_scenario_ends_with_the_revert_told(aws: EmbeddedAWS) -> None:
    sim = Simulation(load_scenario(SCENARIO), str(SCENARIO), aws.endpoint_url, Story(None))
    outcome = sim.run("approve")
    assert [plan.status for plan in outcome.plans] == ["VERIFIED"]
    assert [event.kind for event in outcome.log][-1] == "reverted_by_deploy"
    assert outcome.world_after["resizer"]["reserved_concurrency"] == 100


def test_a_value_moved_elsewhere_is_not_a_revert(verified: tuple[Simulation, Outcome]) -> None:
    """Only a field back at its value before is the template's deploy; a human's other value is not Medic's to call."""
    sim, outcome = verified
    [plan] = outcome.plans
    sim.clients.lambda_.put_function_concurrency(FunctionName="resizer", ReservedConcurrentExecutions=120)
    sim.clock.advance(60)
    assert sim.handlers["verifier"]({"source": "aws.events"}, None)["outcomes"] == {plan.id: "template_held"}
    assert not [e for e in sim.runtime.ledger.events(plan.id) if e.kind == "reverted_by_deploy"]


def test_a_fix_that_cannot_be_read_back_fails_nothing(verified: tuple[Simulation, Outcome]) -> None:
    """The stack deleted the function (or the role may not read it): logged, not a revert, not a failed run."""
    sim, outcome = verified
    [plan] = outcome.plans
    sim.clients.lambda_.delete_function(FunctionName="resizer")
    sim.clock.advance(60)
    assert sim.handlers["verifier"]({"source": "aws.events"}, None)["outcomes"] == {plan.id: "template_unreadable"}
    assert not [e for e in sim.runtime.ledger.events(plan.id) if e.kind == "reverted_by_deploy"]
