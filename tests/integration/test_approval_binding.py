"""An approval binds exactly what the executor does (issue 18, finding 1), through the real handlers on the embedded
AWS: an attacker who can edit an item of the plans table (or holds a role that updates plans: interactions, executor,
verifier) rewrites an approved plan; the executor recomputes the approval hash from what it reads, compares it with
the hash stored beside the plan, triage's `plan_created` record and the approver's `approval` record, and refuses
(BLOCKED, logged, the thread told) with no AWS change. Before approval, the click is refused the same way; mid-apply
and before a rollback, a rewritten plan is never acted on either."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from floor import current, pc, rt

from medic.plan import Plan, approval_hash
from medic.runtime import install
from medic_tools.scenario import Scenario, load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS
from support import sqs_event, sqs_record

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # set_provisioned_concurrency on checkout:live, 20 → 78
PUT_PC = "PutProvisionedConcurrencyConfig"


def with_a_second_function(scenario: Scenario) -> Scenario:
    """The scenario's world plus `payments`, opted in like checkout, with its own alias `live` at PC 20."""
    [checkout] = scenario.world.functions
    payments = checkout.model_copy(update={"name": "payments"})
    world = scenario.world.model_copy(update={"functions": [checkout, payments]})
    return scenario.model_copy(update={"world": world})


@pytest.fixture
def sim(aws: EmbeddedAWS) -> Iterator[Simulation]:
    simulation = Simulation(with_a_second_function(load_scenario(FLOOR)), str(FLOOR), aws.endpoint_url, Story(None))
    simulation.setup()
    yield simulation
    install(None)
    moto_ext.reset_knobs()


def kinds(sim: Simulation, plan: Plan) -> list[str]:
    return [event.kind for event in rt(sim).ledger.events(plan.id)]


def tamper(sim: Simulation, plan: Plan, edit: Callable[[dict[str, Any]], None], *, rehash: bool = False,
           attribute: bool = False) -> None:  # fmt: skip
    """Rewrite the plan's item as an attacker with UpdateItem on the plans table: its content (`edit` on the doc);
    `rehash`: its own approval_hash recomputed to match; `attribute`: the item's approval_hash attribute as well (IAM
    lets no role but triage write it; an administrator editing the item could)."""
    table, key = sim.infra["plans"], {"plan_id": {"S": plan.id}}
    item = sim.clients.dynamodb.get_item(TableName=table, Key=key)["Item"]
    doc = json.loads(item["doc"]["S"])
    edit(doc)
    if rehash:
        doc["approval_hash"] = approval_hash(Plan.model_validate(doc))
    update, values = "SET doc = :doc", {":doc": {"S": json.dumps(doc)}}
    if attribute:
        update += ", approval_hash = :hash"
        values[":hash"] = {"S": doc["approval_hash"]}
    sim.clients.dynamodb.update_item(TableName=table, Key=key, UpdateExpression=update,
                                     ExpressionAttributeValues=values)  # fmt: skip


def to_payments(doc: dict[str, Any]) -> None:
    """The change goes to another function; the target the log and the card name stays checkout:live."""
    doc["actions"][0]["function_name"] = "payments"


def test_an_approved_plan_edited_to_change_another_function_is_refused_with_nothing_changed(sim: Simulation) -> None:
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    tamper(sim, plan, to_payments)

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    final = current(sim, plan)
    assert final.status == "BLOCKED"
    assert final.blocked_by[-1].guard == "approval_binding"
    assert final.blocked_by[-1].limit == plan.approval_hash  # what was approved, vs what was read
    assert served.count(PUT_PC) == 0, "no AWS change"
    assert (pc(sim, "payments"), pc(sim, "checkout")) == (20, 20)
    assert kinds(sim, plan)[-1] == "blocked"
    assert any("differs from what was approved" in reply["text"] for reply in sim.console.replies)


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "the action's function": to_payments,
    "the action's qualifier": lambda doc: doc["actions"][0].update(qualifier="canary"),
    "the value": lambda doc: doc["actions"][0]["after"].update(provisioned_concurrency=500),
    "the plan's account": lambda doc: doc.update(account="210987654321"),
    "the plan's region": lambda doc: doc.update(region="eu-west-1"),
    "the runbook": lambda doc: doc.update(runbook_version=999),
    "the rollback rule": lambda doc: doc.update(rollback_on_failure=True),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("rehashed", ["its hash left", "its hash recomputed", "its hash and the attribute rewritten"])
