"""Poison refused at load, and facts that cannot be compared read as unknown: the runbook and scenario loaders against
hostile or careless files (numbers that are not finite, alias bombs, deep nesting, duplicate keys, thousands of rows).

Every refusal names the file and line, and for a runbook the table, row and field; none is a crash or a hang.
"""

from __future__ import annotations

import math
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

from medic.errors import RunbookError, ScenarioError
from medic.facts import FACT_TYPES
from medic.planning.expr import MAX_DEPTH, ExpressionError, compile_expression
from medic.planning.runbook import (
    CompiledAction,
    Row,
    Scope,
    Table,
    _check_reachable,
    _normal,
    decide,
    load_runbook,
    parse_runbook,
)
from medic.planning.verdict import VerifySpec
from medic.yaml_tree import MAX_NODES
from medic_tools.scenario import load_scenario

HEADER = """\
runbook: test
version: 1
tables:
  spillover:
    rows:
"""
ROWS = """\
- id: floor
  when:
    - "spillover_invocations > 0"
    - "peak_concurrency > pc_allocated"
  diagnosis: pc_floor_too_low
  mode: approve
  actions:
    - kind: set_provisioned_concurrency
      params:
        concurrency: "ceil(peak_concurrency * 1.2)"
  rationale: Raise the floor.
- id: advice
  when: ["spillover_invocations > 0"]
  diagnosis: unexplained
  mode: notify
  actions: [{kind: advise}]
  rationale: Look at the graphs.
"""
# Lines of ROWS' parts once under HEADER (5 lines).
WHEN_1_LINE, MODE_LINE, CONCURRENCY_LINE = 9, 11, 15


def runbook_yaml(rows: str = ROWS) -> str:
    return HEADER + textwrap.indent(rows, "      ")


def refused(text: str) -> RunbookError:
    with pytest.raises(RunbookError) as raised:
        parse_runbook(text, "bad.yaml")
    return raised.value


def spill(**facts: Any) -> dict[str, Any]:
    return {"spillover_invocations": 100.0, "peak_concurrency": 50.0, "pc_allocated": 20, "function_name": "checkout",
            **facts}  # fmt: skip


def test_the_rows_load() -> None:
    assert [row.id for row in parse_runbook(runbook_yaml(), "good.yaml").tables["spillover"].rows] == [
        "floor",
        "advice",
    ]


# --- numbers that are not finite ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1.0e+999", '"1e999"', '"ceil(peak_concurrency * 1e999)"'])
def test_a_parameter_that_is_not_a_finite_number_is_refused_at_load(value: str) -> None:
    error = refused(runbook_yaml(ROWS.replace('"ceil(peak_concurrency * 1.2)"', value)))

    assert str(error).startswith(f"bad.yaml:{CONCURRENCY_LINE}: tables.spillover.rows.floor.actions.0.params."
                                 "concurrency: "), str(error)  # fmt: skip
    assert "not a finite number" in str(error)
    assert (error.table, error.row) == ("spillover", "floor")


@pytest.mark.parametrize("constant", ["1e999", "-1e999", "1e400 * 0"])
def test_a_condition_constant_that_is_not_finite_is_refused_at_load(constant: str) -> None:
    error = refused(runbook_yaml(ROWS.replace('"peak_concurrency > pc_allocated"', f'"peak_concurrency > {constant}"')))

    assert str(error).startswith(f"bad.yaml:{WHEN_1_LINE}: tables.spillover.rows.floor.when.1: "), str(error)
    assert "1e" in str(error) and "is not a finite number (it reads as inf)" in str(error)


def test_an_override_with_an_infinite_parameter_is_refused_naming_the_override(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(runbook_yaml())
    override = runbook_yaml(ROWS.split("- id: advice", maxsplit=1)[0].replace('"ceil(peak_concurrency * 1.2)"', ".inf"))
    (tmp_path / "team.yaml").write_text(override.replace("runbook: test\n", "runbook: team\nextends: test\n"))

    with pytest.raises(RunbookError) as raised:
        load_runbook(tmp_path / "base.yaml", [tmp_path / "team.yaml"])

    assert str(raised.value).startswith(f"{tmp_path / 'team.yaml'}:{CONCURRENCY_LINE + 1}: tables.spillover.rows."
                                        "floor.actions.0.params.concurrency: ")  # fmt: skip


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_fact_that_is_not_a_finite_number_makes_its_condition_unknown_never_a_crash(value: float) -> None:
    rows = ROWS.replace('"peak_concurrency > pc_allocated"', '"ceil(peak_concurrency) > pc_allocated"')
    runbook = parse_runbook(runbook_yaml(rows), "ok.yaml")

    decision = decide(runbook, "spillover", spill(peak_concurrency=value))

    floor = decision.trace[0]
    assert not floor.matched and floor.conditions[-1].result == "unknown"
    assert floor.note == f"fact 'peak_concurrency' is {value!r} (not a finite number)"
    assert floor.conditions[-1].facts == {"peak_concurrency": str(value), "pc_allocated": 20}, "storable in the log"
    assert decision.row == "advice" and "peak_concurrency" in decision.missing_facts
    assert decision.model_dump_json()  # no non-finite number anywhere in the decision


def test_a_parameter_that_computes_to_infinity_skips_the_row() -> None:
    runbook = parse_runbook(runbook_yaml(ROWS.replace('"ceil(peak_concurrency * 1.2)"', '"peak_concurrency * 1e308"')),
                            "ok.yaml")  # fmt: skip

    decision = decide(runbook, "spillover", spill())

    assert decision.row == "advice"
    assert decision.trace[0].note == ("a parameter could not be computed: set_provisioned_concurrency.concurrency is "
                                      "inf, not a finite number")  # fmt: skip


# --- YAML: aliases, nesting, duplicate keys -------------------------------------------------------------------------

BOMB = "".join(
    [f"a0: &a0 [{', '.join(['x'] * 9)}]\n"] + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 10)]
)  # 9^10 ≈ 3.5 billion values once expanded, 300 bytes of text


