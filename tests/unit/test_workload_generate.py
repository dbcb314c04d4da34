"""The incident generator: every wall, a variant of each, a scenario `medic simulate` loads, and the truth from the
model (the wall asked for is what the truth says, the alarm fires, the fix clears it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medic_tools.scenario import load_scenario
from medic_tools.world.workload import generate
from medic_tools.world.workload.generator import VARIANTS, WALLS, truth_of

CASES = [(wall, "base") for wall in WALLS] + [
    (wall, VARIANTS[wall][1 + index % (len(VARIANTS[wall]) - 1)]) for index, wall in enumerate(WALLS)
]


@pytest.mark.parametrize(("wall", "variant"), CASES, ids=[f"{w}-{v}" for w, v in CASES])
def test_a_generated_incident_hits_its_wall_and_its_fix_clears_it(wall: str, variant: str, tmp_path: Path) -> None:
    incident = generate(wall, variant, seed=7)
    truth = incident.truth
    assert truth.diagnosis == wall and truth.before.breaching
    if wall == "dependency":
        assert truth.fix is None and truth.note
    else:
        assert truth.fix is not None and truth.fix.clears and not truth.fix.after.breaching
    scenario = load_scenario(incident.write(tmp_path / f"{wall}.yaml"))
    assert scenario.world.has_workload and scenario.alarm is not None


def test_generation_is_deterministic_and_seeds_differ() -> None:
    first, again = (
        generate("reserved_limit", "noisy_neighbour", seed=3),
        generate("reserved_limit", "noisy_neighbour", 3),
    )
    assert first.scenario == again.scenario and first.truth.as_json() == again.truth.as_json()
    assert generate("reserved_limit", "noisy_neighbour", seed=4).scenario != first.scenario
    assert truth_of(first.scenario).as_json() == first.truth.as_json()  # the document alone gives the same truth


def test_unknown_walls_and_variants_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown wall"):
        generate("slow_disks")
    with pytest.raises(ValueError, match="has no variant"):
        generate("burst_limit", "new_account")
