"""Triage reads facts on demand (`FactCollector.on_demand`), on the scenarios' worlds: every fact, read, is what
`collect` reads up front (value, source, reason when unknown), and the calls a decision did not need are not made."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medic.alarms.events import parse_alarm_event
from medic.alarms.signals import classify
from medic.facts import FACT_TYPES, Facts
from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world.server import EmbeddedAWS

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture
def scenario(aws: EmbeddedAWS) -> Iterator[Any]:
    """A scenario's world: (simulation, its alarm event, the AWS operations called since, in order)."""

    def build(name: str) -> tuple[Simulation, Any, list[str]]:
        path = SCENARIOS / name
        simulation = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(io.StringIO()))
        calls: list[str] = []
        simulation.setup()
        event = simulation.alarm_events()[0]
        for service in ("lambda", "logs", "cloudwatch", "application-autoscaling"):
            simulation.clients.client(service).meta.events.register(
                "before-call", lambda model, calls=calls, **_: calls.append(model.name)
            )
        return simulation, event, calls

    yield build
    install(None)


def _all_read(facts: Facts) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    values = {name: getattr(facts, name) for name in (*FACT_TYPES, "tags", "event_sources", "consumers")}
    return values, dict(facts.sources), dict(facts.missing)


@pytest.mark.parametrize(
    "name",
    ["p99-cold-starts.yaml", "throttles-burst-ramp.yaml", "spillover-autoscaling-max.yaml",
     "throttles-reserved-protects-db.yaml", "real-unqualified-cpu-starved.yaml", "p99-pc-on-latest.yaml"],
)  # fmt: skip
def test_every_fact_read_on_demand_is_the_fact_collected_up_front(scenario: Any, name: str) -> None:
    simulation, raw, calls = scenario(name)
    event = parse_alarm_event(raw)
    collector, now = simulation.runtime.collector, simulation.clock.now()
    collected = _all_read(collector.collect(classify(event), event, now))
    up_front = len(calls)
    read = collector.on_demand(classify(event), event, now)
    assert read.pending  # nothing read yet but the traffic's qualifier
    assert _all_read(read) == collected
    assert not read.pending
    assert len(calls) - up_front == up_front  # read in full, the same calls


def test_a_decision_on_the_first_row_reads_no_report_lines(scenario: Any) -> None:
    simulation, event, calls = scenario("p99-pc-failed.yaml")
    [plan] = simulation.triage([event])
    assert (plan.rule, plan.status) == ("pc-failed", "NOOP")
    assert "StartQuery" not in calls and "GetMetricData" not in calls
    assert "cold_start_ratio" not in plan.facts and "cold_start_ratio" not in plan.missing_facts
    assert plan.facts["pc_status"] == "FAILED"


def test_an_unqualified_alarm_lists_the_functions_aliases_once(scenario: Any) -> None:
    """The traffic's qualifier lists the aliases; whether another alias of the same version holds PC reuses that
    listing (it was whole) instead of listing them again."""
    simulation, raw, calls = scenario("throttles-burst-ramp.yaml")
    event = parse_alarm_event(raw)
    assert not classify(event).target.qualifier
    facts = simulation.runtime.collector.on_demand(classify(event), event, simulation.clock.now())
    assert facts.pc_version_taken is False and "lambda:ListAliases" in facts.sources["pc_version_taken"]
    assert calls.count("ListAliases") == 1 and "ListProvisionedConcurrencyConfigs" in calls
