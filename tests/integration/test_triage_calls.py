"""How many AWS calls one triage makes, per signal, counted at the embedded AWS's endpoint (as bench section 2
counts them): the scenario the benchmark measures for each signal, its alarm delivered to the real triage handler.

The log's part is pinned by name: one BatchGetItem (the plan, the target's claim, the kill switch, the breaker and
the promotions the row may hold), two PartiQL SELECTs for the safety controls (changed plans of the window; failures
since the breaker's reset), two TransactWriteItems (the plan with its first records; the card's ts with its record).
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
LOG = {"BatchGetItem": 1, "ExecuteStatement": 2, "TransactWriteItems": 2}
CARD = {"GetMetricWidgetImage": 1}  # the card's graph (the embedded AWS refuses it: one call all the same)
#: signal → (the benchmark's scenario, the reads of its facts).
FACTS = {
    "throttles": ("throttles-reserved-limit", {
        "ListAliases": 1, "GetMetricData": 1, "GetFunction": 1, "GetAccountSettings": 1,
        "ListEventSourceMappings": 1, "GetPolicy": 1}),
    "spillover": ("spillover-fixed-floor", {
        "GetMetricData": 1, "GetProvisionedConcurrencyConfig": 1, "DescribeScalableTargets": 1, "GetFunction": 1,
        "ListProvisionedConcurrencyConfigs": 1, "ListAliases": 1, "GetAccountSettings": 1}),
    "p99_latency": ("p99-cold-starts", {
        "GetProvisionedConcurrencyConfig": 1, "GetFunction": 1, "StartQuery": 3, "GetQueryResults": 3,
        "ListProvisionedConcurrencyConfigs": 1, "ListAliases": 1, "GetMetricData": 1, "ListEventSourceMappings": 1,
        "GetPolicy": 2, "GetAccountSettings": 1}),
    "db_connections": ("db-connection-blowup", {
        "GetAccountSettings": 1, "DescribeDBInstances": 1, "GetResources": 1, "DescribeDBParameters": 1,
        "GetFunction": 2, "ListEventSourceMappings": 2, "GetMetricData": 1}),
}  # fmt: skip


@pytest.mark.parametrize("signal", sorted(FACTS))
def test_one_triage_makes_these_calls_and_no_others(aws: EmbeddedAWS, signal: str) -> None:
    name, facts = FACTS[signal]
    path = SCENARIOS / f"{name}.yaml"
    simulation = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(io.StringIO()))
    try:
        simulation.setup()
        event = simulation.alarm_events()[0]  # the world raises the alarm: not triage's call
        with moto_ext.count_requests() as served:
            result = simulation.handlers["triage"](event, None)
        assert (result["signal"], result["status"]) == (signal, "PROPOSED")
        made = Counter(request.operation for request in served.requests)
        assert made == Counter({**LOG, **CARD, **facts})
        assert "Query" not in made and "GetItem" not in made
    finally:
        install(None)
