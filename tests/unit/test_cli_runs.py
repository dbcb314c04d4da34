"""`medic simulate` over many scenarios: a bug in one run is shown with its traceback and stops none of the others."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from medic_tools.cli import ScenarioRun, run_scenarios, summary_table, template_line

FLOOR = Path(__file__).resolve().parents[2] / "scenarios" / "spillover-fixed-floor.yaml"


def floor_document(path: str) -> dict[str, Any]:
    action = {"kind": "set_provisioned_concurrency", "target": "checkout:live", "before": 20, "after": 66}
    plan = {"signal": "spillover", "diagnosis": "pc_floor_too_low", "status": "VERIFIED", "mode": "approve",
            "actions": [action]}  # fmt: skip
    return {"scenario": path, "plans": [plan]}


def test_a_bug_in_one_run_is_shown_with_its_traceback_and_the_next_scenario_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(shutil.copy(FLOOR, tmp_path / name)) for name in ("first.yaml", "buggy.yaml", "last.yaml")]
    ran: list[str] = []

    def run_one(path: str) -> dict[str, Any]:
        ran.append(path)
        if path.endswith("buggy.yaml"):
            raise KeyError("plan_id")
        return floor_document(path)

    progress = io.StringIO()
    runs = run_scenarios(paths, run_one, progress)

    assert ran == paths
    assert [run.verdict for run in runs] == ["ok", "error", "ok"]
    assert [run.failed(check=True) for run in runs] == [False, True, False]
    assert runs[1].failure_lines() == [f"{paths[1]}: KeyError: 'plan_id' (traceback above)"]
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "KeyError: 'plan_id'" in err
    assert [line.rsplit(" (", 1)[0] for line in progress.getvalue().splitlines()] == [
        f"[1/3] {paths[0]} … ok", f"[2/3] {paths[1]} … error", f"[3/3] {paths[2]} … ok",
    ]  # fmt: skip
    lines = summary_table(runs).splitlines()
    assert lines[2].split()[:4] == [paths[1], "—", "—", "ERROR"]
    assert lines[3].endswith("spillover/pc_floor_too_low  VERIFIED  ok      "
                             "set_provisioned_concurrency checkout:live 20 → 66")  # fmt: skip


def test_the_templates_line_counts_applied_changes_outside_a_template_and_the_reverts() -> None:
    warning = {
        "stack": "media",
        "logical_id": "ResizerFunction",
        "resource_type": "AWS::Lambda::Function",
        "resource": "ResizerFunction",
        "property": "ReservedConcurrentExecutions",
        "value": 150,
        "field": "reserved_concurrency",
        "before": 100,
        "kind": "set_reserved_concurrency",
        "target": "resizer",
    }

    def run(plan: str, kinds: list[str]) -> ScenarioRun:
        log = [
            {"plan_id": plan, "kind": kind, "data": warning if kind == "template_drift_warning" else {}}
            for kind in kinds
        ]
        return ScenarioRun(f"{plan}.yaml", document={"plans": [], "log": log})

    proposed = run("p-1", ["template_drift_warning", "plan_created"])  # never applied: nothing to undo
    assert template_line([proposed]) == ""
    reverted = run("p-2", ["template_drift_warning", "applied", "verified", "reverted_by_deploy"])
    held = run("p-3", ["template_drift_warning", "applied", "verified"])
    line = template_line([proposed, reverted, held])
    assert line.startswith(
        "templates: 2 changes outside a CloudFormation template (e.g. the next deploy of stack "
        "media undoes it: set ResizerFunction.ReservedConcurrentExecutions to 150)"
    )
    assert line.endswith("1 undone by a later deploy and told by the verifier")
