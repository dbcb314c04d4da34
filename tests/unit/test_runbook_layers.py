"""The runbook's authoring features: hit policy collect, scopes, override layers, unreachable rows, mode ceilings,
embedded examples, the JSON Schema, the last-good store, and the explaining trace."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from medic.actions import registry
from medic.actions.base import Action, PlannedAction
from medic.errors import RunbookError
from medic.planning.explain import explain_decision, trace_lines
from medic.planning.runbook import (
    Runbook,
    RunbookStore,
    decide,
    layer,
    load_runbook,
    parse_runbook,
    run_examples,
    runbook_schema,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "runbooks" / "runbook.schema.json"


def doc(body: str, *, name: str = "base", extends: str | None = None) -> str:
    head = f"runbook: {name}\nversion: 1\n" + (f"extends: {extends}\n" if extends else "")
    return head + textwrap.dedent(body)


BASE = doc("""\
tables:
  spillover:
    rows:
      - id: floor
        when: ["spillover_invocations > 0", "not has_autoscaling"]
        diagnosis: pc_floor_too_low
        mode: approve
        actions:
          - kind: set_provisioned_concurrency
            params: {concurrency: "ceil(peak_concurrency * 1.2)"}
        rationale: Raise the floor to {peak_concurrency} plus 20%.
      - id: advice
        when: ["spillover_invocations > 0"]
        diagnosis: unexplained
        mode: notify
        actions: [{kind: advise}]
        rationale: Look at the graphs.
""")


def spill(**facts: Any) -> dict[str, Any]:
    return {"spillover_invocations": 100.0, "has_autoscaling": False, "peak_concurrency": 50.0,
            "function_name": "checkout", **facts}  # fmt: skip


# --- hit policy collect ---------------------------------------------------------------------------

COLLECT = doc("""\
tables:
  db_connections:
    hit_policy: collect
    rows:
      - id: cap
        when: ["db_connection_ratio >= 0.8"]
        diagnosis: connection_blowup
        mode: auto
        actions:
          - kind: set_provisioned_concurrency
            params: {concurrency: "floor(db_max_connections * 0.5)"}
        rationale: Cap at {db_max_connections}.
      - id: cap-more
        when: ["db_connection_ratio >= 0.9"]
        diagnosis: connection_blowup
        mode: approve
        actions:
          - kind: set_autoscaling_bounds
            params: {min: 1, max: "floor(db_max_connections * 0.4)"}
        rationale: Cap harder.
      - id: advice
        when: ["db_connection_ratio >= 0.8"]
        diagnosis: connection_blowup
        mode: notify
        actions: [{kind: advise}]
        rationale: Use RDS Proxy.
""")


def test_collect_gathers_every_matching_row_and_takes_the_most_cautious_mode_of_the_changes() -> None:
    runbook = parse_runbook(COLLECT, "collect.yaml")

    decision = decide(runbook, "db_connections", {"db_connection_ratio": 0.95, "db_max_connections": 400})

    assert decision.hit_policy == "collect"
    assert decision.rows == ["cap", "cap-more", "advice"]
    assert decision.rule == "cap+cap-more+advice"
    assert decision.diagnosis == "connection_blowup"
    assert decision.mode == "approve"  # auto + approve → approve; the advice row does not lower it to notify
    assert [(c.kind, c.row, c.params) for c in decision.actions] == [
        ("set_provisioned_concurrency", "cap", {"concurrency": 200.0}),
        ("set_autoscaling_bounds", "cap-more", {"min": 1.0, "max": 160.0}),
        ("advise", "advice", {}),
    ]
    assert decision.rationale == "Cap at 400.\n\nCap harder.\n\nUse RDS Proxy."


def test_collect_with_only_some_rows_matching() -> None:
    runbook = parse_runbook(COLLECT, "collect.yaml")

    decision = decide(runbook, "db_connections", {"db_connection_ratio": 0.85, "db_max_connections": 400})

    assert decision.rows == ["cap", "advice"]
    assert decision.mode == "auto"
    assert [t.matched for t in decision.trace] == [True, False, True]


def test_collect_of_advice_only_rows_is_notify() -> None:
    runbook = parse_runbook(COLLECT, "collect.yaml")

    decision = decide(runbook, "db_connections", {"db_connection_ratio": 0.85})  # no max: the cap rows skip

    assert decision.rows == ["advice"]
    assert decision.mode == "notify"
    assert decision.trace[0].note == "a parameter needs the unknown fact 'db_max_connections'"


def test_collect_tables_may_repeat_conditions_without_being_unreachable() -> None:
    runbook = parse_runbook(COLLECT, "collect.yaml")

    assert [row.id for row in runbook.tables["db_connections"].rows] == ["cap", "cap-more", "advice"]


# --- scope and layers -----------------------------------------------------------------------------

TEAM = doc(
    """\
