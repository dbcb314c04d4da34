"""`medic explain` on every scenario: the matched row with ✔, and for each row above it the condition that failed
with the fact values that made it fail. And on an event with given facts, offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medic.planning.explain import explain_all, explain_plan
from medic.planning.runbook import load_runbook
from medic_tools.cli import main
from medic_tools.scenario import load_scenario
from medic_tools.simulate import triage_only
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
RUNBOOK = load_runbook(ROOT / "runbooks" / "lambda-latency.yaml")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_explain_shows_the_matched_row_and_why_each_earlier_row_failed(path: Path, aws: EmbeddedAWS) -> None:
    expect = load_scenario(path).expect
    [plan] = triage_only(path, RUNBOOK, aws=aws)
    text = explain_plan(plan)
    if plan.decision is None:  # an alarm held back before any decision (OK, a lower band, another account…)
        assert plan.status == "NOOP" and plan.reason and plan.reason in text, text
        assert expect is None or expect.diagnosis is None
        return

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
    assert "  ✘ account-limit  [" in out
    assert (  # three-valued: unknown, since the request rate that could still make it true is not given
        "unknown account_utilization >= 0.97 or claimed_utilization >= 0.97 or (not has_reserved_concurrency and"
        " unreserved_pool_utilization >= 0.97) or account_request_rate_peak >= account_limit * 9   (account_limit="
        "unknown, account_request_rate_peak=unknown, account_utilization=0.4, claimed_utilization=unknown,"
        " has_reserved_concurrency=True, unreserved_pool_utilization=unknown)"
    ) in out
    assert "actions: set_reserved_concurrency(concurrency=150)" in out


def test_explain_refuses_an_unknown_fact_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"throttle": 3}))

    status = main(["explain", str(ROOT / "events" / "throttles-alarm.json"), "--facts", str(facts)])

    assert status == 2
    assert capsys.readouterr().err.startswith(f"medic: {facts}: throttle: unknown fact; known: ")


# -- alarms that must change nothing: explain prints the reason triage records, and reads nothing ------------------

HELD_BACK = [
    ("ok-state.json", "no decision: state OK: the alarm recovered; nothing to remediate"),
    ("insufficient-data-state.json", "no decision: state INSUFFICIENT_DATA: the alarm has no data to judge — check "
                                     "the metric is still emitted"),
    ("anomaly-lower-band-alarm.json",
     "no decision: AWS/Lambda Duration {FunctionName=checkout, Resource=checkout:live} p99/60s fell below its band "
     "(datapoint 61.2 under its lower band 182.5): latency dropped; Medic proposes no latency fix for a fall"),
    ("cross-account-metric-alarm.json", "the metric is in account 444455556666 (configuration.metrics[m1].accountId), "
                                        "not the alarm's account 123456789012"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "says"), HELD_BACK, ids=[name for name, _ in HELD_BACK])
def test_explain_an_event_that_must_change_nothing_prints_why_and_reads_no_facts(
    name: str, says: str, aws: EmbeddedAWS, capsys: pytest.CaptureFixture[str]
) -> None:
    from medic_tools.world import moto_ext

    with moto_ext.count_requests() as served:  # the AWS the CLI would read (AWS_ENDPOINT_URL points at it)
        status = main(["explain", str(ROOT / "events" / name)])

    out = capsys.readouterr().out
    assert status == 0
    assert says in out
    assert out.splitlines()[-1].startswith("no decision: ")
    assert "rows, in order" not in out
    assert served.requests == []


def test_explain_a_scenario_whose_event_must_change_nothing_prints_the_noop_reason(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    scenario = tmp_path / "recovered.yaml"
    world = (ROOT / "scenarios" / "spillover-fixed-floor.yaml").read_text().split("\nalarm:")[0]
    scenario.write_text(f"{world}\nalarm_event: {ROOT / 'events' / 'ok-state.json'}\n")

    [plan] = triage_only(scenario, RUNBOOK, aws=aws)  # what `medic explain SCENARIO.yaml` prints
    text = explain_all([plan])

    assert plan.status == "NOOP"
    assert text.splitlines() == [
        f"plan {plan.id}: checkout-live-spillover → spillover on checkout:live → NOOP",
        "no decision: state OK: the alarm recovered; nothing to remediate",
    ]


def test_explain_names_where_each_fact_came_from_fallbacks_and_sizing_included(
    aws: EmbeddedAWS, capsys: pytest.CaptureFixture[str]
) -> None:
    """The alias has no ConcurrentExecutions series (`omit_series`): the peak comes from the function-level series,
    and explain says so; the fact that sized the change (the warm demand) is listed with its source too."""
    path = ROOT / "scenarios" / "real-dimension-spillover-prod.yaml"

    [plan] = triage_only(path, RUNBOOK, aws=aws)
    text = explain_plan(plan, RUNBOOK)

    assert (
        "peak_concurrency = 126   ← cloudwatch:GetMetricData [15m@60s] ConcurrentExecutions Maximum "
        "{FunctionName=checkout} (function-level, every qualifier: an upper bound for checkout:prod)"
    ) in text
    assert "  demand_concurrency_peak = " in text and "(Little's law: invocations/s × Duration Average" in text


def _run_at_once(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """The commands run side by side, started together: a scenario's world is anchored in the minute its run starts
    (its alarm, and so its plan id), and runs one after the other could start in different minutes."""
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for command in commands]  # fmt: skip
    done = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


def test_explain_json_of_a_scenario_is_the_plans_explanation_as_data() -> None:
    """`medic explain SCENARIO.yaml --json`, as an operator runs it: one explanation per plan, the same trace, verdict
    and facts as the text, and the plan's changes."""
    path = ROOT / "scenarios" / "spillover-fixed-floor.yaml"
    medic = [sys.executable, "-m", "medic_tools.cli", "explain", str(path)]

    as_json, as_text = _run_at_once([*medic, "--json"], medic)

    assert as_json.returncode == as_text.returncode == 0, as_json.stderr + as_text.stderr
    document = json.loads(as_json.stdout)
    assert document["source"] == str(path) and document["runbook"]["name"] == RUNBOOK.name
    [explanation] = document["explanations"]
    plan, decision = explanation["plan"], explanation["decision"]
    assert (explanation["alarm"], explanation["signal"], explanation["target"], explanation["no_decision"]) == (
        "checkout-live-spillover", "spillover", "checkout:live", None)  # fmt: skip
    # Two processes: each simulation's clock starts at its own minute, so the plan ids (alarm ARN | state time) may
    # differ by a minute's run; the plan is the same.
    assert re.fullmatch(r"p-[0-9a-f]{16}", plan["id"])
    first = rf"plan p-[0-9a-f]{{16}}: checkout-live-spillover → spillover on checkout:live → {plan['status']}\n"
    assert re.match(first, as_text.stdout)
    [change] = plan["changes"]
    assert (change["kind"], change["target"], change["before"]) == ("set_provisioned_concurrency", "checkout:live", 20)
    assert change["changes"] == {"provisioned_concurrency": [20, change["after"]]}
    assert (f"  set_provisioned_concurrency checkout:live: {{'provisioned_concurrency': 20}} → "
            f"{{'provisioned_concurrency': {change['after']}}}\n") in as_text.stdout  # fmt: skip
    verdict = decision["verdict"]
    assert (verdict["diagnosis"], verdict["rule"], verdict["matched"]) == ("pc_floor_too_low", "floor-too-low", True)
    assert f"verdict: pc_floor_too_low by row floor-too-low, mode {verdict['mode']}" in as_text.stdout
    assert decision["rows"]["matched"] == ["floor-too-low"]
    assert decision["rows"]["evaluated"] == len(decision["trace"]) <= decision["rows"]["in_table"]
    for name, fact in decision["facts"].items():
        line = f"  {name} = "
        assert line in as_text.stdout, name
        if fact["source"]:
            assert f"← {fact['source']}" in as_text.stdout
