"""Incidents generated from the workload model (docs/WORKLOAD.md), whatever the wall, the variant and the seed:
Medic's diagnosis is the model's ground truth, and an approved plan applies without breaking a safety invariant or
being refused by the world.

The model's physics decides the truth (never Medic's runbook), so a draw the runbook was not tuned on is a real test;
each example builds a world over HTTP and runs the real handlers (a few seconds): a small share of the profile's
examples in `make test`, many more under `MEDIC_FUZZ=long`. The diagnosis benchmark (`make bench`, section 9) runs
thousands.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fuzzing import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medic_tools.world.server import EmbeddedAWS
from medic_tools.world.workload.evaluate import evaluate
from medic_tools.world.workload.generator import VARIANTS, generate

PAIRS = [(wall, variant) for wall, variants in VARIANTS.items() for variant in variants]


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAWS]:
    with EmbeddedAWS() as server:
        yield server


@settings(max_examples=examples(0.08), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pair=st.sampled_from(PAIRS), seed=st.integers(min_value=0, max_value=100_000))
def test_the_diagnosis_is_the_models_truth_and_the_plan_is_safe(
    aws: EmbeddedAWS, pair: tuple[str, str], seed: int
) -> None:
    wall, variant = pair
    judged = evaluate(generate(wall, variant, seed), aws)

    assert not judged.error, judged.error
    assert judged.diagnosis == judged.truth, f"{wall}/{variant}/{seed}: {judged.diagnosis} by row {judged.rule}"
    assert judged.violations == [], judged.violations
    assert not judged.refused, judged.refused