def test_an_alias_bomb_is_refused_without_being_expanded() -> None:
    """3.5 billion values once expanded: refused while counting them (expanding them would not end in a test run)."""
    error = refused(HEADER.replace("tables:", BOMB + "tables:"))

    assert "once its aliases are expanded (an alias bomb?)" in str(error)
    assert str(error).startswith("bad.yaml:")


def test_an_alias_bomb_in_a_scenario_is_refused_without_being_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB + "world: {region: us-east-1}\n")

    with pytest.raises(ScenarioError, match=r"line \d+: more than .* values once its aliases are expanded"):
        load_scenario(path)


def test_aliases_that_expand_to_a_reasonable_size_are_fine() -> None:
    rows = ROWS.replace('  when: ["spillover_invocations > 0"]\n  diagnosis: unexplained',
                        '  when: &spilling ["spillover_invocations > 0"]\n  diagnosis: unexplained')  # fmt: skip
    text = (
        runbook_yaml(rows)
        + "examples:\n"
        + "".join(
            f"  - {{name: e{n}, signal: spillover, facts: {{spillover_invocations: 1}}, expect: {{row: advice}}}}\n"
            for n in range(3)
        )
    )
    assert len(parse_runbook(text, "ok.yaml").examples) == 3
    assert MAX_NODES >= 100_000


def test_a_recursive_alias_is_refused() -> None:
    error = refused(runbook_yaml().replace("tables:", "loop: &loop [*loop]\ntables:"))

    assert "bad.yaml:3: loop.0: " in str(error) and "recursive" in str(error)


def test_nesting_past_the_limit_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    deep = "".join("  " * level + f"k{level}:\n" for level in range(200)) + "  " * 200 + "leaf: 1\n"
    error = refused(runbook_yaml() + "description:\n" + textwrap.indent(deep, "  "))

    assert "nested more than 64 levels deep" in str(error)
    path = tmp_path / "deep.yaml"
    path.write_text("world:\n" + textwrap.indent(deep, "  "))
    with pytest.raises(ScenarioError, match="nested more than 64 levels deep"):
        load_scenario(path)


def test_a_duplicate_key_in_a_row_is_refused_with_its_line() -> None:
    error = refused(runbook_yaml(ROWS.replace("  mode: approve\n", "  mode: approve\n  mode: auto\n")))

    assert str(error) == (f"bad.yaml:{MODE_LINE + 1}: tables.spillover.rows.floor.mode: duplicate key 'mode' "
                          f"(first at line {MODE_LINE})")  # fmt: skip
    assert (error.table, error.row) == ("spillover", "floor")


def test_a_duplicate_key_anywhere_is_refused() -> None:
    error = refused(runbook_yaml().replace("version: 1\n", "version: 1\nversion: 2\n"))

    assert str(error) == "bad.yaml:3: version: duplicate key 'version' (first at line 2)"


def test_a_duplicate_key_in_a_scenario_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("world:\n  region: us-east-1\n  region: eu-west-1\n")

    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert str(raised.value) == f"{path}: world.region: line 3: duplicate key 'region' (first at line 2)"


# --- expressions nested too deeply ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source", ["-" * 480 + "peak_concurrency", "not " * 120 + "managed", "-(" * 120 + "peak_concurrency" + ")" * 120]
)
def test_an_expression_nested_too_deeply_is_refused_not_a_recursion_error(source: str) -> None:
    assert len(source) <= 500
    with pytest.raises(ExpressionError, match=f"nested more than {MAX_DEPTH} levels deep"):
        compile_expression(source, FACT_TYPES)


def test_an_expression_nested_to_the_limit_compiles_and_evaluates() -> None:
    source = "peak_concurrency" + " + 1" * (MAX_DEPTH - 1)

    assert compile_expression(source, FACT_TYPES).evaluate({"peak_concurrency": 1.0}) == MAX_DEPTH
    with pytest.raises(ExpressionError, match=f"nested more than {MAX_DEPTH} levels deep"):
        compile_expression(source + " + 1", FACT_TYPES)


