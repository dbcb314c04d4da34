"""The runbook's expression language: Python's syntax for arithmetic and comparisons, never `eval`-ed.

What a runbook author may write in `when` and in action parameters, what they may not (and what the
error says), and how an unknown fact stops an evaluation instead of being guessed.
"""

from __future__ import annotations

from typing import Any

import pytest

from medic.planning.expr import ExpressionError, UnknownFact, compile_expression

#: The facts these tests write expressions against (the runbook's real ones are `medic.facts.FACT_TYPES`).
FACTS: dict[str, type] = {
    "peak": float,
    "allocated": int,
    "autoscaling_min": int,
    "status": str,
    "has_autoscaling": bool,
    "managed": bool,
}

WORLD: dict[str, Any] = {
    "peak": 80.4,
    "allocated": 50,
    "autoscaling_min": 10,
    "status": "READY",
    "has_autoscaling": True,
    "managed": False,
}


def evaluate(source: str, **facts: Any) -> Any:
    return compile_expression(source, FACTS).evaluate({**WORLD, **facts})


def error_of(source: str) -> str:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(source, FACTS)
    return str(raised.value)


# --- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("allocated + 5", 55),
        ("allocated - 5", 45),
        ("allocated * 2", 100),
        ("allocated / 4", 12.5),
        ("allocated // 4", 12),
        ("allocated % 7", 1),
        ("-allocated + 1", -49),
        ("(allocated + 10) * 2", 120),
        ("ceil(peak)", 81),
        ("floor(peak)", 80),
        ("round(peak)", 80),
        ("abs(-peak)", 80.4),
        ("ceil(peak * 1.25)", 101),
        ("min(allocated, peak)", 50),
        ("max(autoscaling_min, ceil(peak))", 81),
        ("max(1, 2, 3, 4, 5, 6, 7, 8)", 8),
    ],
)
def test_arithmetic_and_the_allowed_functions(source: str, expected: float) -> None:
    expression = compile_expression(source, FACTS)

    assert expression.kind == "number"
    assert expression.evaluate(WORLD) == pytest.approx(expected)


def test_ceil_of_a_peak_is_the_whole_number_of_executions_the_runbook_asks_for() -> None:
    expression = compile_expression("ceil(peak * 1.2)", FACTS)

    assert expression.evaluate({"peak": 50}) == 60
    assert isinstance(expression.evaluate({"peak": 50}), int)


def test_a_compiled_expression_knows_its_source_and_the_facts_it_reads() -> None:
    expression = compile_expression("  max(autoscaling_min, ceil(peak))  ", FACTS)

    assert expression.source == "max(autoscaling_min, ceil(peak))"
    assert expression.names == frozenset({"autoscaling_min", "peak"})


@pytest.mark.parametrize(("value", "kind"), [(5, "number"), (2.5, "number"), (True, "bool"), (False, "bool")])
def test_a_yaml_scalar_is_a_constant_expression(value: float | bool, kind: str) -> None:
    expression = compile_expression(value, FACTS)

    assert expression.kind == kind
    assert expression.evaluate({}) == value
    assert expression.names == frozenset()


# --- comparisons and logic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("peak > allocated", True),
        ("peak < allocated", False),
        ("allocated >= 50", True),
        ("allocated <= 49", False),
        ("allocated == 50", True),
        ("allocated != 50", False),
        ("status == 'READY'", True),
        ("status != 'READY'", False),
        ("has_autoscaling == true", True),
        ("managed != false", False),
        ("0 < allocated <= 50", True),
        ("0 < allocated < 50", False),
        ("autoscaling_min <= allocated < peak", True),
        ("status in ('READY', 'FAILED')", True),
        ("status in ['IN_PROGRESS', 'FAILED']", False),
        ("status not in ('IN_PROGRESS', 'FAILED')", True),
        ("allocated in (10, 50, 100)", True),
        ("allocated in ()", False),
        ("has_autoscaling and allocated > 0", True),
        ("managed and allocated > 0", False),
        ("managed or allocated > 0", True),
        ("managed or status == 'FAILED'", False),
        ("not managed", True),
        ("not (has_autoscaling and peak > allocated)", False),
        ("true", True),
        ("false or true", True),
    ],
)
def test_comparisons_and_logic(source: str, expected: bool) -> None:
    expression = compile_expression(source, FACTS)

    assert expression.kind == "bool"
    assert expression.evaluate(WORLD) is expected


