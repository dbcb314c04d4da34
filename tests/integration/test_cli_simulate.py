"""`medic simulate` as an operator runs it: docs/SCENARIOS.md's example; a scenario's `settings:`; many
scenarios (`make demo`): progress on stderr, one summary line each, the story behind --verbose, and a scenario that
is invalid or fails stops none of the others."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"


def test_a_scenario_in_dry_run_proposes_and_changes_nothing(aws: EmbeddedAWS, tmp_path: Path) -> None:
    path = tmp_path / "floor-dry-run.yaml"
    path.write_text(FLOOR.read_text() + "settings: {dry_run: true}\n")
    sim = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(None))
    try:
        outcome = sim.run("approve")
    finally:
        install(None)

    [plan] = outcome.plans
    assert plan.dry_run is True and plan.status == "PROPOSED"
    assert [action.kind for action in plan.actions] == ["set_provisioned_concurrency"]
    assert outcome.world_after["checkout:live"]["provisioned_concurrency"] == 20  # the floor the scenario set
    assert "approval" not in [event.kind for event in outcome.log]


def test_the_docs_scenario_example_holds_its_expectation_and_prints_the_documented_contract(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    from medic_tools.cli import expectation_problems
    from medic_tools.simulate import simulate

    doc = (ROOT / "docs" / "SCENARIOS.md").read_text(encoding="utf-8")
    start = doc.index("```yaml\n", doc.index("## The scenario file")) + len("```yaml\n")
    path = tmp_path / "example.yaml"
    path.write_text(doc[start : doc.index("```", start)], encoding="utf-8")
    start = doc.index("```json\n", doc.index("### `--json`")) + len("```json\n")
    documented = json.loads(doc[start : doc.index("```", start)])

    contract = simulate(path, aws=aws).contract()

    assert expectation_problems(str(path), contract) == []
    assert list(contract) == list(documented)
    [plan], [shown] = contract["plans"], documented["plans"]
    assert {key: value for key, value in plan.items() if key != "id"} == {k: v for k, v in shown.items() if k != "id"}
    assert contract["world_after"] == documented["world_after"]
    assert list(contract["log"][0]) == list(documented["log"][0])


# -- many scenarios: progress, a summary, failures told at the end -----------------------------------------------------


def medic(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medic_tools.cli", *argv], capture_output=True, text=True, check=False,
                          timeout=600)  # fmt: skip


def test_many_scenarios_one_invalid_one_missing_its_expectation_the_others_still_run(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("world:\n  functions:\n    - {name: checkout, memory_mb: 64}\nalarm: {name: a}\n")
    wrong = tmp_path / "floor-expects-cold-starts.yaml"
    wrong.write_text(FLOOR.read_text().replace("diagnosis: pc_floor_too_low", "diagnosis: cold_starts"))

    run = medic("simulate", str(broken), str(wrong), str(FLOOR), "--check")

    assert run.returncode == 2, run.stderr  # an invalid file: 2, as for one scenario alone
    assert "Traceback" not in run.stderr
    progress = [line for line in run.stderr.splitlines() if line.startswith("[")]
    assert [re.sub(r" \(\d+\.\d s\)$", "", line) for line in progress] == [
        f"[1/3] {broken} … invalid",
        f"[2/3] {wrong} … expect failed",
        f"[3/3] {FLOOR} … ok",
    ]
    assert run.stderr.splitlines()[len(progress) :] == [
        "medic: 2 of 3 scenarios failed:",
        f"medic: {broken}: world.functions.0.memory_mb: Input should be greater than or equal to 128",
        f"medic: {wrong}: expect: diagnosis is 'pc_floor_too_low', expected 'cold_starts'",
    ]
    header, *lines = run.stdout.splitlines()
    assert header.split() == ["scenario", "signal/diagnosis", "state", "expect", "plan"]
    assert [line.split()[:5] for line in lines] == [
        [str(broken), "—", "—", "INVALID", "world.functions.0.memory_mb:"],
        [str(wrong), "spillover/pc_floor_too_low", "VERIFIED", "FAILED", "(diagnosis"],
        [str(FLOOR), "spillover/pc_floor_too_low", "VERIFIED", "ok", "set_provisioned_concurrency"],
    ]
    assert re.search(r"set_provisioned_concurrency checkout:live 20 → \d+$", lines[2])
    assert "━━" not in run.stdout and "Block Kit JSON" not in run.stdout  # the story and the cards: --verbose only


def test_without_check_a_missed_expectation_is_shown_and_the_run_succeeds(tmp_path: Path) -> None:
    wrong = tmp_path / "floor-expects-cold-starts.yaml"
    wrong.write_text(FLOOR.read_text().replace("diagnosis: pc_floor_too_low", "diagnosis: cold_starts"))

    run = medic("simulate", str(wrong))

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # one scenario: no progress
    [line] = run.stdout.splitlines()[1:]
    assert "FAILED (diagnosis is 'pc_floor_too_low', expected 'cold_starts')" in line


def test_verbose_tells_the_story_with_the_cards_then_the_summary() -> None:
    run = medic("simulate", str(FLOOR), "--verbose")

    assert run.returncode == 0, run.stderr
    story, summary = run.stdout.split("━━ Summary ")
    assert "━━ 1. The world (embedded AWS" in story and "━━ 3. Triage: signal → facts → runbook → plan" in story
    assert "Block Kit JSON:" in story  # the card
    assert "Remediation log (DynamoDB, append-only, hash-chained)" in story
    assert re.search(rf"^{re.escape(str(FLOOR))} +spillover/pc_floor_too_low +VERIFIED +ok ", summary, re.M)


# -- --backtest: the demo's backtest line ----------------------------------------------------------------------------


def test_backtest_replays_each_world_and_sums_it_up_under_the_summary(tmp_path: Path) -> None:
    """`make demo` runs with --backtest: each world is backtested after its run. A rejected plan changed nothing, so
    its replay decides as triage did; an applied fix changed the configuration the replay reads today, and the line
    says so."""
    rejected = medic("simulate", str(FLOOR), "--decide", "reject", "--backtest")
    applied = medic("simulate", str(FLOOR), str(FLOOR), "--decide", "approve", "--backtest", "--json")

    assert rejected.returncode == 0, rejected.stderr
    *_, line = rejected.stdout.splitlines()
    assert re.fullmatch(r"backtest: 1 ALARM transitions, 1 decisions replayed, 1 equal to the log; \d+ AWS calls, "
                        r"all reads", line), line  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    documents = json.loads(applied.stdout)
    assert [document["backtest"]["differ_after_a_change"] for document in documents] == [1, 1]
    assert [document["backtest"]["equal_to_log"] for document in documents] == [0, 0]


def test_the_demo_runs_the_simulator_with_its_backtest_line() -> None:
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ndemo:", 1)[1].split("\n\n", 1)[0]

    assert "medic simulate $(DEMO_SCENARIOS) --decide approve --check --backtest" in recipe
