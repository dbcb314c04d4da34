"""`medic simulate` as an operator runs it: a scenario's `settings:` (as docs/ARCHITECTURE.md §6 shows them)."""

from __future__ import annotations

from pathlib import Path

from medic.runtime import install
from medic.scenario import load_scenario
from medic.simulate import Simulation, Story
from medic.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"


def test_a_scenario_in_dry_run_proposes_and_changes_nothing(aws: EmbeddedAWS, tmp_path: Path) -> None:
    path = tmp_path / "floor-dry-run.yaml"
    path.write_text(FLOOR.read_text() + "settings: {dry_run: true}\n")
    sim = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(None))
    try:
        outcome = sim.run("approve")
    finally:
        install(None)

    [plan] = outcome.plans
    assert plan.dry_run is True and plan.status == "PROPOSED"
    assert [action.kind for action in plan.actions] == ["set_provisioned_concurrency"]
    assert outcome.world_after["checkout:live"]["provisioned_concurrency"] == 20  # the floor the scenario set
    assert "approval" not in [event.kind for event in outcome.log]