def test_a_chained_comparison_checks_every_link_not_only_the_last() -> None:
    # 100 < 50 is false even though 50 <= 60 holds: Python's semantics, not (100 < 50) <= 60.
    assert evaluate("allocated < peak <= 100", peak=60) is True
    assert evaluate("allocated < peak <= 100", peak=40) is False
    assert evaluate("allocated < peak <= 100", peak=101) is False


@pytest.mark.parametrize(
    ("source", "expected_kind", "expected"),
    [
        ("allocated if has_autoscaling else 0", "number", 50),
        ("allocated if managed else 0", "number", 0),
        ("'auto' if managed else 'manual'", "str", "manual"),
        ("peak > allocated if has_autoscaling else false", "bool", True),
    ],
)
def test_if_else_picks_a_branch_of_one_kind(source: str, expected_kind: str, expected: Any) -> None:
    expression = compile_expression(source, FACTS)

    assert expression.kind == expected_kind
    assert expression.evaluate(WORLD) == expected


def test_and_or_stop_at_the_first_deciding_operand() -> None:
    """`has_autoscaling and ...` must not need the facts of a branch it never reads."""
    assert evaluate("managed and peak > 0", peak=None) is False
    assert evaluate("has_autoscaling or peak > 0", peak=None) is True


def test_if_else_reads_only_the_chosen_branch() -> None:
    assert evaluate("peak if managed else allocated", peak=None) == 50


# --- type errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("peak + status", "expected a number, got a str: status"),
        ("status * 2", "expected a number, got a str: status"),
        ("peak + has_autoscaling", "expected a number, got a bool: has_autoscaling"),
        ("ceil(status)", "expected a number, got a str: status"),
        ("-status", "expected a number, got a str: status"),
        ("peak > status", "cannot compare a number with a str"),
        ("status == 1", "cannot compare a str with a number"),
        ("has_autoscaling == 1", "cannot compare a bool with a number"),
        ("allocated in ('READY', 'FAILED')", "expected a number, got a str"),
        ("has_autoscaling < managed", "booleans can only be compared with == or !="),
        ("has_autoscaling >= true", "booleans can only be compared with == or !="),
        ("peak and has_autoscaling", "expected a bool, got a number: peak"),
        ("has_autoscaling or status", "expected a bool, got a str: status"),
        ("not peak", "expected a bool, got a number: peak"),
        ("allocated if peak else 0", "expected a bool, got a number: peak"),
        ("allocated if managed else 'none'", "expected a number, got a str"),
    ],
)
def test_type_errors_are_caught_at_compile_time(source: str, problem: str) -> None:
    assert problem in error_of(source)


def test_a_type_error_names_its_column() -> None:
    assert error_of("peak + status").endswith("(column 8)")


# --- unknown names and disallowed syntax ----------------------------------------------------------


def test_an_unknown_fact_name_is_refused_with_its_name_and_column() -> None:
    message = error_of("allocated > 0 and peak_concurency > 10")

    assert "unknown fact 'peak_concurency'" in message
    assert "(column 19)" in message


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("status.lower() == 'ready'", "only these functions are allowed"),
        ("peak.real > 0", "Attribute is not allowed"),
        ("status[0] == 'R'", "Subscript is not allowed"),
        ("(lambda: 1)()", "only these functions are allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[p for p in (1, 2)]", "ListComp is not allowed"),
        ("max(1, (p for p in (1, 2)))", "GeneratorExp is not allowed"),
        ("{p: 1 for p in (1, 2)}", "DictComp is not allowed"),
        ("__import__('os')", "only these functions are allowed: abs, ceil, floor, known, max, min, round"),
        ("eval('1')", "only these functions are allowed"),
        ("len(status)", "only these functions are allowed"),
        ("round(peak, ndigits=1)", "keyword arguments are not allowed"),
        ("max(1, *[1, 2])", "Starred is not allowed"),
        ("(x := 5) > 1", "NamedExpr is not allowed"),
        ("peak ** 2", "operator Pow is not allowed"),
        ("allocated << 1", "operator LShift is not allowed"),
        ("allocated & 1", "operator BitAnd is not allowed"),
        ("~allocated", "unsupported unary operator"),
        ("status is 'READY'", "comparison Is is not allowed"),
        ("status in status", "`in` needs a literal list"),
        ("None", "constant None is not allowed"),
        ("b'bytes'", "is not allowed"),
        ("f'{peak}'", "JoinedStr is not allowed"),
        ("min(peak)", "min() takes 2..8 arguments"),
        ("ceil(peak, 2)", "ceil() takes 1..1 arguments"),
        ("max(1, 2, 3, 4, 5, 6, 7, 8, 9)", "max() takes 2..8 arguments"),
    ],
)
def test_disallowed_syntax_is_refused(source: str, problem: str) -> None:
    assert problem in error_of(source)


