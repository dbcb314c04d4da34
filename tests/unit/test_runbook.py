"""The runbook: YAML decision tables, validated at load, evaluated per alarm with an explaining trace.

The first half walks the shipped `runbooks/lambda-latency.yaml` spillover table row by row, with the
facts Medic would have collected for `checkout:live`. The second half feeds the loader small broken
runbooks and checks that each error points at the file, line, table, row and field to fix.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import pytest

from medic.actions import ACTION_KINDS
from medic.config import DEFAULT_RUNBOOK
from medic.errors import InputError, RunbookError
from medic.facts import Facts
from medic.planning.runbook import Runbook, decide, load_runbook, parse_runbook
from medic.planning.verdict import ActionCall, Decision, RowTrace

RUNBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "lambda-latency.yaml"
SPILLOVER_ROWS = [
    "pc-not-ready",
    "autoscaling-max-reached",
    "autoscaling-too-slow",
    "floor-too-low",
    "spillover-unexplained",
    "pc-idle-flat-floor",
]


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return load_runbook(RUNBOOK)


def checkout_live(**changes: Any) -> dict[str, Any]:
    """Facts about `checkout:live` during a spillover alarm: a READY pool of 50 pinned at its autoscaling max,
    demand peaking at 80.4 concurrent executions, 340 invocations spilled over in 15 minutes."""
    facts = Facts(
        function_name="checkout",
        qualifier="live",
        tags={"medic:managed": "true"},
        managed=True,
        has_reserved_concurrency=False,
        account_limit=1000,
        unreserved_concurrency=900,
        pc_requested=50,
        pc_allocated=50,
        pc_available=0,
        pc_status="READY",
        has_autoscaling=True,
        autoscaling_min=10,
        autoscaling_max=50,
        target_utilization=0.7,
        spillover_invocations=340.0,
        peak_concurrency=80.4,
        pc_utilization_max=1.0,
    )
    return {**facts.values(), **changes}


def fixed_floor(**changes: Any) -> dict[str, Any]:
    """The same function with a fixed provisioned-concurrency floor of 20 and no autoscaling."""
    floor: dict[str, Any] = {
        "has_autoscaling": False, "autoscaling_min": None, "autoscaling_max": None, "target_utilization": None,
        "pc_requested": 20, "pc_allocated": 20,
    }  # fmt: skip
    return checkout_live(**{**floor, **changes})


def row_trace(decision: Decision, row: str) -> RowTrace:
    return next(trace for trace in decision.trace if trace.row == row)


def failing_condition(trace: RowTrace) -> tuple[str, str]:
    """The last condition evaluated on a row that did not match, and its result."""
    assert not trace.matched
    last = trace.conditions[-1]
    return last.expression, last.result


# --- the shipped runbook --------------------------------------------------------------------------


def test_the_shipped_runbook_loads_and_is_the_default(runbook: Runbook) -> None:
    assert DEFAULT_RUNBOOK.resolve() == RUNBOOK
    assert runbook.name == "lambda-latency"
    assert runbook.version == 2
    assert runbook.source == str(RUNBOOK)
    spillover = runbook.tables["spillover"]
    assert spillover.hit_policy == "first"
    assert [row.id for row in spillover.rows] == SPILLOVER_ROWS


# --- the spillover table, one scenario per row ----------------------------------------------------


def test_pc_not_ready_only_advises_while_the_pool_is_still_allocating(runbook: Runbook) -> None:
    facts = checkout_live(pc_status="IN_PROGRESS", pc_allocated=20, pc_requested=50, peak_concurrency=80.0)

    decision = decide(runbook, "spillover", facts)

    assert decision.matched
    assert (decision.row, decision.diagnosis, decision.mode) == ("pc-not-ready", "pc_not_ready", "notify")
    assert decision.actions == [ActionCall(kind="advise", params={}, row=decision.row or "")]
    assert decision.reason == "row 'pc-not-ready' matched"
    assert "Provisioned concurrency on checkout:live is IN_PROGRESS (20 of 50 allocated)" in decision.rationale
    assert "Check the status reason (unknown)" in decision.rationale
    assert [trace.row for trace in decision.trace] == ["pc-not-ready"]
    assert decision.trace[0].matched


@pytest.mark.parametrize(
    ("peak", "autoscaling_min", "autoscaling_max"),
    [(80.4, 10, 50), (80.0, 10, 50), (50.5, 50, 50), (230.0, 120, 200)],
)
def test_autoscaling_max_reached_raises_min_to_the_peak_and_max_to_peak_plus_25_percent(
    runbook: Runbook, peak: float, autoscaling_min: int, autoscaling_max: int
) -> None:
    facts = checkout_live(
        peak_concurrency=peak, autoscaling_min=autoscaling_min, autoscaling_max=autoscaling_max,
        pc_allocated=autoscaling_max, pc_requested=autoscaling_max,
    )  # fmt: skip

    decision = decide(runbook, "spillover", facts)

    assert (decision.row, decision.diagnosis, decision.mode) == (
        "autoscaling-max-reached", "autoscaling_max_too_low", "approve",
    )  # fmt: skip
    expected_min = max(autoscaling_min, math.ceil(peak))
    expected_max = math.ceil(peak * 1.25)
    assert decision.actions == [
        ActionCall(
            kind="set_autoscaling_bounds", params={"min": expected_min, "max": expected_max}, row=decision.row or ""
        )
    ]
    assert decision.verify.expect == "spillover alarm back to OK"
    assert decision.verify.rollback_on_failure is False


def test_autoscaling_max_reached_explains_itself_with_the_facts(runbook: Runbook) -> None:
    decision = decide(runbook, "spillover", checkout_live())

    assert decision.actions == [
        ActionCall(kind="set_autoscaling_bounds", params={"min": 81, "max": 101}, row=decision.row or "")
    ]
    assert decision.rationale.startswith(
        "Target tracking is pinned at its maximum (50) while demand on checkout:live peaked at 80.4 concurrent "
        "executions, so 340 invocations spilled over"
    )
    assert "{" not in decision.rationale


def test_autoscaling_max_reached_trace_says_why_pc_not_ready_did_not_match(runbook: Runbook) -> None:
    decision = decide(runbook, "spillover", checkout_live())

    assert [(trace.row, trace.matched) for trace in decision.trace] == [
        ("pc-not-ready", False), ("autoscaling-max-reached", True),
    ]  # fmt: skip
    assert failing_condition(decision.trace[0]) == ("pc_status != 'READY'", "false")
    assert decision.trace[0].conditions[-1].facts == {"pc_status": "READY"}
    assert [condition.result for condition in decision.trace[1].conditions] == ["true"] * 4


@pytest.mark.parametrize(("peak", "floor"), [(60.0, 72), (61.5, 74), (21.0, 26)])
def test_floor_too_low_raises_a_fixed_floor_to_the_peak_plus_20_percent(
    runbook: Runbook, peak: float, floor: int
) -> None:
    decision = decide(runbook, "spillover", fixed_floor(peak_concurrency=peak))

    assert (decision.row, decision.diagnosis, decision.mode) == ("floor-too-low", "pc_floor_too_low", "approve")
    assert decision.actions == [
        ActionCall(kind="set_provisioned_concurrency", params={"concurrency": floor}, row=decision.row or "")
    ]
    assert floor == math.ceil(peak * 1.2)
    assert "has a fixed provisioned-concurrency floor of 20 and no autoscaling" in decision.rationale


def test_floor_too_low_trace_lists_the_rows_above_it_as_not_matched(runbook: Runbook) -> None:
    decision = decide(runbook, "spillover", fixed_floor(peak_concurrency=60.0))

    assert [(trace.row, trace.matched) for trace in decision.trace] == [
        ("pc-not-ready", False), ("autoscaling-max-reached", False), ("autoscaling-too-slow", False),
        ("floor-too-low", True),
    ]  # fmt: skip
    assert failing_condition(row_trace(decision, "pc-not-ready")) == ("pc_status != 'READY'", "false")
    autoscaling = row_trace(decision, "autoscaling-max-reached")
    assert failing_condition(autoscaling) == ("has_autoscaling", "false")
    assert len(autoscaling.conditions) == 1, "rows stop at the first condition that does not hold"


def test_spillover_unexplained_when_the_peak_fits_in_the_fixed_floor(runbook: Runbook) -> None:
    decision = decide(runbook, "spillover", fixed_floor(peak_concurrency=18.0, spillover_invocations=12.0))

    assert (decision.row, decision.diagnosis, decision.mode) == ("spillover-unexplained", "unexplained", "notify")
    assert decision.actions == [ActionCall(kind="advise", params={}, row=decision.row or "")]
    assert decision.rationale.startswith("12 invocations spilled over on checkout:live, but the peak concurrency (18)")
    assert [trace.row for trace in decision.trace] == SPILLOVER_ROWS[:5]  # first match: the rest is not tried
    assert failing_condition(row_trace(decision, "floor-too-low")) == ("peak_concurrency > pc_allocated", "false")


def test_autoscaling_below_its_max_that_did_not_keep_up_raises_the_floor(runbook: Runbook) -> None:
    """Target tracking had room (30 of a max of 50) but demand (80) stepped faster than it scales out: the floor is
    too low for the step (not unexplained, as it was before target tracking's reaction time was taken into
    account)."""
    decision = decide(runbook, "spillover", checkout_live(pc_allocated=30, pc_requested=30))

    assert (decision.row, decision.diagnosis) == ("autoscaling-too-slow", "pc_floor_too_low")
    autoscaling = row_trace(decision, "autoscaling-max-reached")
    assert failing_condition(autoscaling) == ("pc_allocated >= autoscaling_max", "false")
    [call] = decision.actions
    assert call.kind == "set_autoscaling_bounds" and call.params["min"] >= 80


def test_no_spillover_matches_no_row(runbook: Runbook) -> None:
    decision = decide(runbook, "spillover", checkout_live(spillover_invocations=0.0))

    assert not decision.matched
    assert decision.table == "spillover"
    assert (decision.row, decision.diagnosis, decision.mode, decision.actions) == (None, None, None, [])
    assert decision.reason == "no row of table 'spillover' matched"
    assert [(trace.row, trace.matched) for trace in decision.trace] == [(row, False) for row in SPILLOVER_ROWS]


# --- unknown facts --------------------------------------------------------------------------------


def test_an_unknown_fact_makes_the_row_not_match_and_the_trace_names_it(runbook: Runbook) -> None:
    decision = decide(runbook, "spillover", checkout_live(has_autoscaling=None))

    assert decision.row == "spillover-unexplained"
    autoscaling = row_trace(decision, "autoscaling-max-reached")
    assert autoscaling.note == "fact 'has_autoscaling' is unknown"
    assert autoscaling.conditions[-1].expression == "has_autoscaling"
    assert autoscaling.conditions[-1].result == "unknown"
    assert autoscaling.conditions[-1].facts == {"has_autoscaling": None}
    floor = row_trace(decision, "floor-too-low")
    assert floor.note == "fact 'has_autoscaling' is unknown"
    assert failing_condition(floor) == ("not has_autoscaling", "unknown")


def test_an_unknown_peak_never_raises_a_floor(runbook: Runbook) -> None:
    decision = decide(runbook, "spillover", fixed_floor(peak_concurrency=None))

    assert decision.row == "spillover-unexplained"
    assert row_trace(decision, "floor-too-low").note == "fact 'peak_concurrency' is unknown"
    assert "the peak concurrency (unknown)" in decision.rationale


def test_an_unknown_pc_status_is_not_read_as_not_ready(runbook: Runbook) -> None:
    decision = decide(runbook, "spillover", fixed_floor(pc_status=None, peak_concurrency=60.0))

    assert row_trace(decision, "pc-not-ready").note == "fact 'pc_status' is unknown"
    assert decision.row == "floor-too-low"


# --- signals without a table ----------------------------------------------------------------------


def test_the_shipped_runbook_has_a_table_for_every_signal(runbook: Runbook) -> None:
    assert sorted(runbook.tables) == ["db_connections", "p99_latency", "spillover", "throttles"]
    assert runbook.tables["db_connections"].hit_policy == "collect"


@pytest.mark.parametrize("signal", ["unknown", "cold_feet"])
def test_a_signal_without_a_table_gets_a_decision_that_says_so(runbook: Runbook, signal: str) -> None:
    decision = decide(runbook, signal, checkout_live())

    assert not decision.matched
    assert decision.signal == signal
    assert decision.table is None
    assert decision.trace == []
    assert decision.reason == f"runbook 'lambda-latency' has no table for signal {signal!r}"


# --- small runbooks: how rows decide --------------------------------------------------------------

HEADER = """\
runbook: test
version: 1
tables:
  spillover:
    rows:
