"""The JSON Schemas of the files medic reads (`medic schema runbook|scenario|facts`) and of the document `medic backtest
--json` prints (`medic schema backtest`): the checked-in copies are what the code generates, every shipped scenario
validates, and the schemas refuse what the loaders refuse.

`jsonschema` is not a dependency of Medic's; it comes with aws-sam-translator (a dev dependency). Where it is missing,
the checks that need it are skipped and the loaders (pydantic, the source of each schema) still run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medic import yaml_tree
from medic.errors import InputError
from medic.planning.explain import facts_schema, load_facts_file
from medic.planning.runbook import runbook_schema
from medic_tools.backtest.model import backtest_schema
from medic_tools.cli import SCHEMAS, main
from medic_tools.scenario import load_scenario, scenario_schema

ROOT = Path(__file__).resolve().parents[2]
FILES = {
    "runbook": ROOT / "runbooks" / "runbook.schema.json",
    "scenario": ROOT / "docs" / "schemas" / "scenario.schema.json",
    "facts": ROOT / "docs" / "schemas" / "facts.schema.json",
    "backtest": ROOT / "docs" / "schemas" / "backtest.schema.json",
}
GENERATED = {"runbook": runbook_schema, "scenario": scenario_schema, "facts": facts_schema,
             "backtest": backtest_schema}  # fmt: skip
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
EVENT = ROOT / "events" / "throttles-alarm.json"


def validator(kind: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.Draft202012Validator(GENERATED[kind]())


@pytest.mark.parametrize("kind", sorted(FILES))
def test_each_checked_in_schema_is_what_medic_schema_prints(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert set(SCHEMAS) == set(FILES)

    assert main(["schema", kind]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed == GENERATED[kind]()
    assert json.loads(FILES[kind].read_text(encoding="utf-8")) == printed, f"run: medic schema {kind} > {FILES[kind]}"


def test_medic_runbook_schema_still_prints_the_runbook_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == runbook_schema()


@pytest.mark.parametrize("kind", sorted(FILES))
def test_each_schema_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = GENERATED[kind]()

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.name for path in SCENARIOS])
def test_every_shipped_scenario_validates_against_the_scenario_schema(path: Path) -> None:
    load_scenario(path)  # the loader, the schema's source
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator("scenario").iter_errors(yaml_tree.load(path.read_text(encoding="utf-8")))]  # fmt: skip
    assert errors == []


FLOOR = (ROOT / "scenarios" / "spillover-fixed-floor.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda doc: doc.pop("alarm"), "(root)"),
        (lambda doc: doc.update(alarm=None), "(root)"),
        (lambda doc: doc["world"].update(functions=[{"name": "f", "memory_mb": 64}]), "world.functions.0.memory_mb"),
        (lambda doc: doc["world"].update(regions=["us-east-1"]), "world.regions"),
        (lambda doc: doc.update(settings={"plans_table": "mine"}), "settings.plans_table"),
        (lambda doc: doc.update(settings={"dry_runn": True}), "settings.dry_runn"),
        (lambda doc: doc["alarm"].update(comparison="Above"), "alarm.comparison"),
    ],
    ids=["no-alarm", "null-alarm", "memory", "unknown-key", "simulator-setting", "unknown-setting", "comparison"],
)
def test_the_scenario_schema_refuses_what_the_loader_refuses(tmp_path: Path, edit: Any, field: str) -> None:
    doc = yaml_tree.load(FLOOR)
    edit(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML

    with pytest.raises(InputError) as refused:
        load_scenario(path)

    assert refused.value.field == field
    assert list(validator("scenario").iter_errors(doc)) != []


GOOD_FACTS = {
    "function_name": "orders-worker", "throttles": 75, "account_utilization": 0.4, "invocation_type": "sync",
    "has_reserved_concurrency": True, "reserved_concurrency": 100, "function_peak_concurrency": 100,
    "reserved_utilization": 1.0, "is_db_consumer": False, "claimed_utilization": None, "tags": {"team": "payments"},
}  # fmt: skip


def test_a_facts_file_validates_against_the_facts_schema_and_explains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(GOOD_FACTS), encoding="utf-8")

    assert load_facts_file(facts) == GOOD_FACTS, "the values as given"
    assert list(validator("facts").iter_errors(GOOD_FACTS)) == []
    assert main(["explain", str(EVENT), "--facts", str(facts)]) == 0
    assert "verdict: reserved_limit by row reserved-limit" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("facts", "field", "problem"),
    [
        ({"throttles": "75"}, "throttles", "Input should be a valid number"),
        ({"throttles": True}, "throttles", "Input should be a valid number"),
        ({"has_reserved_concurrency": 1}, "has_reserved_concurrency", "Input should be a valid boolean"),
        ({"function_name": 7}, "function_name", "Input should be a valid string"),
        ({"tags": {"team": 1}}, "tags.team", "Input should be a valid string"),
        ({"throttle": 3}, "throttle", "unknown fact; known: "),
    ],
    ids=["number-as-string", "bool-as-number", "number-as-bool", "number-as-string-fact", "tag-value", "unknown"],
)
def test_a_facts_file_of_the_wrong_types_is_refused_by_the_loader_and_the_schema(
    tmp_path: Path, facts: dict[str, Any], field: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts), encoding="utf-8")

    assert main(["explain", str(EVENT), "--facts", str(path)]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"medic: {path}: {field}: {problem}"), err
    assert list(validator("facts").iter_errors(facts)) != []


# -- docs/SCENARIOS.md: its examples are what the loaders and the simulator take and give ---------------------------

DOC = (ROOT / "docs" / "SCENARIOS.md").read_text(encoding="utf-8")


def _block(language: str, after: str) -> str:
    start = DOC.index(f"```{language}\n", DOC.index(after)) + len(language) + 4
    return DOC[start : DOC.index("```", start)]


def test_the_docs_scenario_example_loads_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(_block("yaml", "## The scenario file"), encoding="utf-8")

    scenario = load_scenario(path)

    assert scenario.expect is not None and scenario.expect.diagnosis == "pc_floor_too_low"
    assert list(validator("scenario").iter_errors(yaml_tree.load(path.read_text(encoding="utf-8")))) == []


def test_the_docs_facts_example_loads_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(_block("json", "## The facts file"), encoding="utf-8")

    facts = load_facts_file(path)

    assert facts["throttles"] == 75 and facts["tags"] == {"team": "payments"}
    assert list(validator("facts").iter_errors(facts)) == []


def test_the_docs_json_contract_has_the_keys_the_simulator_prints() -> None:
    from medic.ledger.chain import LogEvent
    from medic.plan import Plan, contract_json
    from medic_tools.simulate import Outcome

    documented = json.loads(_block("json", "### `--json`"))
    plan = Plan(id="p-1", status="PROPOSED", alarm_arn="a", alarm_name="n", state_timestamp="t", account="1",
                region="us-east-1", signal="spillover", target="f:live", created_at="c", updated_at="c")  # fmt: skip

    assert set(documented) == set(Outcome("s", plans=[plan]).contract())
    assert list(documented["plans"][0]) == list(contract_json(plan))
    assert list(documented["log"][0]) == list(LogEvent.model_fields)
