"""A database-connections plan is judged once the connections could have settled: a cap on the consumers stops new
connections at once, but the open ones close only as the idle execution environments holding them are reclaimed.
The incident comes from the workload model (connections per environment, environments kept warm while idle), so the
time they take to close follows from the model, not from the verifier."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from medic.clock import parse_iso
from medic.runtime import install
from medic.usecases.verify import CONNECTIONS_SETTLE
from medic_tools.scenario import load_scenario
from medic_tools.simulate import ACCOUNT, Simulation, Story
from medic_tools.world import alarms
from medic_tools.world.server import EmbeddedAWS
from medic_tools.world.workload.generator import generate


def _applied(aws: EmbeddedAWS, folder: Path) -> tuple[Simulation, str]:
    path = generate("connection_blowup", "base", 0).write(folder / "connection-blowup.yaml")
    sim = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(io.StringIO()))
    sim.setup()
    [plan] = sim.triage(sim.alarm_events())
    sim.approve(plan)
    sim.drain_executor()
    assert sim.runtime is not None and (sim.runtime.ledger.get(plan.id) or plan).status == "APPLIED"
    return sim, plan.id


def _kinds(sim: Simulation, pid: str) -> list[str]:
    assert sim.runtime is not None
    return [event.kind for event in sim.runtime.ledger.events(pid)]


def test_connections_held_by_idle_environments_are_waited_for_then_the_fix_is_verified(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    sim, pid = _applied(aws, tmp_path)
    try:
        sim.after_fix_and_verify()

        assert sim.runtime is not None
        assert (sim.runtime.ledger.get(pid) or None).status == "VERIFIED"  # type: ignore[union-attr]
        kinds = _kinds(sim, pid)
        assert kinds.index("settling") < kinds.index("verified") and "verification_failed" not in kinds
        assert sum("open connections close only as" in reply["text"] for reply in sim.console.replies) == 1
    finally:
        install(None)


def test_connections_that_never_settle_fail_the_plan_once_the_settle_time_has_passed(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    sim, pid = _applied(aws, tmp_path)
    try:
        assert sim.runtime is not None
        plan = sim.runtime.ledger.get(pid)
        assert plan is not None and plan.applied_at
        applied = parse_iso(plan.applied_at)
        for minutes in (10, 20, 31):  # the database keeps every connection open (a leak no cap can close)
            now = applied + timedelta(minutes=minutes)
            sim.clock.set(now)
            sim.clients.cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=[
                {"MetricName": "DatabaseConnections", "Dimensions": [{"Name": "DBInstanceIdentifier",
                                                                      "Value": "orders-db"}],
                 "Timestamp": now - timedelta(minutes=minute, seconds=30), "Value": 185.0}
                for minute in range(10)
            ])  # fmt: skip
            alarms.evaluate_alarms(now, ACCOUNT, sim.region)
            sim.handlers["verifier"]({"source": "aws.events"}, None)
            status = (sim.runtime.ledger.get(pid) or plan).status
            expected = "APPLIED" if timedelta(minutes=minutes) < CONNECTIONS_SETTLE else "FAILED"
            assert status == expected, f"{minutes} min after the change"
        assert _kinds(sim, pid).count("settling") == 1
    finally:
        install(None)
