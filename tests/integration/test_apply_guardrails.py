"""Every guardrail is checked again at apply, against the live state (issue 18, finding 4), through the real handlers on
the embedded AWS: what changed between the approval and the apply (the opt-in tag removed, a reservation lowered under
the approved PC, the account's pool shrunk, a cap or the budget lowered) refuses the plan before anything is changed:
BLOCKED with the guard, its limit and what was observed, logged, the Slack thread told. Medic applies what was
approved or nothing, never a silently clamped value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from floor import current, pc, rt

from medic_tools.simulate import ACCOUNT, Simulation
from medic_tools.world import moto_ext
from support import sqs_event, sqs_record

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # set_provisioned_concurrency on checkout:live, 20 → 78
PUT_PC = "PutProvisionedConcurrencyConfig"


@pytest.fixture
def sim(world: Callable[..., Simulation]) -> Simulation:
    """The fixed-floor world with Medic installed (the integration conftest's `world`)."""
    return world()


def checkout_arn(sim: Simulation) -> str:
    return str(sim.clients.lambda_.get_function(FunctionName="checkout")["Configuration"]["FunctionArn"])


def untag(sim: Simulation) -> None:
    sim.clients.lambda_.untag_resource(Resource=checkout_arn(sim), TagKeys=["medic:managed"])


def reserve_below_the_approved_pc(sim: Simulation) -> None:
    sim.clients.lambda_.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=40)


def shrink_the_account(sim: Simulation) -> None:
    moto_ext.set_account_concurrency_limit(100, ACCOUNT, sim.region)  # all of it the unreserved minimum


def lower_the_pc_cap(sim: Simulation) -> None:
    rt(sim).settings = rt(sim).settings.model_copy(update={"max_provisioned_concurrency": 50})


def set_a_cost_budget(sim: Simulation) -> None:
    rt(sim).settings = rt(sim).settings.model_copy(update={"monthly_cost_budget_usd": 1.0})


CHANGES: dict[str, tuple[Callable[[Simulation], None], str]] = {
    "the opt-in tag removed": (untag, "opt_in_tag"),
    "a reservation set below the approved PC": (reserve_below_the_approved_pc, "clamped_at_apply"),
    "the account's limit down to the unreserved minimum": (shrink_the_account, "unreserved_floor"),
    "the PC cap lowered (a redeploy)": (lower_the_pc_cap, "clamped_at_apply"),
    "a monthly cost budget the change exceeds (a redeploy)": (set_a_cost_budget, "cost_budget"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_what_changed_since_the_approval_refuses_the_plan_at_apply_with_nothing_changed(
    sim: Simulation, change: str
) -> None:
    make, guard = CHANGES[change]
    [plan] = sim.triage(sim.alarm_events())
    assert plan.status == "PROPOSED" and not plan.blocked_by
    sim.click(plan, "approve")
    make(sim)

    with moto_ext.count_requests() as served:
        sim.drain_executor()

    final = current(sim, plan)
    assert final.status == "BLOCKED"
    assert guard in [refusal.guard for refusal in final.blocked_by]
    assert served.count(PUT_PC) == 0 and pc(sim) == 20, "nothing changed"
    [blocked] = [e for e in rt(sim).ledger.events(plan.id) if e.kind == "blocked"]
    assert guard in [blocked.data["guard"], *(other["guard"] for other in blocked.data.get("others", []))]
    told = [reply["text"] for reply in sim.console.replies if reply["thread_ts"] == final.slack.ts]
    assert any(text.startswith(":octagonal_sign: Not applied: at apply, on the live state") for text in told)


def test_the_opt_in_tag_removed_while_an_apply_is_redelivered_stops_it_and_undoes_what_was_applied(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch, after_visibility_timeout: Callable[[Simulation], None]
) -> None:
    """The executor died after the change (the plan APPLYING, its step recorded); the tag is removed before the
    redelivery takes the plan over: the guardrails are read again there too, and what was applied is undone."""
    from medic.actions import get_action

    [plan] = sim.triage(sim.alarm_events())
    sim.click(plan, "approve")
    [message] = sim.clients.sqs.receive_message(QueueUrl=sim.infra["queue"])["Messages"]
    record = sqs_record(message)
    impl = get_action("set_provisioned_concurrency")
    state: dict[str, Any] = {"calls": 0}
    original = impl.wait

    def dies_once(*args: Any, **kwargs: Any) -> Any:
        state["calls"] += 1
        if state["calls"] == 1:
            raise TimeoutError("Task timed out: the executor died while waiting for READY")
        return original(*args, **kwargs)

    monkeypatch.setattr(impl, "wait", dies_once)
    sim.handlers["executor"](sqs_event(record), None)
    assert current(sim, plan).status == "APPLYING" and pc(sim) == 78
    untag(sim)
    after_visibility_timeout(sim)

    sim.handlers["executor"](sqs_event(record), None)

    final = current(sim, plan)
    assert final.status == "ROLLED_BACK" and pc(sim) == 20
    [stopped] = [e for e in rt(sim).ledger.events(plan.id) if e.kind == "stopped"]
    assert stopped.data["guard"] == "opt_in_tag"
