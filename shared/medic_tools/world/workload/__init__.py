"""The embedded world's workload model: incidents generated from first principles (docs/WORKLOAD.md).

`spec` (the scenario's `workload` models), `arrivals`, `physics`, `pools`, `queues`, `runtime` and `model` (the
per-second simulation of the account), `trace` (what it records), `emit` and `reports` (CloudWatch series and REPORT
lines), `truth`, `fixes` and `remedies` (the ground truth and the what-if replays), `live` (the configuration read
back from the world), `build`/`publish` (writing it into the world) and `generator`/`scenarios` (random incidents
for a wall). Nothing here imports moto: the model is pure Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medic_tools.world.workload.generator import GeneratedIncident


def generate(wall: str, variant: str = "base", seed: int = 0) -> GeneratedIncident:
    """A random scenario that hits `wall` (a diagnosis of docs/WORKLOAD.md's table), with its verified ground truth.

    >>> incident = generate("cpu_starved", seed=3)  # doctest: +SKIP
    >>> incident.truth.diagnosis, incident.truth.fix.describe()  # doctest: +SKIP
    ('cpu_starved', 'memory of orders-api ≥ 1024 MB')
    """
    from medic_tools.world.workload.generator import generate as draw

    return draw(wall, variant, seed)