"""


def runbook_yaml(rows: str) -> str:
    """A runbook with one spillover table made of `rows` (YAML list items, written flush left)."""
    return HEADER + textwrap.indent(textwrap.dedent(rows), "      ")


def test_a_parameter_that_needs_an_unknown_fact_skips_the_row_with_a_note() -> None:
    runbook = parse_runbook(
        runbook_yaml("""\
        - id: bounds
          when: ["spillover_invocations > 0"]
          diagnosis: autoscaling_max_too_low
          mode: approve
          actions:
            - kind: set_autoscaling_bounds
              params: {min: "autoscaling_min", max: "ceil(peak_concurrency)"}
          rationale: Raise the bounds.
        - id: advice
          when: ["spillover_invocations > 0"]
          diagnosis: unexplained
          mode: notify
          actions: [{kind: advise}]
          rationale: Look at the graphs.
        """)
    )

    decision = decide(runbook, "spillover", fixed_floor())

    assert decision.row == "advice"
    bounds = row_trace(decision, "bounds")
    assert not bounds.matched
    assert bounds.note == "a parameter needs the unknown fact 'autoscaling_min'"


def test_arithmetic_that_fails_on_the_facts_skips_the_row_with_a_note() -> None:
    runbook = parse_runbook(
        runbook_yaml("""\
        - id: ratio
          when: ["spillover_invocations / pc_allocated > 1"]
          diagnosis: pc_floor_too_low
          mode: notify
          actions: [{kind: advise}]
          rationale: Too much spillover per provisioned execution.
        - id: scaled
          when: ["spillover_invocations > 0"]
          diagnosis: pc_floor_too_low
          mode: approve
          actions:
            - kind: set_provisioned_concurrency
              params: {concurrency: "peak_concurrency / pc_available"}
          rationale: Scale.
        """)
    )

    decision = decide(runbook, "spillover", fixed_floor(pc_allocated=0, pc_available=0))

    assert not decision.matched
    assert row_trace(decision, "ratio").note.startswith("condition could not be evaluated: ")
    assert row_trace(decision, "ratio").conditions[-1].result == "unknown"
    assert row_trace(decision, "scaled").note.startswith("a parameter could not be computed: ")


# --- invalid runbooks: every error points at file, line, table, row and field --------------------

FLOOR_ROW = """\
- id: floor
  when:
    - "spillover_invocations > 0"
  diagnosis: pc_floor_too_low
  mode: approve
  actions:
    - kind: set_provisioned_concurrency
      params:
        concurrency: "ceil(peak_concurrency * 1.2)"
  rationale: Raise the floor.
