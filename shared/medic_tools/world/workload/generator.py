"""Random incidents for a given wall and variant, with their ground truth (for property tests and the diagnosis
benchmark).

`generate(wall, variant, seed)` draws a scenario document (a `world` with one workload that should hit `wall`, and
the alarm an operator would have on it), models it and computes its truth. The truth always comes from the model:
the wall is only what was asked for, so a draw whose truth is another wall (or whose alarm would not fire) is drawn
again with the next sub-seed. Deterministic for (wall, variant, seed).

>>> incident = generate("reserved_limit", "base", seed=1)
>>> incident.truth.diagnosis, incident.truth.before.breaching, incident.truth.fix.clears
('reserved_limit', True, True)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from medic_tools.world.workload import scenarios
from medic_tools.world.workload.account import account_config
from medic_tools.world.workload.alarm import AlarmView
from medic_tools.world.workload.model import AccountModel
from medic_tools.world.workload.truth import GroundTruth, Incident, ground_truth

WINDOW_MIN = 20
ATTEMPTS = 12
VARIANTS: dict[str, tuple[str, ...]] = {
    wall: ("base", "json_logs", "shared_log_group", "no_resource_series", "noisy_neighbour", *extra)
    for wall, extra in {
        "account_limit": ("new_account", "unqualified"),
        "reserved_limit": ("unqualified",),
        "burst_limit": (),
        "async_burst": ("unqualified",),
        "pc_floor_too_low": (),
        "autoscaling_max_too_low": (),
        "pc_not_ready": ("pc_failed",),
        "cold_starts": ("unqualified",),
        "spillover_cold_starts": (),
        "pc_misconfigured": ("other_alias",),
        "cpu_starved": ("unqualified",),
        "memory_pressure": ("unqualified",),
        "dependency": ("unqualified",),
        "connection_blowup": ("sqs", "unqualified"),
    }.items()
}
WALLS = tuple(VARIANTS)


@dataclass(frozen=True)
class GeneratedIncident:
    wall: str
    variant: str
    seed: int
    attempt: int
    scenario: dict[str, Any]
    truth: GroundTruth

    def write(self, path: str | Path) -> Path:
        """The scenario as a YAML file `medic simulate` runs (its truth under `x-ground-truth` is not read)."""
        target = Path(path)
        target.write_text(yaml.safe_dump(self.scenario, sort_keys=False), encoding="utf-8")
        return target


class GenerationError(RuntimeError):
    """No draw of this wall and variant hit the wall (a bug in the templates, never in the truth)."""


def alarm_view(alarm: dict[str, Any]) -> AlarmView:
    return AlarmView(
        namespace=alarm["namespace"],
        metric=alarm["metric"],
        dimensions=tuple(alarm.get("dimensions", {}).items()),
        stat=alarm.get("stat", "Sum"),
        period=alarm.get("period", 60),
        threshold=alarm["threshold"],
        comparison=alarm.get("comparison", "GreaterThanThreshold"),
        evaluation_periods=alarm.get("evaluation_periods", 1),
    )


def truth_of(document: dict[str, Any]) -> GroundTruth:
    """Model a scenario document and compute its ground truth."""
    from medic_tools.scenario import WorldSpec

    world = WorldSpec.model_validate(document["world"])
    config = account_config(world)
    model = AccountModel(config)
    model.run(world.window_min * 60)
    return ground_truth(Incident(config, model.trace, alarm_view(document["alarm"]), world.window_min))


def generate(wall: str, variant: str = "base", seed: int = 0) -> GeneratedIncident:
    """A scenario that hits `wall` (see `VARIANTS` for each wall's variants), with its verified ground truth."""
    if wall not in VARIANTS:
        raise ValueError(f"unknown wall {wall!r}; walls: {', '.join(WALLS)}")
    if variant not in VARIANTS[wall]:
        raise ValueError(f"{wall} has no variant {variant!r}; variants: {', '.join(VARIANTS[wall])}")
    for attempt in range(ATTEMPTS):
        rng = random.Random(f"{wall}:{variant}:{seed}:{attempt}")  # noqa: S311 - seeded draws, not secrets
        document = scenarios.draw(wall, variant, rng, WINDOW_MIN)
        truth = truth_of(document)
        if truth.diagnosis == wall and truth.before.breaching:
            return GeneratedIncident(wall, variant, seed, attempt, document, truth)
    raise GenerationError(f"no draw of {wall}/{variant} (seed {seed}) hit the wall in {ATTEMPTS} attempts")


def generate_many(count: int, seed: int = 0) -> list[GeneratedIncident]:
    """`count` incidents cycling over every wall and its variants."""
    pairs = [(wall, variant) for wall in WALLS for variant in VARIANTS[wall]]
    return [generate(*pairs[index % len(pairs)], seed=seed + index) for index in range(count)]