def test_whatever_field_of_an_approved_plan_is_rewritten_the_executor_refuses_it(
    sim: Simulation, edit: str, rehashed: str
) -> None:
    """However consistent the rewrite makes the item (down to its approval_hash attribute), the hash of what the
    executor reads differs from the one triage logged and the approver approved: the log is not the item."""
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    tamper(sim, plan, EDITS[edit], rehash=rehashed != "its hash left", attribute=rehashed.endswith("rewritten"))

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    final = current(sim, plan)
    assert (final.status, final.blocked_by[-1].guard) == ("BLOCKED", "approval_binding")
    assert served.count(PUT_PC) == 0 and served.count("AssumeRole") == 0, "nothing is done for the plan in AWS"


def test_the_hash_the_human_approved_is_in_the_approval_record_and_bound_at_apply(sim: Simulation) -> None:
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    [approval] = [e for e in rt(sim).ledger.events(plan.id) if e.kind == "approval"]
    [created] = [e for e in rt(sim).ledger.events(plan.id) if e.kind == "plan_created"]

    assert approval.data["approval_hash"] == created.data["approval_hash"] == approval_hash(current(sim, plan))
    sim.drain_executor()
    assert current(sim, plan).status == "APPLIED" and pc(sim, "checkout") == 78


def test_a_plan_edited_before_its_approval_cannot_be_approved(sim: Simulation) -> None:
    """The card shows what triage made; a plan rewritten since (even with its own hash recomputed) is refused at the
    click, logged on the plan's chain, and stays PROPOSED."""
    [plan] = sim.triage(sim.alarm_events())
    tamper(sim, plan, to_payments, rehash=True)

    response = sim.click(plan, "approve")

    assert response["statusCode"] == 200  # the clicker is told apart; the refusal (403) is logged
    assert "no longer matches what was proposed" in response["body"]
    assert current(sim, plan).status == "PROPOSED"
    assert kinds(sim, plan)[-1] == "approval_refused"
    sim.drain_executor()
    assert pc(sim, "payments") == 20


def test_an_apply_taken_over_after_a_crash_is_refused_if_the_plan_was_rewritten_meanwhile(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch, after_visibility_timeout: Callable[[Simulation], None]
) -> None:
    """The executor died mid-apply; before the redelivery, the APPLYING plan's before-state (what a rollback would
    restore) is rewritten. The redelivery acts on nothing: FAILED, no call, the thread told to check by hand."""
    from medic.actions import get_action

    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    [message] = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"])["Messages"]
    record = sqs_record(message)
    impl = get_action("set_provisioned_concurrency")

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("Task timed out: the executor died while waiting for READY")

    monkeypatch.setattr(impl, "wait", dies)
    assert sim.handlers["executor"](sqs_event(record), None)["batchItemFailures"]
    monkeypatch.undo()
    assert current(sim, plan).status == "APPLYING" and pc(sim, "checkout") == 78
    tamper(sim, plan, lambda doc: doc["actions"][0]["before"].update(provisioned_concurrency=500), rehash=True)
    after_visibility_timeout(sim)

    with moto_ext.count_requests() as served:
        sim.handlers["executor"](sqs_event(record), None)

    final = current(sim, plan)
    assert (final.status, final.blocked_by[-1].guard) == ("FAILED", "approval_binding")
    assert served.count(PUT_PC) == 0 and served.count("DeleteProvisionedConcurrencyConfig") == 0
    assert pc(sim, "checkout") == 78
    assert "binding_refused" in kinds(sim, plan)
    assert any("A human must check" in reply["text"] for reply in sim.console.replies)


