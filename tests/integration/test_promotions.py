"""Graduated autonomy end to end on the embedded AWS, through the real handlers (triage, interactions with signed
Slack requests, executor, verifier): N human-approved plans of one row on one target verify → a promotion card with
the evidence and a runbook override; two distinct approvers promote it → the next alarm of that row on that target is
applied without a click; a failure demotes it, logged on the promotion's chain and said in Slack.

The fixed-floor scenario's incident (PC 20 on checkout:live, row floor-too-low) comes back with `Simulation.recur`.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from medic.plan import Plan
from medic.promotions import promotion_key
from medic.runtime import Runtime
from medic_tools.simulate import ACCOUNT, APPROVER, SECOND_APPROVER, Simulation
from medic_tools.world.scenario_world import put_metric

KEY = promotion_key("floor-too-low", "checkout:live")


def rt(sim: Simulation) -> Runtime:
    assert sim.runtime is not None
    return sim.runtime


def incident(sim: Simulation, events: list[dict[str, Any]]) -> Plan:
    [plan] = sim.triage(events)
    return plan


def approved_and_verified(sim: Simulation, plan: Plan) -> Plan:
    assert (plan.status, plan.mode) == ("PROPOSED", "approve")
    sim.approve(plan)
    sim.drain_executor()
    sim.after_fix_and_verify()
    done = rt(sim).ledger.get(plan.id)
    assert done is not None and done.status == "VERIFIED", done and done.status
    return done


def chain_kinds(sim: Simulation) -> list[str]:
    return [event.kind for event in rt(sim).ledger.events(KEY)]


@pytest.fixture
def sim(world: Callable[..., Simulation]) -> Simulation:
    return world(promotion_after=2, cooldown_s=0)


def test_two_verified_approvals_propose_a_promotion_with_the_evidence_and_an_override_that_validates(
    sim: Simulation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = sim.alarm_events()
    first = approved_and_verified(sim, incident(sim, events))
    assert rt(sim).ledger.promotion_item(KEY) is None, "one verified plan is not enough evidence"

    second = approved_and_verified(sim, incident(sim, sim.recur()))

    item = rt(sim).ledger.promotion_item(KEY)
    assert item is not None and item["promotion_state"] == "PROPOSED"
    [proposed] = [event for event in rt(sim).ledger.events(KEY) if event.kind == "promotion_proposed"]
    evidence = proposed.data["evidence"]
    assert [e["plan_id"] for e in evidence] == [first.id, second.id]
    assert all(e["approved_by"] == [APPROVER] and e["outcome"] == "VERIFIED" for e in evidence)
    card = sim.console.messages[item["slack_ts"]]
    shown = json.dumps(card["blocks"])
    assert first.id in shown and second.id in shown and f"<@{APPROVER}>" in shown
    assert "medic backtest --function checkout" in shown
    [thread] = [r for r in sim.console.replies if r["thread_ts"] == item["slack_ts"]]
    assert "floor-too-low-auto-checkout-live" in thread["text"]

    [listed] = json.loads(medic(sim, monkeypatch, "promotions", "--json"))
    assert (listed["state"], listed["chain_state"]) == ("PROPOSED", "PROPOSED")
    assert listed["evidence"] == [first.id, second.id]
    assert proposed.data["override"] in medic(sim, monkeypatch, "promotions", "show", KEY)

    override = tmp_path / "promoted.yaml"
    override.write_text(proposed.data["override"], encoding="utf-8")
    assert "0 failed" in medic(sim, monkeypatch, "runbook", "check", "--override", str(override))
    from medic.config import DEFAULT_RUNBOOK
    from medic.planning.runbook import decide, load_runbook

    layered = load_runbook(DEFAULT_RUNBOOK, [override])
    facts = dict(second.facts)
    assert decide(layered, "spillover", facts, {}).mode == "auto"
    assert decide(layered, "spillover", {**facts, "qualifier": "blue"}, {}).mode == "approve", "that alias only"
    assert decide(layered, "spillover", {**facts, "function_name": "orders"}, {}).mode == "approve"


def test_promoted_by_two_approvers_the_next_alarm_is_applied_without_a_click_and_a_failure_demotes_it(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = sim.alarm_events()
    for _ in range(2):
        approved_and_verified(sim, incident(sim, events))
        events = sim.recur()
    assert rt(sim).ledger.promotion_item(KEY)["promotion_state"] == "PROPOSED"  # type: ignore[index]

    first = sim.click_promotion(KEY, user=APPROVER)
    assert first["statusCode"] == 200 and "1 of 2" in json.loads(first["body"])["text"]
    again = sim.click_promotion(KEY, user=APPROVER)
    assert again["statusCode"] == 403, "the same approver twice is not two people"
    second = sim.click_promotion(KEY, user=SECOND_APPROVER)
    assert second["statusCode"] == 200 and "PROMOTED" in json.loads(second["body"])["text"]
    assert rt(sim).ledger.promotion_item(KEY)["promotion_state"] == "ACTIVE"  # type: ignore[index]
    assert chain_kinds(sim).count("promotion_approval") == 2 and "promotion_approved" in chain_kinds(sim)
    listed = json.loads(medic(sim, monkeypatch, "promotions", "--json"))
    assert [(r["key"], r["state"], r["chain_state"], r["approvers"]) for r in listed] == [
        (KEY, "ACTIVE", "ACTIVE", [APPROVER, SECOND_APPROVER])
    ]

    auto = incident(sim, events)
    assert (auto.status, auto.mode, auto.decided_by) == ("APPROVED", "auto", ["auto"])
    assert auto.decision is not None and KEY in auto.decision.reason
    sim.drain_executor()
    applied = rt(sim).ledger.get(auto.id)
    assert applied is not None and applied.status == "APPLIED"

    still_breaching(sim)
    failed = rt(sim).ledger.get(auto.id)
    assert failed is not None and failed.status == "FAILED"
    assert rt(sim).ledger.promotion_item(KEY)["promotion_state"] == "DEMOTED"  # type: ignore[index]
    [demoted] = [event for event in rt(sim).ledger.events(KEY) if event.kind == "promotion_demoted"]
    assert demoted.data == {"plan_id": auto.id, "outcome": "FAILED", "was": "ACTIVE"}
    card_ts = rt(sim).ledger.promotion_item(KEY)["slack_ts"]  # type: ignore[index]
    assert any(r["thread_ts"] == card_ts and "back to mode approve" in r["text"] for r in sim.console.replies)

    sim.clients.cloudwatch.set_alarm_state(AlarmName="checkout-live-spillover", StateValue="OK",
                                           StateReason="a human fixed it")  # fmt: skip
    again_plan = incident(sim, sim.recur())
    assert (again_plan.status, again_plan.mode) == ("PROPOSED", "approve"), "demoted: a human approves again"


def test_an_item_edited_to_active_without_the_approvals_on_its_chain_promotes_nothing(sim: Simulation) -> None:
    events = sim.alarm_events()
    for _ in range(2):
        approved_and_verified(sim, incident(sim, events))
        events = sim.recur()
    ledger = rt(sim).ledger
    ledger.dynamodb.update_item(  # what an attacker with write access to the plans table alone can do
        TableName=ledger.plans_table, Key={"plan_id": {"S": KEY}}, UpdateExpression="SET promotion_state = :a",
        ExpressionAttributeValues={":a": {"S": "ACTIVE"}},
    )  # fmt: skip

    plan = incident(sim, events)

    assert (plan.status, plan.mode) == ("PROPOSED", "approve")


def test_one_approver_alone_promotes_nothing(sim: Simulation) -> None:
    events = sim.alarm_events()
    for _ in range(2):
        approved_and_verified(sim, incident(sim, events))
        events = sim.recur()
    sim.click_promotion(KEY, user=APPROVER)

    plan = incident(sim, events)

    assert (plan.status, plan.mode) == ("PROPOSED", "approve")
    assert rt(sim).ledger.promotion_item(KEY)["promotion_state"] == "PROPOSED"  # type: ignore[index]


def medic(sim: Simulation, monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    """`medic ARGV…` against the simulation's log; what it printed. (Not capsys: Medic's logger keeps the stderr it
    was first given, and a test's captured stream is closed after it.)"""
    from medic_tools.cli import main

    monkeypatch.setenv("MEDIC_PLANS_TABLE", sim.infra["plans"])
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", sim.infra["events"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


