"""A plan that asked AWS for a higher concurrency quota is judged once AWS has decided: while the request is open
the alarm still fires (nothing else changed), and that is not a failed fix."""

from __future__ import annotations

import io
from pathlib import Path

from medic.runtime import install
from medic.usecases.verify import QUOTA_DECISION_WAIT
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world import moto_quotas
from medic_tools.world.server import EmbeddedAWS

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "throttles-account-limit.yaml"


def _applied(aws: EmbeddedAWS) -> tuple[Simulation, str]:
    sim = Simulation(load_scenario(SCENARIO), str(SCENARIO), aws.endpoint_url, Story(io.StringIO()))
    sim.setup()
    [plan] = sim.triage(sim.alarm_events())
    sim.approve(plan)
    sim.drain_executor()
    assert sim.runtime is not None
    applied = sim.runtime.ledger.get(plan.id)
    assert applied is not None and applied.status == "APPLIED"
    return sim, plan.id


def _verify(sim: Simulation, *, advance_s: int) -> str:
    """`advance_s` later, with checkout still throttled every minute since (the alarm keeps firing), run the
    verifier."""
    from datetime import timedelta

    from medic_tools.simulate import ACCOUNT
    from medic_tools.world import alarms

    assert sim.runtime is not None
    minutes = min(advance_s // 60, 30)
    sim.clock.advance(advance_s)
    now = sim.clock.now()
    sim.clients.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Throttles", "Dimensions": [{"Name": "FunctionName", "Value": "checkout"}],
         "Timestamp": now - timedelta(minutes=minute, seconds=30), "Value": 150.0}
        for minute in range(minutes)
    ])  # fmt: skip
    alarms.evaluate_alarms(now, ACCOUNT, sim.region)
    sim.handlers["verifier"]({"source": "aws.events"}, None)
    plan = sim.runtime.ledger.all_plans()[0]
    return plan.status


def test_an_open_quota_request_keeps_the_plan_applied_and_says_so_once(aws: EmbeddedAWS) -> None:
    sim, pid = _applied(aws)
    try:
        assert _verify(sim, advance_s=3600) == "APPLIED"  # the alarm still fires: AWS has not decided
        assert _verify(sim, advance_s=3600) == "APPLIED"
        assert sim.runtime is not None
        kinds = [event.kind for event in sim.runtime.ledger.events(pid)]
        assert kinds.count("awaiting_quota") == 1 and "verification_failed" not in kinds
        assert sum("AWS has not granted" in reply["text"] for reply in sim.console.replies) == 1
    finally:
        install(None)


def test_a_granted_quota_is_judged_on_the_alarm(aws: EmbeddedAWS) -> None:
    sim, pid = _applied(aws)
    try:
        assert sim.runtime is not None
        plan = sim.runtime.ledger.get(pid)
        assert plan is not None
        [action] = [a for a in plan.changes if a.kind == "request_quota_increase"]
        moto_quotas.resolve_quota_request(str(action.resource["request_id"]))
        assert _verify(sim, advance_s=3600) == "FAILED"  # granted, and the alarm still fires: now it is judged
    finally:
        install(None)


def test_an_undecided_quota_request_is_judged_after_a_week(aws: EmbeddedAWS) -> None:
    sim, _ = _applied(aws)
    try:
        week = int(QUOTA_DECISION_WAIT.total_seconds()) + 3600
        assert _verify(sim, advance_s=week) == "FAILED"  # a week without AWS's decision: a human takes it from here
    finally:
        install(None)
