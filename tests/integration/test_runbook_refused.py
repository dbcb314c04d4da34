"""A runbook override that Medic refuses fails closed: through the real triage handler, on the embedded AWS.

A team's override restricts what Medic does (here: the payments team wants advice, never a proposal, when
checkout:live outgrows its floor). If the override has a typo, falling back to the shipped runbook would apply the
very thing the override was written to block. So a refused override with no good layered runbook to keep makes every
plan advice (notify-only), with the refusal in the card and the log, until it is fixed; a running Medic that sees a
changed override refused keeps its last good layered runbook.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from medic.clock import iso, parse_iso
from medic.plan import Plan
from medic.runtime import RUNBOOK_REFUSED, Runtime
from medic_tools.simulate import Simulation

ADVICE_ONLY = """\
runbook: payments
version: 1
extends: lambda-latency
tables:
  spillover:
    rows:
      - id: floor-too-low
        scope: {{tags: {{team: payments}}}}
        when: ["not has_autoscaling", "spillover_invocations > 0", "peak_concurrency > pc_allocated"]
        diagnosis: pc_floor_too_low
        mode: {mode}
        actions: [{{kind: advise}}]
        rationale: Payments sizes its floors by hand; page the owner.
"""


def rt(sim: Simulation) -> Runtime:
    assert sim.runtime is not None
    return sim.runtime


def write(path: Path, text: str) -> None:
    """Deploy a new version of the layer: a visibly newer mtime."""
    before = path.stat().st_mtime if path.exists() else 0.0
    path.write_text(text, encoding="utf-8")
    os.utime(path, (before + 10, before + 10))


def later(event: dict[str, Any], minutes: int) -> dict[str, Any]:
    """The alarm's next transition, `minutes` later (a new plan, not a duplicate)."""
    moved = copy.deepcopy(event)
    fired = parse_iso(event["detail"]["state"]["timestamp"].replace("+0000", "+00:00")) + timedelta(minutes=minutes)
    moved["detail"]["state"]["timestamp"] = iso(fired).replace("Z", "+0000")
    moved["id"] = f"{event['id']}-{minutes}"
    return moved


def refusals(sim: Simulation) -> list[str]:
    """The Outcome of each RunbookRefused metric the runtime emitted."""
    documents = [json.loads(line) for line in sim.metrics.getvalue().splitlines()]
    return [doc["Outcome"] for doc in documents if RUNBOOK_REFUSED in doc]


def records(sim: Simulation, plan: Plan, kind: str) -> list[dict[str, Any]]:
    return [event.data for event in rt(sim).ledger.events(plan.id) if event.kind == kind]


def card_text(sim: Simulation, plan: Plan) -> str:
    return json.dumps(sim.console.messages[plan.slack.ts]["blocks"])


def test_an_override_refused_at_a_cold_start_makes_every_plan_advice_saying_why(
    world: Callable[..., Simulation], tmp_path: Path
) -> None:
    override = tmp_path / "payments.yaml"
    write(override, ADVICE_ONLY.format(mode="notfy"))  # the typo
    sim = world(runbook_overrides=str(override))

    [event] = sim.alarm_events()
    [plan] = sim.triage([event])

    assert plan.mode == "notify" and plan.status == "NOOP", "the shipped row (approve) must not come back"
    assert plan.rule == "floor-too-low" and plan.changes, "what the shipped runbook would do, shown as advice"
    assert plan.rationale.startswith(":warning: Advice only: a runbook override was refused (")
    assert "payments.yaml:11: tables.spillover.rows.floor-too-low.mode" in plan.rationale, "file:line, row, field"
    [decision] = records(sim, plan, "decision")
    assert decision["mode"] == "notify" and "a runbook override was refused" in decision["reason"]
    assert "payments.yaml:11" in card_text(sim, plan) and '"action_id"' not in card_text(sim, plan), "no buttons"
    assert (
        sim.clients.sqs.get_queue_attributes(
            QueueUrl=sim.infra["queue"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )
    assert refusals(sim) == ["notify_only"], "refused once, counted once"

    write(override, ADVICE_ONLY.format(mode="notify"))  # fixed
    [fixed] = sim.triage([later(event, 30)])

    assert fixed.mode == "notify" and not fixed.changes, "the override as it was meant: advice, nothing to change"
    assert "Advice only" not in fixed.rationale and fixed.rationale.startswith("Payments sizes its floors")
    assert refusals(sim) == ["notify_only"]


def test_a_running_medic_keeps_its_last_good_layered_runbook_when_the_override_changes_to_a_refused_one(
    world: Callable[..., Simulation], tmp_path: Path
) -> None:
    override = tmp_path / "payments.yaml"
    write(override, ADVICE_ONLY.format(mode="notify"))
    sim = world(runbook_overrides=str(override))
    [event] = sim.alarm_events()
    [first] = sim.triage([event])
    assert first.mode == "notify" and not first.changes

    write(override, ADVICE_ONLY.format(mode="notify").replace("peak_concurrency >", "peak_concurrenc >"))
    [second] = sim.triage([later(event, 30)])

    assert second.mode == "notify" and not second.changes, "the last good layered runbook, the override included"
    assert second.rationale.startswith("Payments sizes its floors") and "Advice only" not in second.rationale
    assert rt(sim).runbook_store.notify_only is False
    assert refusals(sim) == ["kept_last_good"], "the refusal is logged and counted, once"
