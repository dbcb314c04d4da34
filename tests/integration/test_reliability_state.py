"""Time and change (docs/reliability.md): clocks that disagree with the alarm's, and the runbook replaced while plans
are open. Through the real handlers, on the embedded AWS."""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from floor import current, pc, rt

from medic.clock import iso, parse_iso
from medic_tools.simulate import Simulation

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"  # peak 55 on checkout:live, a fixed floor of 20
FLOOR_ROW = """\
runbook: team-floor
version: {version}
extends: lambda-latency
tables:
  spillover:
    rows:
      - id: floor-too-low
        when: ["not has_autoscaling", "spillover_invocations > 0", "peak_concurrency > pc_allocated"]
        diagnosis: pc_floor_too_low
        mode: approve
        actions:
          - {{kind: set_provisioned_concurrency, params: {{concurrency: "ceil(peak_concurrency * {factor})"}}}}
        rationale: The floor follows the peak plus headroom.
"""


def shifted(event: dict[str, Any], by: timedelta) -> dict[str, Any]:
    """The alarm event as a source whose clock is `by` off Medic's would write it."""
    moved = copy.deepcopy(event)
    fired = parse_iso(event["detail"]["state"]["timestamp"].replace("+0000", "+00:00")) + by
    moved["detail"]["state"]["timestamp"] = iso(fired).replace("Z", "+0000")
    moved["time"] = iso(fired).replace(".000Z", "Z")
    return moved


# -- clock skew ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [timedelta(minutes=10), timedelta(hours=-2)], ids=["alarm-ahead", "alarm-behind"])
def test_clock_skew_between_the_alarm_and_medic_changes_neither_idempotency_nor_expiry(
    world: Callable[..., Simulation], skew: timedelta
) -> None:
    sim = world()
    [event] = sim.alarm_events()
    event = shifted(event, skew)  # the alarm's clock (or a late delivery, a replay from the DLQ) is off by `skew`

    [plan] = sim.triage([event])
    again = sim.handlers["triage"](event, None)

    assert plan.status == "PROPOSED" and again["plan_id"] == plan.id and again["duplicate"] is True
    assert plan.state_timestamp == iso(parse_iso(event["detail"]["state"]["timestamp"].replace("+0000", "+00:00")))
    ttl = timedelta(seconds=rt(sim).settings.approval_ttl_s)
    assert parse_iso(plan.expires_at or "") == sim.clock.now() + ttl, "expiry runs on Medic's clock only"
    emitted = [json.loads(line) for line in sim.metrics.getvalue().splitlines()]
    assert all(doc["TimeToPlan"] >= 0 for doc in emitted if "TimeToPlan" in doc), "skew never makes a negative time"
    sim.clock.advance(ttl.total_seconds() - 60)
    assert sim.click(plan, "approve")["statusCode"] == 200
    sim.drain_executor()
    assert current(sim, plan.id).status == "APPLIED" and pc(sim) == 78


def test_an_approval_after_its_expiry_on_medics_clock_is_refused_whatever_the_alarm_said(
    world: Callable[..., Simulation],
) -> None:
    sim = world()
    [event] = sim.alarm_events()
    [plan] = sim.triage([shifted(event, timedelta(hours=1))])  # the alarm claims to be from the future
    sim.clock.advance(rt(sim).settings.approval_ttl_s + 1)

    response = sim.click(plan, "approve")

    assert response["statusCode"] == 200 and "This approval expired at" in response["body"]
    assert current(sim, plan.id).status == "EXPIRED"
    sim.drain_executor()
    assert pc(sim) == 20


# -- the runbook replaced while plans are open ------------------------------------------------------------------


def replace(path: Path, text: str) -> None:
    """Write the runbook layer anew (as a deploy of the runbook layer would) with a visibly newer mtime."""
    before = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(text, encoding="utf-8")
    os.utime(path, (before + 10, before + 10))


def test_a_runbook_replaced_while_a_plan_is_open_applies_what_was_approved_and_decides_anew_after(
    world: Callable[..., Simulation], tmp_path: Path
) -> None:
    layer = tmp_path / "team-floor.yaml"
    replace(layer, FLOOR_ROW.format(version=1, factor=1.2))
    sim = world(runbook_overrides=str(layer))
    [plan] = sim.triage(sim.alarm_events())
    assert plan.changes[0].after == {"provisioned_concurrency": 66} and plan.status == "PROPOSED"

    replace(layer, FLOOR_ROW.format(version=2, factor=1.5))  # deployed while the plan waits for its approval
    assert rt(sim).runbook.version == 2
    assert sim.click(plan, "approve")["statusCode"] == 200, "the approval is bound to the plan, not to the runbook"
    # Someone moves the floor by hand before the executor runs: Medic does not fight them, it decides again.
    sim.clients.lambda_.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=30
    )
    sim.drain_executor()

    assert current(sim, plan.id).status == "DRIFTED" and pc(sim) == 30
    fresh = current(sim, plan.id + "-r1")
    assert fresh.status == "PROPOSED"
    assert fresh.changes[0].after == {"provisioned_concurrency": math.ceil(plan.facts["peak_concurrency"] * 1.5)}


def test_a_plan_approved_before_the_runbook_changed_is_applied_exactly_as_approved(
    world: Callable[..., Simulation], tmp_path: Path
) -> None:
    layer = tmp_path / "team-floor.yaml"
    replace(layer, FLOOR_ROW.format(version=1, factor=1.2))
    sim = world(runbook_overrides=str(layer))
    [plan] = sim.triage(sim.alarm_events())
    assert sim.click(plan, "approve")["statusCode"] == 200

    replace(layer, FLOOR_ROW.format(version=2, factor=1.5))  # deployed between the approval and the apply
    sim.drain_executor()

    done = current(sim, plan.id)
    assert done.status == "APPLIED" and done.changes[0].after == {"provisioned_concurrency": 66}
    assert pc(sim) == 66, "what was shown and approved, not what the new runbook would say"
    assert rt(sim).runbook.version == 2