def test_a_syntax_error_is_an_expression_error_with_its_column() -> None:
    message = error_of("peak >")

    assert message.startswith("syntax error at column")


def test_statements_are_not_expressions() -> None:
    assert "syntax error" in error_of("import os")


@pytest.mark.parametrize("source", ["", "   ", "\n\t"])
def test_an_empty_expression_is_refused(source: str) -> None:
    assert error_of(source) == "empty expression"


def test_an_expression_longer_than_500_characters_is_refused() -> None:
    longest = " + ".join(["peak"] * 71)  # 71 * 4 + 70 * 3 = 494 characters
    assert len(longest) <= 500
    compile_expression(longest, FACTS)

    too_long = longest + " + peak"
    assert len(too_long) > 500
    assert error_of(too_long) == "expression longer than 500 characters"


def test_a_fact_of_a_type_expressions_cannot_hold_is_refused() -> None:
    with pytest.raises(ExpressionError, match="facts of type dict cannot be used"):
        compile_expression("tags == 'x'", {"tags": dict})


# --- evaluation: unknown facts --------------------------------------------------------------------


@pytest.mark.parametrize("env", [{"peak": None}, {}], ids=["none", "absent"])
def test_an_unknown_fact_stops_the_evaluation_and_is_named(env: dict[str, Any]) -> None:
    expression = compile_expression("ceil(peak * 1.2)", FACTS)

    with pytest.raises(UnknownFact) as raised:
        expression.evaluate(env)

    assert raised.value.name == "peak"


def test_a_false_fact_is_known() -> None:
    """False and 0 are values, not "unknown": only None is."""
    assert evaluate("not managed", managed=False) is True
    assert evaluate("allocated == 0", allocated=0) is True


def test_an_unknown_fact_in_a_comparison_is_not_treated_as_false() -> None:
    with pytest.raises(UnknownFact, match="status"):
        evaluate("status != 'READY'", status=None)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("peak > 10 or has_autoscaling", True),  # `unknown or True`: True, whichever side is unknown
        ("has_autoscaling or peak > 10", True),
        ("peak > 10 and managed", False),  # `unknown and False`: False
        ("managed and peak > 10", False),
    ],
)
def test_and_or_are_three_valued_a_deciding_operand_wins_over_an_unknown_one(source: str, expected: bool) -> None:
    assert evaluate(source, peak=None) is expected


@pytest.mark.parametrize("source", ["peak > 10 or managed", "has_autoscaling and peak > 10", "not peak > 10"])
def test_without_a_deciding_operand_an_unknown_fact_keeps_the_whole_unknown(source: str) -> None:
    with pytest.raises(UnknownFact, match="peak"):
        evaluate(source, peak=None)


def test_known_takes_the_first_argument_whose_facts_are_known() -> None:
    assert evaluate("ceil(known(peak, allocated) * 1.2)", peak=None) == 60  # allocated 50
    assert evaluate("ceil(known(peak, allocated) * 1.2)") == 97  # peak 80.4
    with pytest.raises(UnknownFact, match="allocated"):
        evaluate("known(peak, allocated)", peak=None, allocated=None)
    assert compile_expression("known(peak, 1)", FACTS).names == frozenset({"peak"})