# --- thousands of rows ----------------------------------------------------------------------------------------------


def many_rows(count: int) -> str:
    """`count` rows, each a different threshold: none shadows another, and each is checked against all above it."""
    rows = "".join(
        f"""\
- id: row-{n}
  when: ["spillover_invocations > {n}", "peak_concurrency > {n}", "not has_autoscaling"]
  diagnosis: pc_floor_too_low
  mode: approve
  actions:
    - {{kind: set_provisioned_concurrency, params: {{concurrency: "ceil(peak_concurrency * 1.2) + {n}"}}}}
  rationale: Row {n}.
"""
        for n in range(count)
    )
    return runbook_yaml(rows)


def test_a_runbook_of_2000_rows_loads(tmp_path: Path) -> None:
    """Its load time against 200 rows (linear: 10×, the old pairwise check: ~100×) is measured by the decisions
    benchmark (bench section 4), never by a timed test; here: it loads, each row checked against those above it."""
    runbook = parse_runbook(many_rows(2000), "many.yaml")

    assert len(runbook.tables["spillover"].rows) == 2000


def pairwise_unreachable(rows: list[Row]) -> tuple[str, str] | None:
    """The reachability rule, pair by pair (the definition): the first row shadowed, and the first row shadowing it."""
    for index, later in enumerate(rows):
        conditions = {_normal(c) for c in later.conditions}
        names = frozenset().union(*(c.names for c in later.conditions))
        for earlier in rows[:index]:
            if earlier.scope is not None and earlier.scope != later.scope:
                continue
            params = frozenset().union(*(e.names for a in earlier.actions for e in a.params.values()))
            if {_normal(c) for c in earlier.conditions} <= conditions and params <= names:
                return later.id, earlier.id
    return None


def test_the_indexed_reachability_check_finds_what_the_pairwise_rule_finds() -> None:
    """Random tables of rows built from a small pool of conditions (some rows past the subset bound, some scoped)."""
    pool = [f"throttles > {n}" for n in range(14)]
    rng = random.Random(20261203)
    compiled = {source: compile_expression(source, FACT_TYPES) for source in pool}
    params = [compile_expression("ceil(peak_concurrency)", FACT_TYPES), compile_expression(5, FACT_TYPES)]
    found = set()
    for case in range(300):
        rows = []
        for n in range(rng.randint(2, 9)):
            size = rng.choice([1, 2, 3, 12, 13])
            conditions = tuple(compiled[source] for source in rng.sample(pool, size))
            scope = rng.choice([None, None, "a", "b"])
            rows.append(Row(id=f"r{n}", conditions=conditions, diagnosis="reserved_limit", mode="approve",
                            actions=(CompiledAction("set_reserved_concurrency", {"concurrency": rng.choice(params)}),),
                            rationale="r", verify=VerifySpec(), scope=Scope(functions=(scope,)) if scope else None,
                            where=f"t.yaml:{n}"))  # fmt: skip
        expected = pairwise_unreachable(rows)
        try:
            _check_reachable(Table("throttles", "first", tuple(rows)))
            got = None
        except RunbookError as error:
            got = (error.row, str(error).split("unreachable: row ")[1].split("'")[1])
        assert got == expected, f"case {case}"
        found.add(got is None)
    assert found == {True, False}, "the cases reach both outcomes"


# --- through the CLI ------------------------------------------------------------------------------------------------


def test_the_cli_refuses_poisoned_files_with_exit_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medic_tools.cli import main

    bomb, infinite = tmp_path / "bomb.yaml", tmp_path / "inf.yaml"
    bomb.write_text(HEADER.replace("tables:", BOMB + "tables:"))
    infinite.write_text(runbook_yaml(ROWS.replace('"ceil(peak_concurrency * 1.2)"', ".inf")))
    scenario = tmp_path / "bomb-scenario.yaml"
    scenario.write_text(BOMB + "world: {region: us-east-1}\n")

    base, team = tmp_path / "base.yaml", tmp_path / "team.yaml"
    base.write_text(runbook_yaml())
    team.write_text(infinite.read_text().replace("runbook: test\n", "runbook: team\nextends: test\n"))

    assert main(["runbook", "check", str(base)]) == 0
    assert main(["runbook", "check", str(bomb)]) == 2
    assert main(["runbook", "check", str(infinite)]) == 2
    assert main(["runbook", "check", str(base), "--override", str(team)]) == 2
    assert main(["simulate", str(scenario)]) == 2

    errors = capsys.readouterr().err
    assert "bomb.yaml:8: a9.8.8.8.8: more than 500,000 values once its aliases are expanded" in errors
    field = "tables.spillover.rows.floor.actions.0.params.concurrency: inf is not a finite number"
    assert f"{infinite}:{CONCURRENCY_LINE}: {field}" in errors
    assert f"{team}:{CONCURRENCY_LINE + 1}: {field}" in errors
    assert "bomb-scenario.yaml: a9.8.8.8.8: line 6: more than 500,000 values" in errors