tables:
  spillover:
    rows:
      - id: payments-floor
        scope: {functions: ["checkout*"], tags: {team: payments}}
        when: ["spillover_invocations > 0", "not has_autoscaling"]
        diagnosis: pc_floor_too_low
        mode: auto
        actions:
          - kind: set_provisioned_concurrency
            params: {concurrency: "ceil(peak_concurrency * 1.5)"}
        rationale: Payments keeps 50% headroom.
""",
    name="payments",
    extends="base",
)


def test_an_override_layer_puts_its_rows_first_and_they_take_precedence_in_scope() -> None:
    runbook = layer(parse_runbook(BASE, "base.yaml"), TEAM, "payments.yaml")

    assert [row.id for row in runbook.tables["spillover"].rows] == ["payments-floor", "floor", "advice"]
    assert runbook.layers == ("base.yaml", "payments.yaml")
    assert runbook.source == "base.yaml + payments.yaml"
    decision = decide(runbook, "spillover", spill(), {"team": "payments"})
    assert (decision.row, decision.mode, decision.actions[0].params) == ("payments-floor", "auto", {"concurrency": 75})


def test_a_scoped_row_does_not_apply_out_of_scope_and_the_trace_says_so() -> None:
    runbook = layer(parse_runbook(BASE, "base.yaml"), TEAM, "payments.yaml")

    other_team = decide(runbook, "spillover", spill(), {"team": "search"})
    other_function = decide(runbook, "spillover", spill(function_name="search"), {"team": "payments"})

    assert other_team.row == other_function.row == "floor"
    assert other_team.trace[0].note == "out of scope (functions checkout*; tags team=payments)"


def test_an_override_row_with_a_base_id_replaces_it_and_disable_drops_rows() -> None:
    override = doc(
        """\
    tables:
      spillover:
        disable: [advice]
        rows:
          - id: floor
            when: ["spillover_invocations > 10"]
            diagnosis: pc_floor_too_low
            mode: notify
            actions: [{kind: advise}]
            rationale: We raise floors by hand.
    """,
        name="ours",
        extends="base",
    )

    runbook = layer(parse_runbook(BASE, "base.yaml"), override, "ours.yaml")

    rows = runbook.tables["spillover"].rows
    assert [row.id for row in rows] == ["floor"]
    assert rows[0].where == "ours.yaml:8"
    assert decide(runbook, "spillover", spill()).mode == "notify"


def test_an_override_may_add_a_table_the_base_lacks() -> None:
    override = doc(
        """\
    tables:
      throttles:
        rows:
          - id: advise-only
            when: ["throttles > 0"]
            diagnosis: unexplained
            mode: notify
            actions: [{kind: advise}]
            rationale: Call the owner.
    """,
        name="ours",
        extends="base",
    )

    runbook = layer(parse_runbook(BASE, "base.yaml"), override, "ours.yaml")

    assert set(runbook.tables) == {"spillover", "throttles"}
    assert decide(runbook, "throttles", {"throttles": 3.0}).row == "advise-only"


@pytest.mark.parametrize(
    ("extends", "problem"),
    [("other", "an override must say `extends: base` (got 'other')"), (None, "(got None)")],
)
def test_an_override_must_name_the_runbook_it_extends(extends: str | None, problem: str) -> None:
    override = doc("tables: {}\n", name="ours", extends=extends)

    with pytest.raises(RunbookError) as raised:
        layer(parse_runbook(BASE, "base.yaml"), override, "ours.yaml")

    assert problem in str(raised.value)
    assert str(raised.value).startswith("ours.yaml")


def test_disabling_a_row_the_base_does_not_have_is_refused_with_its_line() -> None:
    override = doc("tables:\n  spillover:\n    disable: [floor, nope]\n", name="ours", extends="base")

    with pytest.raises(RunbookError) as raised:
        layer(parse_runbook(BASE, "base.yaml"), override, "ours.yaml")

    assert str(raised.value) == (
        "ours.yaml:6: tables.spillover.disable.1: no row 'nope' in the spillover table of base to disable"
    )


def test_a_base_runbook_may_not_extend_or_disable() -> None:
    with pytest.raises(RunbookError, match="needs a base runbook to layer on"):
        parse_runbook(doc("tables: {}\n", extends="x"), "x.yaml")
    with pytest.raises(RunbookError, match="`disable` belongs in an override"):
        parse_runbook(BASE.replace("    rows:\n", "    disable: [x]\n    rows:\n", 1), "x.yaml")


def test_load_runbook_layers_override_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "team.yaml").write_text(TEAM)

    runbook = load_runbook(tmp_path / "base.yaml", [tmp_path / "team.yaml"])

    assert runbook.layers == (str(tmp_path / "base.yaml"), str(tmp_path / "team.yaml"))


# --- unreachable rows and mode ceilings -----------------------------------------------------------


def test_a_row_shadowed_by_an_earlier_row_is_refused_as_unreachable() -> None:
    shadowed = BASE.replace('when: ["spillover_invocations > 0", "not has_autoscaling"]',
                            'when: ["spillover_invocations > 0"]').replace(
        'when: ["spillover_invocations > 0"]\n        diagnosis: unexplained',
        'when: ["spillover_invocations  >  0", "peak_concurrency > 1"]\n        diagnosis: unexplained')  # fmt: skip

    with pytest.raises(RunbookError) as raised:
        parse_runbook(shadowed.replace('params: {concurrency: "ceil(peak_concurrency * 1.2)"}',
                                       "params: {concurrency: 10}"), "shadow.yaml")  # fmt: skip

    error = raised.value
    assert (error.table, error.row) == ("spillover", "advice")
    assert str(error).startswith("shadow.yaml:14: tables.spillover.rows.advice.when: unreachable: row 'floor' "
                                 "(shadow.yaml:6) matches whenever this row does")  # fmt: skip


def test_an_override_row_that_shadows_base_rows_is_refused() -> None:
    greedy = doc(
        """\
    tables:
      spillover:
        rows:
          - id: everything
            when: ["spillover_invocations > 0"]
            diagnosis: unexplained
            mode: notify
            actions: [{kind: advise}]
            rationale: Mine.
    """,
        name="ours",
        extends="base",
    )

    with pytest.raises(
        RunbookError,
        match=re.escape("base.yaml:6: tables.spillover.rows.floor.when: unreachable: row 'everything' (ours.yaml:7)"),
    ):
        layer(parse_runbook(BASE, "base.yaml"), greedy, "ours.yaml")


class _Cautious(Action):
    kind: ClassVar[str] = "set_memory"
    params: ClassVar[tuple[str, ...]] = ("memory_mb",)
    max_mode: ClassVar[str] = "approve"

    def plan(self, target: Any, params: dict[str, Any], facts: Any) -> list[PlannedAction]:
        return []


def test_a_row_more_autonomous_than_its_action_allows_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry(), "set_memory", _Cautious())
    text = doc("""\
    tables:
      p99_latency:
        rows:
          - id: memory
            when: ["memory_mb < 1769"]
            diagnosis: cpu_starved
            mode: auto
            actions:
              - kind: set_memory
                params: {memory_mb: "memory_mb * 2"}
            rationale: More CPU.
    """)

    with pytest.raises(RunbookError) as raised:
        parse_runbook(text, "mem.yaml")

    assert str(raised.value) == (
        "mem.yaml:9: tables.p99_latency.rows.memory.mode: set_memory is never applied in mode auto: its most "
        "autonomous mode is approve"
    )
    assert parse_runbook(text.replace("mode: auto", "mode: approve"), "mem.yaml").tables["p99_latency"]


# --- examples -------------------------------------------------------------------------------------

EXAMPLES = BASE + textwrap.dedent("""\
examples:
  - name: floor
    signal: spillover
    facts: {spillover_invocations: 10, has_autoscaling: false, peak_concurrency: 40}
    expect: {row: floor, diagnosis: pc_floor_too_low, mode: approve, actions: [set_provisioned_concurrency],
             params: {set_provisioned_concurrency: {concurrency: 48}}}
  - name: wrong on purpose
    signal: spillover
    facts: {spillover_invocations: 10, has_autoscaling: true}
    expect: {row: floor, params: {set_provisioned_concurrency: {concurrency: 1}}}
  - name: typos are caught
    signal: spillover
    facts: {spilover_invocations: 10, peak_concurrency: "many"}
    expect: {matched: false}
  - name: nothing matches
    signal: spillover
    facts: {spillover_invocations: 0}
    expect: {matched: false}
