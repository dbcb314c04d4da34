"""The CLI's machine-readable output: `medic runbook check --json`, `medic explain EVENT --facts F --json` (the
shapes docs/RUNBOOK.md documents), and `medic --version`."""

from __future__ import annotations

import importlib.metadata
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from medic.planning.runbook import load_runbook
from medic_tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "runbooks" / "lambda-latency.yaml"
EVENT = ROOT / "events" / "throttles-alarm.json"

RUNBOOK = """\
runbook: test
version: 3
tables:
  spillover:
    rows:
      - id: floor
        when: ["spillover_invocations > 0", "peak_concurrency > pc_allocated"]
        diagnosis: pc_floor_too_low
        mode: approve
        actions:
          - kind: set_provisioned_concurrency
            params: {concurrency: "ceil(peak_concurrency * 1.2)"}
        rationale: Raise the floor.
examples:
  - name: the floor is too low
    signal: spillover
    facts: {spillover_invocations: 5, peak_concurrency: 50, pc_allocated: 20}
    expect: {row: floor, params: {set_provisioned_concurrency: {concurrency: 60}}}
  - name: a wrong expectation
    signal: spillover
    facts: {spillover_invocations: 5, peak_concurrency: 50, pc_allocated: 20}
    expect: {row: floor, params: {set_provisioned_concurrency: {concurrency: 70}}}
"""


def check_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    status = main(["runbook", "check", *argv, "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


def test_runbook_check_json_of_the_shipped_runbook(capsys: pytest.CaptureFixture[str]) -> None:
    runbook = load_runbook(SHIPPED)

    status, document, err = check_json(capsys)

    assert (status, err) == (0, "")
    assert document["files"] == [str(SHIPPED)] and document["valid"] is True and document["problems"] == []
    assert document["runbook"] == {"name": "lambda-latency", "version": runbook.version, "source": str(SHIPPED),
                                   "layers": [str(SHIPPED)]}  # fmt: skip
    assert document["tables"] == {name: len(table.rows) for name, table in runbook.tables.items()}
    assert document["rows"] == sum(document["tables"].values())
    examples = document["examples"]
    assert (examples["passed"], examples["failed"]) == (len(runbook.examples), 0)
    assert [result["name"] for result in examples["results"]] == [example.doc.name for example in runbook.examples]
    assert all(result["passed"] and result["problems"] == [] for result in examples["results"])
    assert examples["results"][0]["where"].startswith(f"{SHIPPED}:")


def test_runbook_check_json_names_a_failed_example_and_its_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "test.yaml"
    path.write_text(RUNBOOK)

    status, document, _ = check_json(capsys, str(path))

    assert status == 1
    assert (document["valid"], document["tables"], document["rows"]) == (True, {"spillover": 1}, 1)
    ok, wrong = document["examples"]["results"]
    assert (document["examples"]["passed"], document["examples"]["failed"]) == (1, 1)
    assert ok == {"name": "the floor is too low", "where": f"{path}:15", "passed": True, "problems": []}
    assert (wrong["name"], wrong["passed"]) == ("a wrong expectation", False)
    assert len(wrong["problems"]) == 1 and "70" in wrong["problems"][0] and "60" in wrong["problems"][0]


def test_runbook_check_json_of_a_refused_override_says_where_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, team = tmp_path / "test.yaml", tmp_path / "team.yaml"
    base.write_text(RUNBOOK)
    team.write_text(textwrap.dedent("""\
        runbook: team
        version: 1
        extends: test
        tables:
          spillover:
            rows:
              - id: floor
                when: ["spillover_invocations > 0"]
                diagnosis: pc_floor_too_low
                mode: sometimes
                actions: [{kind: advise}]
                rationale: Look.
        """))  # fmt: skip

    status, document, err = check_json(capsys, str(base), "--override", str(team))

    assert status == 2
    assert document["files"] == [str(base), str(team)]
    assert (document["valid"], document["runbook"], document["tables"], document["rows"]) == (False, None, None, None)
    assert document["examples"] == {"passed": 0, "failed": 0, "results": []}
    [problem] = document["problems"]
    assert problem["source"] == f"{team}:10"
    assert (problem["table"], problem["row"]) == ("spillover", "floor")
    assert problem["field"] == "tables.spillover.rows.floor.mode"
    assert err == f"medic: {problem['message']}\n" and problem["problem"] in problem["message"]


def test_explain_json_of_an_event_on_given_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({
        "throttles": 75, "account_utilization": 0.4, "invocation_type": "sync", "has_reserved_concurrency": True,
        "reserved_concurrency": 100, "function_peak_concurrency": 100, "reserved_utilization": 1.0,
        "is_db_consumer": False, "function_name": "orders-worker",
    }))  # fmt: skip
    table = load_runbook(SHIPPED).tables["throttles"]

    status = main(["explain", str(EVENT), "--facts", str(facts), "--json"])
    text_status = main(["explain", str(EVENT), "--facts", str(facts)])

    document, text = capsys.readouterr().out.split("\n}\n", 1)
    document = json.loads(document + "}")
    assert status == text_status == 0
    assert (document["source"], document["runbook"]["name"]) == (str(EVENT), "lambda-latency")
    [explanation] = document["explanations"]
    assert (explanation["alarm"], explanation["signal"], explanation["plan"], explanation["no_decision"]) == (
        "checkout-throttles", "throttles", None, None)  # fmt: skip
    assert explanation["signal_reason"] and explanation["signal_reason"] in text
    decision = explanation["decision"]
    assert (decision["table"], decision["hit_policy"]) == ("throttles", "first")
    assert decision["verdict"] | {"rationale": None} == {
        "matched": True, "diagnosis": "reserved_limit", "rule": "reserved-limit", "mode": "approve",
        "actions": [{"kind": "set_reserved_concurrency", "params": {"concurrency": 150}}], "rationale": None,
        "reason": "row 'reserved-limit' matched",
    }  # fmt: skip
    assert decision["verdict"]["rationale"] and decision["verdict"]["rationale"].split("\n")[0] in text
    evaluated = [row.id for row in table.rows][: [row.id for row in table.rows].index("reserved-limit") + 1]
    assert decision["rows"] == {"in_table": len(table.rows), "evaluated": len(evaluated), "matched": ["reserved-limit"]}
    assert [row["row"] for row in decision["trace"]] == evaluated
    for row in decision["trace"]:  # the same trace as the text's
        assert f"  {'✔' if row['matched'] else '✘'} {row['row']}  [{row['where']}]" in text
        for condition in row["conditions"]:
            assert f"{condition['result']:<7} {condition['expression']}" in text
    assert decision["facts"]["account_utilization"] == {"value": 0.4, "source": str(facts), "missing": None}
    assert decision["facts"]["account_limit"] == {"value": None, "source": None, "missing": None}
    assert set(decision["facts"]) == {line.split(" = ")[0].strip() for line in text.split("facts read:\n")[1]
                                      .split("\n\n")[0].splitlines()}  # fmt: skip


def test_explain_json_of_an_event_that_must_change_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(ROOT / "events" / "ok-state.json"), "--json"]) == 0

    [explanation] = json.loads(capsys.readouterr().out)["explanations"]
    assert explanation["no_decision"] == "state OK: the alarm recovered; nothing to remediate"
    assert explanation["decision"] is None and explanation["plan"] is None


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == f"medic {importlib.metadata.version('medic')}\n"


def test_version_from_a_source_tree_never_installed_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import medic

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(SystemExit):
        main(["--version"])

    out = capsys.readouterr().out
    assert out.startswith(f"medic {medic.__version__} (not installed: from ") and out.endswith("medic)\n")
