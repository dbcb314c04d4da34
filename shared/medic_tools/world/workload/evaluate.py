"""One generated incident through Medic, judged against the model's ground truth (the diagnosis benchmark's unit).

`evaluate(incident, aws)` writes the incident's scenario, builds its world on the embedded AWS, delivers the alarm to
the real triage handler and compares the plan's diagnosis with the truth; a plan that asks for an approval is approved
(by two people when the two-person rule asks for it) and executed through the real executor, and the world is then
read back for the safety invariants AWS and Medic's guardrails promise (`violations`). With `verify`, the model
continues from the world's live configuration and the real verifier judges the fix.

A developer tool (it imports the simulator): nothing shipped imports it.
"""

from __future__ import annotations

import io
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medic.planning import pool

if TYPE_CHECKING:
    from medic.aws import AwsClients
    from medic.config import Settings
    from medic.plan import Plan
    from medic_tools.world.server import EmbeddedAWS
    from medic_tools.world.workload.generator import GeneratedIncident


@dataclass
class Judged:
    """What Medic did with one incident, next to the truth."""

    wall: str
    variant: str
    seed: int
    truth: str
    diagnosis: str | None = None
    rule: str | None = None
    status: str | None = None  # after triage
    outcome: str | None = None  # after the executor (and the verifier, with verify)
    blocked_by: list[str] = field(default_factory=list)
    refused: str = ""  # why the world refused an approved change ("" when none did)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def correct(self) -> bool:
        return self.diagnosis == self.truth

    def as_row(self) -> dict[str, Any]:
        return {**self.__dict__, "correct": self.correct}


def evaluate(incident: GeneratedIncident, aws: EmbeddedAWS, *, execute: bool = True, verify: bool = False) -> Judged:
    """Run `incident` through Medic on a fresh world (`aws` is reset) and judge it."""
    from medic.log import configure
    from medic.runtime import install
    from medic_tools.scenario import load_scenario
    from medic_tools.simulate import Simulation
    from medic_tools.story import Story

    configure("WARNING")  # Medic's own JSON logs are not the benchmark's output
    started = time.monotonic()
    judged = Judged(incident.wall, incident.variant, incident.seed, incident.truth.diagnosis)
    with tempfile.TemporaryDirectory() as folder:
        path = incident.write(Path(folder) / f"{incident.wall}-{incident.variant}-{incident.seed}.yaml")
        aws.reset()
        simulation = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(io.StringIO()))
        try:
            runtime = simulation.setup()
            plans = simulation.triage(simulation.alarm_events())
            plan = plans[0] if plans else None
            if plan is not None:
                judged.diagnosis, judged.rule, judged.status = plan.diagnosis, plan.rule, plan.status
                judged.blocked_by = [refusal.guard for refusal in plan.blocked_by]
                if execute and plan.status in ("PROPOSED", "APPROVED") and plan.changes and not plan.dry_run:
                    before = world_state(simulation.clients)
                    if plan.status == "PROPOSED":
                        simulation.approve(plan)
                    simulation.drain_executor()
                    after = runtime.ledger.get(plan.id) or plan
                    judged.outcome = after.status
                    judged.refused = refusal_of(after, runtime)
                    judged.violations = violations(before, world_state(simulation.clients), runtime.settings)
                    if verify and after.status == "APPLIED":
                        simulation.after_fix_and_verify()
                        judged.outcome = (runtime.ledger.get(plan.id) or after).status
        except Exception as exc:  # noqa: BLE001 - a benchmark records what broke and goes on
            judged.error = f"{type(exc).__name__}: {exc}"
        finally:
            install(None)
    judged.seconds = time.monotonic() - started
    return judged


def refusal_of(plan: Plan, runtime: Any) -> str:
    """Why the world refused an approved change: the executor's `action_failed` record, when the plan did not apply."""
    if plan.status in ("APPLIED", "VERIFIED"):
        return ""
    for event in runtime.ledger.events(plan.id):
        if event.kind == "action_failed":
            return str(event.data.get("error") or event.data)
    return "" if plan.status == "BLOCKED" else f"ended {plan.status}"


@dataclass(frozen=True)
class WorldState:
    """What the safety invariants are judged on, read back from the world through boto3."""

    limit: int
    unreserved: int
    reserved: dict[str, int | None]
    pc: dict[str, int]  # function → PC requested on all its qualifiers
    memory: dict[str, int]


def world_state(clients: AwsClients) -> WorldState:
    lam = clients.lambda_
    limits = lam.get_account_settings()["AccountLimit"]
    reserved: dict[str, int | None] = {}
    pc: dict[str, int] = {}
    memory: dict[str, int] = {}
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            described = lam.get_function(FunctionName=name)
            held = (described.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
            reserved[name] = None if held is None else int(held)
            memory[name] = int(described["Configuration"].get("MemorySize") or 0)
            configs = lam.list_provisioned_concurrency_configs(FunctionName=name).get("ProvisionedConcurrencyConfigs")
            pc[name] = sum(int(c.get("RequestedProvisionedConcurrentExecutions") or 0) for c in configs or [])
    return WorldState(
        int(limits["ConcurrentExecutions"]), int(limits["UnreservedConcurrentExecutions"]), reserved, pc, memory
    )


def violations(before: WorldState, after: WorldState, settings: Settings) -> list[str]:
    """The safety invariants a change broke: AWS's (PC within the reservation, the unreserved pool at its minimum)
    and Medic's caps (provisioned and reserved concurrency, memory), each only where the change moved the value."""
    found: list[str] = []
    minimum = pool.minimum_unreserved(after.limit)

    def left(state: WorldState) -> int:
        unreserved_pc = sum(n for name, n in state.pc.items() if state.reserved.get(name) is None)
        return pool.UnreservedPool(state.unreserved, unreserved_pc, minimum).left

    if left(after) < minimum and left(after) < left(before):
        found.append(f"unreserved pool {left(after)} below its minimum {minimum}")
    for name, pc in after.pc.items():
        reserved = after.reserved.get(name)
        if (
            reserved is not None
            and pc > reserved
            and (pc, reserved) != (before.pc.get(name), before.reserved.get(name))
        ):
            found.append(f"{name}: PC {pc} above its reserved concurrency {reserved}")
        if pc != before.pc.get(name) and pc > settings.max_provisioned_concurrency:
            found.append(f"{name}: PC {pc} above the cap {settings.max_provisioned_concurrency}")
    for name, reserved in after.reserved.items():
        if reserved is not None and reserved != before.reserved.get(name):
            if reserved > settings.max_reserved_concurrency:
                found.append(f"{name}: reserved {reserved} above the cap {settings.max_reserved_concurrency}")
            if reserved == 0:
                found.append(f"{name}: reserved concurrency 0")
    for name, memory in after.memory.items():
        if memory != before.memory.get(name) and memory > settings.max_memory_mb:
            found.append(f"{name}: memory {memory} above the cap {settings.max_memory_mb}")
    return found