""")


def test_examples_run_and_report_each_difference() -> None:
    results = {r.name: r for r in run_examples(parse_runbook(EXAMPLES, "ex.yaml"))}

    assert results["floor"].passed
    assert results["nothing matches"].passed
    assert results["wrong on purpose"].problems == (
        "row is 'advice', expected 'floor'",
        "no set_provisioned_concurrency action to check params of",
    )
    assert results["typos are caught"].problems == (
        "unknown fact 'spilover_invocations'",
        "fact 'peak_concurrency' must be a float, got 'many'",
    )
    assert results["floor"].where == "ex.yaml:21"


def test_the_shipped_runbook_examples_all_pass() -> None:
    results = run_examples(load_runbook(ROOT / "runbooks" / "lambda-latency.yaml"))

    assert len(results) >= 15
    assert [(r.name, r.problems) for r in results if not r.passed] == []


# --- JSON Schema ----------------------------------------------------------------------------------


def test_the_schema_enumerates_the_vocabulary() -> None:
    schema = runbook_schema()

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    action = schema["$defs"]["ActionDoc"]["properties"]["kind"]
    assert "set_provisioned_concurrency" in action["enum"] and "advise" in action["enum"]
    assert "connection_blowup" in schema["$defs"]["RowDoc"]["properties"]["diagnosis"]["enum"]
    assert set(schema["properties"]["tables"]["propertyNames"]["enum"]) == {
        "throttles", "spillover", "p99_latency", "db_connections",
    }  # fmt: skip


def test_the_shipped_schema_file_is_up_to_date() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == runbook_schema(), "run: medic runbook schema > " + str(SCHEMA_FILE)


# --- the last good runbook ------------------------------------------------------------------------


def _touch_later(path: Path, text: str) -> None:
    before = path.stat().st_mtime
    path.write_text(text)
    os.utime(path, (before + 10, before + 10))


def test_a_running_medic_keeps_its_last_good_runbook_when_a_change_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runbook.yaml"
    path.write_text(BASE)
    refusals: list[RunbookError] = []
    store = RunbookStore(path, on_refused=refusals.append)
    good = store.current()

    _touch_later(path, BASE.replace("pc_floor_too_low", "pc_floor_too_loww"))

    assert store.current() is good
    assert len(refusals) == 1 and "unknown diagnosis 'pc_floor_too_loww'" in str(refusals[0])
    assert store.current() is good  # refused once, not at every call

    _touch_later(path, BASE.replace("plus 20%", "plus a fifth"))
    assert store.current() is not good
    assert "a fifth" in store.current().tables["spillover"].rows[0].rationale


def test_an_invalid_override_at_start_fails_closed_every_decision_advice_saying_why(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "team.yaml").write_text(TEAM.replace("mode: auto", "mode: sometimes"))
    refusals: list[RunbookError] = []
    store = RunbookStore(tmp_path / "base.yaml", [tmp_path / "team.yaml"], refusals.append)

    runbook = store.current()

    assert runbook.layers == (str(tmp_path / "base.yaml"),) and store.notify_only
    assert "team.yaml" in str(refusals[0]) and runbook.refused == str(refusals[0])
    decision = decide(runbook, "spillover", spill())
    assert (decision.row, decision.mode) == ("floor", "notify"), "the base's approve row, as advice"
    assert decision.rationale.startswith(f":warning: Advice only: a runbook override was refused ({refusals[0]})")
    assert decision.rationale.endswith("Raise the floor to 50 plus 20%.")
    assert "notify-only: a runbook override was refused" in decision.reason
    unmatched = decide(runbook, "spillover", spill(spillover_invocations=0.0))
    assert unmatched.mode is None and "Advice only" in unmatched.reason
    assert store.current() is runbook and len(refusals) == 1, "refused once, not at every call"


def test_a_failing_closed_medic_takes_the_fixed_override_and_reports_a_new_refusal(tmp_path: Path) -> None:
    base, team = tmp_path / "base.yaml", tmp_path / "team.yaml"
    base.write_text(BASE)
    team.write_text(TEAM.replace("mode: auto", "mode: sometimes"))
    refusals: list[RunbookError] = []
    store = RunbookStore(base, [team], refusals.append)
    assert store.current().refused

    _touch_later(team, TEAM.replace("mode: auto", "mode: never"))
    assert "team.yaml" in store.current().refused and len(refusals) == 2, "still closed, with the newer error"
    _touch_later(base, BASE.replace("plus 20%", "plus a fifth"))
    assert "a fifth" in store.current().tables["spillover"].rows[0].rationale, "closed on the base as it is now"
    assert store.current().refused

    _touch_later(team, TEAM)
    fixed = store.current()
    assert not fixed.refused and not store.notify_only and len(fixed.layers) == 2
    assert decide(fixed, "spillover", spill(), {"team": "payments"}).mode == "auto"


def test_an_invalid_base_under_a_failing_closed_runbook_keeps_the_last_base(tmp_path: Path) -> None:
    base, team = tmp_path / "base.yaml", tmp_path / "team.yaml"
    base.write_text(BASE)
    team.write_text("runbook: team\nversion: 1\nextends: nothing\n")
    store = RunbookStore(base, [team])
    closed = store.current()

    _touch_later(base, "runbook: x\n")

    assert store.current().tables == closed.tables and store.notify_only


def test_an_invalid_base_at_start_raises(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("runbook: x\n")

    with pytest.raises(RunbookError):
        RunbookStore(tmp_path / "base.yaml").current()


# --- the explaining trace -------------------------------------------------------------------------


def test_the_trace_names_the_failing_condition_and_its_fact_values() -> None:
    runbook: Runbook = parse_runbook(BASE, "base.yaml")

    decision = decide(runbook, "spillover", spill(has_autoscaling=True))

    assert trace_lines(decision) == [
        "✘ floor: `not has_autoscaling` is false (has_autoscaling=True)",
        "✔ advice: matched: spillover_invocations > 0",
    ]
    text = explain_decision(decision, spill(has_autoscaling=True), {"has_autoscaling": "application-autoscaling"})
    assert "verdict: unexplained by row advice, mode notify" in text
    assert "      false   not has_autoscaling   (has_autoscaling=True)" in text
    assert "  has_autoscaling = True   ← application-autoscaling" in text


def test_the_trace_says_which_fact_was_unknown() -> None:
    runbook = parse_runbook(BASE, "base.yaml")

    decision = decide(runbook, "spillover", {"spillover_invocations": 5.0})

    assert trace_lines(decision)[0] == (
        "✘ floor: `not has_autoscaling` is unknown (has_autoscaling=unknown); fact 'has_autoscaling' is unknown"
    )
    assert decision.missing_facts == ["has_autoscaling"]


def test_every_fact_is_documented_for_runbook_authors() -> None:
    from medic.facts import FACT_TYPES

    guide = (ROOT / "docs" / "RUNBOOK.md").read_text()

    assert [name for name in FACT_TYPES if f"`{name}`" not in guide] == []
