"""Helpers for the tests that drive the fixed-floor world (`scenarios/spillover-fixed-floor.yaml`: PC on
checkout:live, 20 → 78 once approved) through the real handlers: the runtime, a plan read back, the PC in force."""

from __future__ import annotations

from medic.plan import Plan
from medic.runtime import Runtime
from medic_tools.simulate import Simulation


def rt(sim: Simulation) -> Runtime:
    """The simulation's installed runtime (its ledger, settings, clients)."""
    assert sim.runtime is not None
    return sim.runtime


def current(sim: Simulation, plan: Plan | str) -> Plan:
    """The plan as the log holds it now."""
    found = rt(sim).ledger.get(plan if isinstance(plan, str) else plan.id)
    assert found is not None
    return found


def pc(sim: Simulation, function: str = "checkout") -> int:
    """The provisioned concurrency requested on `function:live` in the world."""
    config = sim.clients.lambda_.get_provisioned_concurrency_config(FunctionName=function, Qualifier="live")
    return int(config["RequestedProvisionedConcurrentExecutions"])
