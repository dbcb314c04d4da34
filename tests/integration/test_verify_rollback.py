"""A rule that asks for rollback on failed verification: the change is undone (FAILED → ROLLED_BACK) and the world
is back to its before-state. The rule comes from an override layer, as a team would write it."""

from __future__ import annotations

from pathlib import Path

from medic.planning.runbook import layer, load_runbook
from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
INSUFFICIENT = ROOT / "scenarios" / "spillover-fix-insufficient.yaml"
# A team layer whose floor-too-low rule asks for a rollback when verification fails.
OVERRIDE = (Path(__file__).parent / "runbooks" / "checkout-team-rollback.yaml").read_text(encoding="utf-8")


def test_a_failed_verification_rolls_back_when_the_rule_asks(aws: EmbeddedAWS) -> None:
    runbook = layer(load_runbook(ROOT / "runbooks" / "lambda-latency.yaml"), OVERRIDE, "checkout-team.yaml")
    sim = Simulation(load_scenario(INSUFFICIENT), str(INSUFFICIENT), aws.endpoint_url, Story(None), runbook=runbook)
    try:
        outcome = sim.run("approve")
    finally:
        install(None)

    [plan] = outcome.plans
    assert (plan.rule, plan.status) == ("floor-too-low", "ROLLED_BACK")
    kinds = [event.kind for event in outcome.log]
    after_verification = kinds[kinds.index("verification_failed") + 1 :]
    assert after_verification.count("rollback") == 1 and "rollback_failed" not in after_verification
    assert outcome.world_after["checkout:live"]["provisioned_concurrency"] == 20
