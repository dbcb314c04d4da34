"""`medic explain` on every scenario: the matched row with ✔, and for each row above it the condition that failed
with the fact values that made it fail. And on an event with given facts, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medic.cli import main
from medic.explain import explain_plan
from medic.runbook import load_runbook
from medic.scenario import load_scenario
from medic.simulate import triage_only
from medic.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
RUNBOOK = load_runbook(ROOT / "runbooks" / "lambda-latency.yaml")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_explain_shows_the_matched_row_and_why_each_earlier_row_failed(path: Path, aws: EmbeddedAWS) -> None:
    expect = load_scenario(path).expect
    [plan] = triage_only(path, RUNBOOK, aws=aws)
    assert plan.decision is not None
    text = explain_plan(plan)

    table = RUNBOOK.tables[plan.signal]
    matched = [row.row for row in plan.decision.trace if row.matched]
    assert matched, text
    assert expect is None or expect.diagnosis is None or plan.diagnosis == expect.diagnosis
    first = matched[0]
    for row in table.rows:
        if row.id == first:
            break
        trace = next(t for t in plan.decision.trace if t.row == row.id)
        assert not trace.matched
        failed = [c for c in trace.conditions if c.result != "true"]
        assert failed or trace.note, f"row {row.id} failed without a reason"
        assert f"  ✘ {row.id}  [" in text
        if failed:
            assert f"{failed[-1].result:<7} {failed[-1].expression}" in text
    assert f"  ✔ {first}  [" in text
    assert f"verdict: {plan.diagnosis} by row {plan.rule}" in text


def test_explain_an_event_offline_with_given_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({
        "throttles": 75, "account_utilization": 0.4, "invocation_type": "sync", "has_reserved_concurrency": True,
        "reserved_concurrency": 100, "function_peak_concurrency": 100, "reserved_utilization": 1.0,
        "is_db_consumer": False, "function_name": "orders-worker",
    }))  # fmt: skip

    status = main(["explain", str(ROOT / "events" / "throttles-alarm.json"), "--facts", str(facts)])

    out = capsys.readouterr().out
    assert status == 0
    assert "signal throttles → table throttles (hit policy first)" in out
    assert "verdict: reserved_limit by row reserved-limit, mode approve" in out
    assert "  ✘ account-limit  [" in out and "false   account_utilization >= 0.9   (account_utilization=0.4)" in out
    assert "actions: set_reserved_concurrency(concurrency=150)" in out


def test_explain_refuses_an_unknown_fact_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"throttle": 3}))

    status = main(["explain", str(ROOT / "events" / "throttles-alarm.json"), "--facts", str(facts)])

    assert status == 2
    assert capsys.readouterr().err.startswith(f"medic: {facts}: throttle: unknown fact; known: ")