def still_breaching(sim: Simulation) -> None:
    """After the change the spillover goes on: the alarm stays ALARM and the verifier fails the plan."""
    from medic_tools.world import alarms

    metric = next(m for m in sim.scenario.world.metrics if m.name == "ProvisionedConcurrencySpilloverInvocations")
    begin = sim.clock.now().replace(second=0) + timedelta(minutes=1)
    put_metric(sim.clients, metric.model_copy(update={"values": [90.0, 95.0, 99.0]}), begin=begin)
    sim.clock.set(begin + timedelta(minutes=3))
    alarms.evaluate_alarms(sim.clock.now(), ACCOUNT, sim.region)
    sim.handlers["verifier"]({"source": "aws.events"}, None)


def test_a_drift_before_the_proposal_restarts_the_evidence(sim: Simulation) -> None:
    events = sim.alarm_events()
    first = approved_and_verified(sim, incident(sim, events))
    drifted = incident(sim, sim.recur())
    sim.approve(drifted)
    sim.clients.lambda_.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live",
                                                           ProvisionedConcurrentExecutions=30)  # fmt: skip
    sim.drain_executor()  # the live floor is not the plan's before: DRIFTED, and a re-proposal from it
    assert rt(sim).ledger.get(drifted.id).status == "DRIFTED"  # type: ignore[union-attr]
    assert rt(sim).ledger.promotion_item(KEY)["promotion_state"] == "RESET"  # type: ignore[index]
    assert "evidence_reset" in chain_kinds(sim)

    fresh = rt(sim).ledger.get(drifted.id + "-r1")
    assert fresh is not None
    again = approved_and_verified(sim, fresh)
    assert rt(sim).ledger.promotion_item(KEY)["promotion_state"] == "RESET", "one verified plan since the drift"
    third = approved_and_verified(sim, incident(sim, sim.recur()))

    [proposed] = [event for event in rt(sim).ledger.events(KEY) if event.kind == "promotion_proposed"]
    assert [e["plan_id"] for e in proposed.data["evidence"]] == [again.id, third.id]
    assert first.id not in json.dumps(proposed.data)