"""
# Line numbers of FLOOR_ROW's parts once under HEADER (5 lines).
ID_LINE, WHEN_0_LINE, DIAGNOSIS_LINE, MODE_LINE, ACTION_0_LINE, PARAMS_LINE, CONCURRENCY_LINE = 6, 8, 9, 10, 12, 13, 14


def floor_row(**replace: str) -> str:
    """FLOOR_ROW with some lines replaced: `floor_row(mode="mode: auto")` swaps the line that starts with `mode:`."""
    lines = FLOOR_ROW.splitlines()
    for key, line in replace.items():
        index = next(i for i, text in enumerate(lines) if text.lstrip(" -").startswith(f"{key}:"))
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip(" -"))]
        lines[index] = indent + line
    return "\n".join(lines) + "\n"


def rejected(rows: str) -> RunbookError:
    with pytest.raises(RunbookError) as raised:
        parse_runbook(runbook_yaml(rows), "bad.yaml")
    return raised.value


def assert_points_at(error: RunbookError, *, line: int, row: str, field: str, problem: str) -> None:
    text = str(error)
    assert text.startswith(f"bad.yaml:{line}: tables.spillover.rows.{row}.{field}: "), text
    assert problem in text
    assert (error.table, error.row) == ("spillover", row)
    assert error.field == f"tables.spillover.rows.{row}.{field}"
    assert error.source == f"bad.yaml:{line}"


def test_the_row_helper_builds_a_valid_runbook() -> None:
    runbook = parse_runbook(runbook_yaml(floor_row()), "good.yaml")

    assert [row.id for row in runbook.tables["spillover"].rows] == ["floor"]


def test_not_yaml_names_the_file_and_line() -> None:
    with pytest.raises(RunbookError) as raised:
        parse_runbook("runbook: test\nversion: 1\ntables: [spillover\n", "bad.yaml")

    error = raised.value
    assert str(error).startswith("bad.yaml:4: (root): not valid YAML: ")
    assert isinstance(error, InputError)


def test_a_document_that_is_not_a_mapping_is_refused_at_the_root() -> None:
    with pytest.raises(RunbookError) as raised:
        parse_runbook("- just\n- a list\n", "bad.yaml")

    assert str(raised.value).startswith("bad.yaml:1: (root): ")
    assert "valid dictionary" in str(raised.value)


def test_an_unknown_field_is_refused() -> None:
    error = rejected(FLOOR_ROW + "  priority: 1\n")

    assert_points_at(error, line=16, row="floor", field="priority", problem="Extra inputs are not permitted")


def test_a_missing_field_is_refused() -> None:
    rows = "\n".join(line for line in FLOOR_ROW.splitlines() if not line.lstrip().startswith("rationale:"))

    error = rejected(rows + "\n")

    assert_points_at(error, line=ID_LINE, row="floor", field="rationale", problem="Field required")


def test_an_invalid_mode_is_refused() -> None:
    error = rejected(floor_row(mode="mode: yolo"))

    assert_points_at(error, line=MODE_LINE, row="floor", field="mode", problem="'auto', 'approve' or 'notify'")


def test_a_table_for_an_unknown_signal_is_refused() -> None:
    with pytest.raises(RunbookError) as raised:
        parse_runbook(runbook_yaml(FLOOR_ROW).replace("spillover:", "latency:"), "bad.yaml")

    error = raised.value
    assert str(error).startswith("bad.yaml:4: tables.latency.")
    assert error.table == "latency"
    assert "'throttles', 'spillover', 'p99_latency' or 'db_connections'" in str(error)


def test_an_unknown_diagnosis_is_refused_with_the_valid_ones() -> None:
    error = rejected(floor_row(diagnosis="diagnosis: pc_too_small"))

    assert_points_at(
        error, line=DIAGNOSIS_LINE, row="floor", field="diagnosis",
        problem="unknown diagnosis 'pc_too_small' for spillover; "
        "valid: autoscaling_max_too_low, pc_floor_too_low, pc_not_ready, pc_overprovisioned, unexplained",
    )  # fmt: skip


def test_an_unknown_action_kind_is_refused_with_the_valid_ones() -> None:
    error = rejected(floor_row(kind="kind: scale_up"))

    text = str(error)
    assert text.startswith(f"bad.yaml:{ACTION_0_LINE}: tables.spillover.rows.floor.actions.0")
    assert (error.table, error.row) == ("spillover", "floor")
    assert "unknown action 'scale_up'; valid: " in text
    assert all(kind in text for kind in ACTION_KINDS)


def test_an_action_of_the_vocabulary_that_is_not_implemented_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from medic.actions import registry

    monkeypatch.delitem(registry(), "set_memory")
    error = rejected(floor_row(kind="kind: set_memory"))

    assert_points_at(
        error, line=ACTION_0_LINE, row="floor", field="actions.0.kind",
        problem="action 'set_memory' is in the vocabulary but not implemented yet; implemented: advise, ",
    )  # fmt: skip


def test_every_action_of_the_vocabulary_is_implemented() -> None:
    from medic.actions import registry

    assert sorted(registry()) == sorted(ACTION_KINDS)


def test_wrong_params_for_an_action_are_refused() -> None:
    error = rejected(floor_row(concurrency='count: "ceil(peak_concurrency * 1.2)"'))

    assert_points_at(
        error, line=PARAMS_LINE, row="floor", field="actions.0.params",
        problem="set_provisioned_concurrency takes params ['concurrency']; missing ['concurrency'], "
        "unexpected ['count']",
    )  # fmt: skip


def test_params_on_advise_are_refused() -> None:
    error = rejected("""\
    - id: advice
      when: ["spillover_invocations > 0"]
      diagnosis: unexplained
      mode: notify
      actions:
        - kind: advise
          params: {note: "look at the graphs"}
      rationale: Look at the graphs.
    """)

    assert_points_at(
        error, line=12, row="advice", field="actions.0.params",
        problem="advise takes params none; missing [], unexpected ['note']",
    )  # fmt: skip


def test_an_expression_syntax_error_is_refused() -> None:
    error = rejected(FLOOR_ROW.replace('"spillover_invocations > 0"', '"spillover_invocations >"'))

    assert_points_at(
        error, line=WHEN_0_LINE, row="floor", field="when.0",
        problem="syntax error at column",
    )  # fmt: skip
    assert "in 'spillover_invocations >'" in str(error)


def test_an_unknown_fact_in_a_condition_is_refused() -> None:
    error = rejected(FLOOR_ROW.replace('"spillover_invocations > 0"', '"spillovers > 0"'))

    assert_points_at(error, line=WHEN_0_LINE, row="floor", field="when.0", problem="unknown fact 'spillovers'")


def test_an_unknown_fact_in_a_parameter_is_refused() -> None:
    error = rejected(floor_row(concurrency='concurrency: "ceil(peak * 1.2)"'))

    assert_points_at(
        error, line=CONCURRENCY_LINE, row="floor", field="actions.0.params.concurrency",
        problem="unknown fact 'peak'",
    )  # fmt: skip


def test_a_condition_that_is_not_true_or_false_is_refused() -> None:
    error = rejected(FLOOR_ROW.replace('"spillover_invocations > 0"', '"spillover_invocations"'))

    assert_points_at(
        error, line=WHEN_0_LINE, row="floor", field="when.0",
        problem="a condition must be true/false, got a number: 'spillover_invocations'",
    )  # fmt: skip


@pytest.mark.parametrize(("value", "kind"), [('"pc_status"', "str"), ('"peak_concurrency > 10"', "bool")])
def test_a_parameter_that_is_not_a_number_is_refused(value: str, kind: str) -> None:
    error = rejected(floor_row(concurrency=f"concurrency: {value}"))

    assert_points_at(
        error, line=CONCURRENCY_LINE, row="floor", field="actions.0.params.concurrency",
        problem=f"parameter concurrency must be a number, got a {kind}",
    )  # fmt: skip


def test_a_duplicate_row_id_is_refused_at_the_second_row() -> None:
    error = rejected(FLOOR_ROW + FLOOR_ROW)

    assert_points_at(error, line=ID_LINE + 10, row="floor", field="id", problem="duplicate row id 'floor'")


def test_a_row_id_must_be_a_slug() -> None:
    error = rejected(floor_row(id="id: Floor Too Low"))

    assert_points_at(error, line=ID_LINE, row="Floor Too Low", field="id", problem="String should match pattern")


def test_an_advise_only_row_in_mode_auto_is_refused() -> None:
    error = rejected("""\
    - id: advice
      when: ["spillover_invocations > 0"]
      diagnosis: unexplained
      mode: auto
      actions: [{kind: advise}]
      rationale: Look at the graphs.
    """)

    assert_points_at(
        error, line=9, row="advice", field="mode",
        problem="an advise-only row has nothing to apply: use mode notify",
    )  # fmt: skip


def test_a_row_of_several_advise_actions_in_mode_auto_is_refused() -> None:
    with pytest.raises(RunbookError, match="advise-only"):
        parse_runbook(
            runbook_yaml("""\
            - id: advice
              when: ["spillover_invocations > 0"]
              diagnosis: unexplained
              mode: auto
              actions: [{kind: advise}, {kind: advise}]
              rationale: Look at the graphs.
            """),
            "bad.yaml",
        )


def test_advise_next_to_a_change_may_run_in_mode_auto() -> None:
    runbook = parse_runbook(
        runbook_yaml("""\
        - id: floor
          when: ["spillover_invocations > 0"]
          diagnosis: pc_floor_too_low
          mode: auto
          actions:
            - kind: advise
            - kind: set_provisioned_concurrency
              params: {concurrency: "ceil(peak_concurrency * 1.2)"}
          rationale: Raise the floor.
        """)
    )

    row = runbook.tables["spillover"].rows[0]
    assert row.mode == "auto"
    assert [action.kind for action in row.actions] == ["advise", "set_provisioned_concurrency"]


# --- loading files --------------------------------------------------------------------------------


def test_load_runbook_names_the_file_in_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(runbook_yaml(floor_row(diagnosis="diagnosis: pc_too_small")), encoding="utf-8")

    with pytest.raises(RunbookError) as raised:
        load_runbook(path)

    assert str(raised.value).startswith(f"{path}:{DIAGNOSIS_LINE}: tables.spillover.rows.floor.diagnosis: ")


def test_a_missing_runbook_file_is_a_runbook_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(RunbookError) as raised:
        load_runbook(path)

    assert str(raised.value).startswith(f"{path}: (root): cannot read: ")
