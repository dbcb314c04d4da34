"""No plan stays in a transient state (issue 18, finding 6), through the real handlers on the embedded AWS: an error
botocore raises before (or instead of) the call fails the plan like any other failure; an APPLYING plan whose
executor's lease expired is re-driven through the executor queue by the verifier's schedule, a bounded number of
times, then FAILED with its applied steps rolled back. Either way the target is free again: a later alarm on it makes
its own plan instead of being absorbed by a plan that will never finish."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from floor import current, pc, rt

from medic.clock import iso, parse_iso
from medic.plan import Plan, approval_hash
from medic.usecases.verify import MAX_REDRIVES
from medic_tools.replay import Replayer, classify
from medic_tools.simulate import Simulation
from medic_tools.world import moto_ext
from support import sqs_event, sqs_record

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # set_provisioned_concurrency on checkout:live, 20 → 78
PUT_PC = "PutProvisionedConcurrencyConfig"


@pytest.fixture
def sim(world: Callable[..., Simulation]) -> Simulation:
    """The fixed-floor world with Medic installed (the integration conftest's `world`)."""
    return world()


def kinds(sim: Simulation, plan: Plan) -> list[str]:
    return [event.kind for event in rt(sim).ledger.events(plan.id)]


def queued(sim: Simulation) -> list[dict[str, Any]]:
    """The executor queue's visible messages, received as the event source mapping would hand them over."""
    messages = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [sqs_record(m) for m in messages]


def verifier(sim: Simulation) -> dict[str, Any]:
    return sim.handlers["verifier"]({"source": "aws.events"}, None)


def a_later_alarm(event: dict[str, Any], minutes: int) -> dict[str, Any]:
    """The same alarm again, as a new transition `minutes` later (a new plan id)."""
    later = copy.deepcopy(event)
    fired = parse_iso(event["detail"]["state"]["timestamp"].replace("+0000", "+00:00")) + timedelta(minutes=minutes)
    later["detail"]["state"]["timestamp"] = iso(fired).replace("Z", "+0000")
    later["id"] = f"{event['id']}-later"
    return later


def test_a_change_botocore_refuses_before_the_call_fails_the_plan_and_frees_the_target(sim: Simulation) -> None:
    """A plan asking for a provisioned concurrency of 0 (made by the triage role, or a planner's bug: the guardrails
    let a cut through) is refused by botocore's own validation before any request. The plan is FAILED (nothing was
    changed), never left APPLYING; the next alarm on checkout:live makes its own plan."""
    [event] = sim.alarm_events()
    [proposed] = sim.triage([event])
    sim.click(proposed, "reject")
    now = sim.clock.now()
    action = proposed.actions[0].model_copy(update={"after": {"provisioned_concurrency": 0}})
    made = proposed.model_copy(update={
        "id": "p-00000000000000a0", "status": "APPROVED", "mode": "auto", "actions": [action], "decided_by": ["auto"],
        "slack": proposed.slack, "expires_at": None, "created_at": iso(now), "updated_at": iso(now),
    })  # fmt: skip
    made.approval_hash = approval_hash(made)
    created = {"status": "APPROVED", "mode": "auto", "approval_hash": made.approval_hash}
    assert rt(sim).ledger.create(made, [("plan_created", created)], now, claim=(made.target, proposed.id))
    body = json.dumps({"plan_id": made.id, "approval_hash": made.approval_hash})
    sim.clients.sqs.send_message(QueueUrl=sim.infra["queue"], MessageBody=body)

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    final = current(sim, made)
    assert final.status == "FAILED", "not APPLYING forever"
    assert served.count(PUT_PC) == 0 and pc(sim) == 20
    [failed] = [e for e in rt(sim).ledger.events(made.id) if e.kind == "action_failed"]
    assert "ProvisionedConcurrentExecutions" in failed.data["error"]  # botocore's ParamValidationError, named
    assert any("Nothing was changed" in reply["text"] for reply in sim.console.replies)

    later = sim.handlers["triage"](a_later_alarm(event, 5), None)
    assert later["status"] != "SUPERSEDED" and "attached_to" not in later
    assert rt(sim).ledger.holder(made.target) == later["plan_id"]


def test_an_apply_whose_executor_keeps_dying_is_re_driven_a_bounded_number_of_times_then_failed_and_undone(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medic.actions import get_action

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("Task timed out: the executor died while waiting for READY")

    monkeypatch.setattr(get_action("set_provisioned_concurrency"), "wait", dies)
    [event] = sim.alarm_events()
    [plan] = sim.triage([event])
    sim.click(plan, "approve")
    lease = timedelta(seconds=rt(sim).settings.executor_lease_s)
    sim.handlers["executor"](sqs_event(*queued(sim)), None)
    assert current(sim, plan).status == "APPLYING" and pc(sim) == 78
    assert verifier(sim)["outcomes"] == {}, "a running lease is the executor's: the verifier leaves the plan alone"

    for attempt in range(1, MAX_REDRIVES + 1):
        sim.clock.advance((lease + timedelta(seconds=1)).total_seconds())
        assert verifier(sim)["outcomes"] == {plan.id: "redriven"}
        assert verifier(sim)["outcomes"] == {plan.id: "redrive_pending"}, "once per expired lease"
        [redriven] = queued(sim)
        assert json.loads(redriven["body"]) == {"plan_id": plan.id, "approval_hash": plan.approval_hash}
        sim.handlers["executor"](sqs_event(redriven), None)  # taken over, and the executor dies again
        assert current(sim, plan).status == "APPLYING"
        assert kinds(sim, plan).count("lease_taken_over") == attempt

    sim.clock.advance((lease + timedelta(seconds=1)).total_seconds())
    assert verifier(sim)["outcomes"] == {plan.id: "FAILED"}
    abandoned = current(sim, plan)
    assert abandoned.status == "FAILED" and abandoned.abandoned_at and abandoned.rollback_requested_at
    assert kinds(sim, plan).count("redriven") == MAX_REDRIVES and "apply_abandoned" in kinds(sim, plan)
    [rollback] = queued(sim)  # the rollback the verifier handed over; were it lost to the DLQ, replay sends it back
    assert json.loads(rollback["body"]) == {"plan_id": plan.id, "rollback": True}
    [replayable] = classify(json.loads(rollback["body"]), "queue:medic-executor-dlq#1")
    assert Replayer(rt(sim), execute=False).redrive(replayable).outcome == "would_enqueue"
    sim.handlers["executor"](sqs_event(rollback), None)

    assert current(sim, plan).status == "ROLLED_BACK" and pc(sim) == 20
    assert rt(sim).ledger.verify_chain(plan.id) is None
    later = sim.handlers["triage"](a_later_alarm(event, 90), None)
    assert "attached_to" not in later, "the target is free for the next alarm"


def test_a_redriven_apply_that_an_executor_finishes_is_applied_once(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor died once (its message then sits in the DLQ or waits out its visibility timeout): the verifier's
    re-drive finishes the plan, with one change."""
    from medic.actions import get_action

    impl = get_action("set_provisioned_concurrency")
    original, calls = impl.wait, {"n": 0}

    def dies_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TimeoutError("Task timed out: the executor died while waiting for READY")
        return original(*args, **kwargs)

    monkeypatch.setattr(impl, "wait", dies_once)
    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    with moto_ext.count_requests() as served:
        sim.handlers["executor"](sqs_event(*queued(sim)), None)
        sim.clock.advance(rt(sim).settings.executor_lease_s + 1)
        assert verifier(sim)["outcomes"] == {plan.id: "redriven"}
        sim.drain_executor()

    assert current(sim, plan).status == "APPLIED" and pc(sim) == 78
    assert served.count(PUT_PC, succeeded=True) == 1