def test_a_rollback_is_refused_when_the_failed_plan_was_rewritten(aws: EmbeddedAWS) -> None:
    """The verifier hands a FAILED plan's rollback to the executor; meanwhile its before-state (what the rollback
    puts back) is rewritten to 500. The executor restores nothing from a rewritten plan: refused, logged, PC as is."""
    from medic.planning.runbook import layer, load_runbook
    from medic_tools.simulation_steps import after_fix
    from medic_tools.world import alarms

    team = Path(__file__).parent / "runbooks" / "checkout-team-rollback.yaml"
    shipped = load_runbook(ROOT / "runbooks" / "lambda-latency.yaml")
    runbook = layer(shipped, team.read_text(encoding="utf-8"), team.name)
    insufficient = ROOT / "scenarios" / "spillover-fix-insufficient.yaml"
    sim = Simulation(load_scenario(insufficient), str(insufficient), aws.endpoint_url, Story(None), runbook=runbook)
    try:
        sim.setup()
        [plan] = sim.triage(sim.alarm_events())
        sim.click(plan, "approve")
        sim.drain_executor()
        applied = pc(sim, "checkout")
        after_fix(sim.scenario, sim.clients, sim.clock, sim.region, alarms, sim.handlers["triage"], sim.story)
        sim.handlers["verifier"]({"source": "aws.events"}, None)
        assert current(sim, plan).status == "FAILED"
        tamper(sim, plan, lambda doc: doc["actions"][0]["before"].update(provisioned_concurrency=500), rehash=True)

        with moto_ext.count_requests() as served:
            sim.drain_executor()

        assert current(sim, plan).status == "FAILED"
        assert served.count(PUT_PC) == 0 and pc(sim, "checkout") == applied
        assert "rollback_refused" in kinds(sim, plan)
    finally:
        install(None)


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [("p99-cpu-starved", "set_memory"), ("throttles-async-buffer", "enable_sqs_buffer"),
     ("throttles-account-limit", "request_quota_increase")],
)  # fmt: skip
def test_what_an_action_records_while_applying_keeps_the_plan_bound_for_its_rollback(
    aws: EmbeddedAWS, scenario: str, kind: str
) -> None:
    """An action records what its rollback restores while it applies (a published version, moved targets, a quota
    request). Those keys are the only ones outside the approval (medic.plan.RECORDED_AT_APPLY); they are bound to the
    executor's `aws_call` record instead. So the applied plan still binds, and a rollback is not refused."""
    from medic.ledger.binding import apply_records_refusal, binding_refusal, recorded

    path = ROOT / "scenarios" / f"{scenario}.yaml"
    sim = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(None))
    try:
        sim.setup()
        [plan] = sim.triage(sim.alarm_events())
        assert kind in [action.kind for action in plan.changes]
        sim.approve(plan)
        sim.drain_executor()
        applied = current(sim, plan)
        events = rt(sim).ledger.events(plan.id)
    finally:
        install(None)

    assert applied.status == "APPLIED"
    [action] = [action for action in applied.changes if action.kind == kind]
    assert recorded(action), f"{kind} recorded nothing while applying"
    assert approval_hash(applied) == plan.approval_hash, "the keys it recorded are outside the approval"
    stored = rt(sim).ledger.stored_approval_hash(plan.id)
    assert binding_refusal(applied, stored=stored, expected="", events=events) is None
    assert apply_records_refusal(applied, events) is None
    moved = applied.model_copy(deep=True)
    [forged] = [a for a in moved.changes if a.kind == kind]
    forged.resource.update({key: "forged" for key in recorded(forged)})
    refusal = apply_records_refusal(moved, events)
    assert refusal is not None and "recorded while applying differs from the log" in refusal.message
