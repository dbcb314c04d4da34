"""`medic simulate` over many scenarios: a bug in one run is shown with its traceback and stops none of the others."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from medic_tools.cli import run_scenarios, summary_table

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
