"""`decide` builds its trace as plain data and validates it into a `Decision` once, at the end. The decision it
returns must be the one the engine built before, model by model (a `ConditionResult` per condition, a `RowTrace`
per row, an `ActionCall` per action): the same fields, the same values, the same JSON, byte for byte — the JSON is
what plans store in DynamoDB and what `medic simulate --json` prints.

The reference below is that model-by-model engine, kept here as the oracle. The facts: every example of the shipped
runbook against every table, then the same facts knocked out, dropped, scaled, set to edges and mistyped, from a
seeded generator.
"""

from __future__ import annotations

import ast
import math
import operator
import random
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from medic.config import DEFAULT_RUNBOOK
from medic.facts import FACT_TYPES
from medic.planning.expr import Expression, UnknownFact
from medic.planning.runbook import (
    MODE_ORDER,
    Row,
    Runbook,
    decide,
    layer,
    load_runbook,
    render,
)
from medic.planning.verdict import ActionCall, ConditionResult, Decision, RowTrace

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
SIGNALS = tuple(RUNBOOK.tables)
#: The shipped runbook under a team's override: scoped rows first, and the throttles table collecting.
TEAM = layer(
    RUNBOOK,
    textwrap.dedent(
        """\
        runbook: payments
        version: 1
        extends: lambda-latency
        tables:
          throttles:
            hit_policy: collect
            rows:
              - id: payments-reserved
                scope: {functions: ["checkout*", "fn-*"], tags: {team: payments}}
                when: ["throttles > 0", "has_reserved_concurrency"]
                diagnosis: reserved_limit
                mode: approve
                actions:
                  - kind: set_reserved_concurrency
                    params: {concurrency: "ceil(reserved_concurrency * 2)"}
                rationale: Payments doubles {function_name}'s reservation ({reserved_concurrency}).
          db_connections:
            rows:
              - id: orders-db-advice
                scope: {databases: ["orders-*"]}
                when: ["db_connection_ratio >= 0.5"]
                diagnosis: connection_blowup
                mode: notify
                actions: [{kind: advise}]
                rationale: "{db_instance} is the orders database: page the owners."
        """
    ),
    "payments.yaml",
)
EDGES: tuple[Any, ...] = (0, 0.0, -1.0, 1, 0.5, 0.9, 1e308, math.inf, -math.inf, True, False, "", "READY", "async")


def reference_decide(
    runbook: Runbook, signal: str, facts: Mapping[str, Any], tags: Mapping[str, str] | None
) -> Decision:
    """The engine as it was: every model of the trace constructed (and validated) as it is reached."""
    table = runbook.tables.get(signal)
    if table is None:
        return Decision(signal=signal, reason=f"runbook {runbook.name!r} has no table for signal {signal!r}")
    trace: list[RowTrace] = []
    matched: list[tuple[Row, list[ActionCall]]] = []
    for row in table.rows:
        row_trace = RowTrace(row=row.id, matched=False, where=row.where)
        trace.append(row_trace)
        if row.scope is not None and not row.scope.matches(facts, tags):
            row_trace.note = f"out of scope ({row.scope.describe()})"
            continue
        if not reference_conditions_hold(row, facts, row_trace):
            continue
        try:
            calls = [
                ActionCall(
                    kind=action.kind,
                    row=row.id,
                    params=finite_parameters(
                        action.kind, {k: float(v.evaluate(facts)) for k, v in action.params.items()}
                    ),
                )
                for action in row.actions
            ]
        except UnknownFact as unknown:
            row_trace.note = (
                f"a parameter needs the unknown fact {unknown.name!r}" if unknown.value is None
                else f"a parameter needs the fact {unknown.name!r}, which is {unknown.value!r} (not a finite number)"
            )  # fmt: skip
            continue
        except (ArithmeticError, ValueError, TypeError) as exc:
            row_trace.note = f"a parameter could not be computed: {exc}"
            continue
        row_trace.matched = True
        matched.append((row, calls))
        if table.hit_policy == "first":
            break
    missing = sorted({name for t in trace if not t.matched for c in t.conditions if c.result == "unknown"
                      for name in c.facts if not known(facts.get(name))})  # fmt: skip
    if not matched:
        reason = f"no row of table {signal!r} matched"
        if missing:
            reason += f" (unknown facts: {', '.join(missing)})"
        return Decision(signal=signal, table=signal, hit_policy=table.hit_policy, trace=trace, reason=reason,
                        missing_facts=missing)  # fmt: skip
    first, _ = matched[0]
    changing = [row for row, _ in matched if any(a.kind != "advise" for a in row.actions)]
    deciding = changing or [first]
    mode = min((row.mode for row in deciding), key=MODE_ORDER.__getitem__)
    ids = [row.id for row, _ in matched]
    return Decision(
        signal=signal,
        table=signal,
        hit_policy=table.hit_policy,
        row=first.id,
        rows=ids if table.hit_policy == "collect" else [],
        diagnosis=first.diagnosis,
        mode=mode,
        rationale="\n\n".join(render(row.rationale, facts) for row, _ in matched),
        actions=[call for _, calls in matched for call in calls],
        verify=deciding[0].verify,
        trace=trace,
        reason=f"row{'s' if len(ids) > 1 else ''} {', '.join(repr(i) for i in ids)} matched",
        missing_facts=missing,
    )


def known(value: Any) -> bool:
    """A fact that can be read: neither None nor a number that is not finite (NaN, ±inf read as unknown)."""
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def finite_parameters(kind: str, params: dict[str, float]) -> dict[str, float]:
    for name, value in params.items():
        if not math.isfinite(value):
            raise ValueError(f"{kind}.{name} is {value!r}, not a finite number")
    return params


def reference_conditions_hold(row: Row, facts: Mapping[str, Any], row_trace: RowTrace) -> bool:
    for condition in row.conditions:
        seen = {name: facts.get(name) for name in sorted(condition.names)}
        if any(isinstance(value, float) and not math.isfinite(value) for value in seen.values()):
            seen = {name: str(value) if isinstance(value, float) and not math.isfinite(value) else value
                    for name, value in seen.items()}  # fmt: skip
        try:
            holds = bool(reference_evaluate(condition, facts))
        except UnknownFact as missing:
            row_trace.conditions.append(ConditionResult(expression=condition.source, result="unknown", facts=seen))
            row_trace.note = (f"fact {missing.name!r} is unknown" if missing.value is None
                              else f"fact {missing.name!r} is {missing.value!r} (not a finite number)")  # fmt: skip
            return False
        except (ArithmeticError, TypeError, ValueError) as exc:
            row_trace.conditions.append(ConditionResult(expression=condition.source, result="unknown", facts=seen))
            row_trace.note = f"condition could not be evaluated: {exc}"
            return False
        row_trace.conditions.append(
            ConditionResult(expression=condition.source, result="true" if holds else "false", facts=seen)
        )
        if not holds:
            return False
    return True


_OPERATORS: dict[type[ast.AST], Any] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Eq: operator.eq, ast.NotEq: operator.ne,
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}  # fmt: skip
_FUNCTIONS = {
    "min": min,
    "max": max,
    "ceil": math.ceil,
    "floor": math.floor,
    "round": round,
    "abs": abs,
    "sqrt": lambda x: math.sqrt(max(0.0, x)),
}


def reference_evaluate(expression: Expression, facts: Mapping[str, Any]) -> Any:
    """The expression language walked on its syntax tree, node by node: the oracle for its compiled closures."""

    def walk(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in ("true", "false"):
                return node.id == "true"
            value = facts.get(node.id)
            if not known(value):
                raise UnknownFact(node.id, value)
            return value
        if isinstance(node, ast.BoolOp):  # three-valued: a decisive part wins over an unknown one
            decisive = isinstance(node.op, ast.Or)
            unknown: UnknownFact | None = None
            for value in node.values:
                try:
                    if bool(walk(value)) is decisive:
                        return decisive
                except UnknownFact as exc:
                    unknown = unknown or exc
            if unknown is not None:
                raise unknown
            return not decisive
        if isinstance(node, ast.UnaryOp):
            return not walk(node.operand) if isinstance(node.op, ast.Not) else -walk(node.operand)
        if isinstance(node, ast.BinOp):
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Compare):
            value = walk(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.In | ast.NotIn):
                    assert isinstance(comparator, ast.Tuple | ast.List)
                    members = tuple(walk(element) for element in comparator.elts)
                    if (value in members) == isinstance(op, ast.NotIn):
                        return False
                    continue
                other = walk(comparator)
                if not _OPERATORS[type(op)](value, other):
                    return False
                value = other
            return True
        if isinstance(node, ast.IfExp):
            return walk(node.body) if walk(node.test) else walk(node.orelse)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            if node.func.id == "known":  # the first argument whose facts are known
                for arg in node.args[:-1]:
                    try:
                        return walk(arg)
                    except UnknownFact:
                        continue
                return walk(node.args[-1])
            return _FUNCTIONS[node.func.id](*(walk(arg) for arg in node.args))
        raise AssertionError(f"not in the language: {ast.dump(node)}")

    return walk(ast.parse(expression.source, mode="eval").body)


#: Rows no example reaches with every fact their parameters read (or in their scope), and their tags.
MORE_FACTS: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"cold_start_ratio": 0.2, "spillover_invocations": 80, "has_autoscaling": True, "autoscaling_min": 10,
      "autoscaling_max": 20, "pc_requested": 10, "pc_on_other_qualifiers": 0, "pc_status": "READY",
      "peak_concurrency": 30.5, "function_name": "checkout", "qualifier": "live"}, {"medic:managed": "true"}),
    ({"throttles": 420.0, "has_reserved_concurrency": True, "reserved_concurrency": 50.0, "reserved_utilization": 1.0,
      "function_peak_concurrency": 50.0, "account_utilization": 0.4, "account_limit": 1000.0, "is_db_consumer": False,
      "function_name": "checkout-api", "invocation_type": "sync"}, {"medic:managed": "true", "team": "payments"}),
]  # fmt: skip


def example_facts() -> Iterator[tuple[str, dict[str, Any], dict[str, str] | None]]:
    """Each example's facts (and tags), as `medic runbook check` passes them, and `MORE_FACTS`."""
    for example in RUNBOOK.examples:
        raw = dict(example.doc.facts)
        tags = raw.pop("tags", None)
        yield example.doc.name, raw, {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else None
    for number, (facts, tags) in enumerate(MORE_FACTS):
        yield f"more facts #{number}", facts, tags


def variations(seed: int, per_example: int) -> Iterator[tuple[str, dict[str, Any], dict[str, str] | None]]:
    """The examples' facts altered: facts knocked out (None), dropped, scaled, negated, set to edges or another type,
    and facts of the full vocabulary added (the shape triage passes: every fact name present)."""
    rng = random.Random(seed)
    names = sorted(FACT_TYPES)
    for name, facts, tags in example_facts():
        for number in range(per_example):
            varied = dict.fromkeys(names) if rng.random() < 0.3 else {}
            varied.update(facts)
            for fact in list(varied):
                roll = rng.random()
                if roll < 0.1:
                    varied[fact] = None
                elif roll < 0.15:
                    del varied[fact]
                elif roll < 0.3 and isinstance(varied[fact], bool):
                    varied[fact] = not varied[fact]
                elif roll < 0.3 and isinstance(varied[fact], int | float):
                    varied[fact] = varied[fact] * rng.choice([0.0, 0.5, 0.89, 0.9, 1.0, 1.1, 2.0, 10.0, -1.0])
                elif roll < 0.35:
                    varied[fact] = rng.choice(EDGES)
            for fact in rng.sample(names, 3):
                varied[fact] = rng.choice([None, *EDGES])
            yield f"{name} #{number}", varied, tags if rng.random() < 0.8 else rng.choice([None, {"team": "x"}])


Case = tuple[str, Runbook, str, dict[str, Any], dict[str, str] | None]


def cases() -> list[Case]:
    """Every fact set against every table (and a signal with no table), of the shipped runbook and of `TEAM`."""
    return [
        (f"{'team ' if runbook is TEAM else ''}{signal}: {name}", runbook, signal, facts, tags)
        for name, facts, tags in [*example_facts(), *variations(seed=20261201, per_example=40)]
        for runbook in (RUNBOOK, TEAM)
        for signal in (*SIGNALS, "no-such-signal")
    ]


CASES = cases()


def test_the_cases_reach_every_row_and_every_kind_of_note() -> None:
    """The generator is only as good as what it reaches: every row of both runbooks matched, rows out of scope,
    facts unknown, conditions that could not be evaluated (a mistyped fact), parameters that needed an unknown
    fact or could not be computed."""
    matched: set[str] = set()
    notes: set[str] = set()
    for _, runbook, signal, facts, tags in CASES:
        decision = decide(runbook, signal, facts, tags)
        matched.update(f"{signal}/{row.row}" for row in decision.trace if row.matched)
        notes.update(row.note for row in decision.trace if row.note)
    every_row = {f"{signal}/{row.id}" for rb in (RUNBOOK, TEAM) for signal, table in rb.tables.items()
                 for row in table.rows}  # fmt: skip
    assert matched == every_row
    for kind in ("out of scope", "fact ", "condition could not", "a parameter needs", "a parameter could not"):
        assert any(note.startswith(kind) for note in notes), kind


def test_decide_gives_the_decision_the_model_by_model_engine_gives() -> None:
    """Byte-identical JSON, equal dumps, equal models, and the models of the trace are the real classes."""
    for label, runbook, signal, facts, tags in CASES:
        try:
            expected = reference_decide(runbook, signal, facts, tags)
        except Exception as exc:  # the engine must then fail the same way
            with pytest.raises(type(exc)):
                decide(runbook, signal, facts, tags)
            continue
        decision = decide(runbook, signal, facts, tags)
        assert decision.model_dump_json() == expected.model_dump_json(), label
        assert decision.model_dump() == expected.model_dump(), label
        assert decision == expected, label
        assert all(type(call) is ActionCall for call in decision.actions), label
        assert all(type(row) is RowTrace for row in decision.trace), label
        assert all(type(c) is ConditionResult for row in decision.trace for c in row.conditions), label


def test_a_decision_survives_its_round_trips() -> None:
    """Through `model_dump` and back, and through its JSON and back (unless a fact was infinite: JSON says null)."""
    for label, runbook, signal, facts, tags in CASES:
        decision = decide(runbook, signal, facts, tags)
        text = decision.model_dump_json()
        again = Decision.model_validate(decision.model_dump())
        assert again == decision, label
        assert again.model_dump_json() == text, label
        if not any(isinstance(v, float) and math.isinf(v) for v in facts.values()):
            assert Decision.model_validate_json(text) == decision, label
            assert Decision.model_validate_json(text).model_dump_json() == text, label


def test_the_compiled_expressions_agree_with_their_syntax_tree() -> None:
    """Conditions and parameters of both runbooks, evaluated compiled and walked, over every fact set: the same
    value of the same type, or the same exception with the same message."""
    expressions = {
        expression.source: expression
        for runbook in (RUNBOOK, TEAM)
        for table in runbook.tables.values()
        for row in table.rows
        for expression in (*row.conditions, *(e for a in row.actions for e in a.params.values()))
    }
    fact_sets = [facts for label, runbook, signal, facts, _ in CASES if runbook is RUNBOOK and signal == SIGNALS[0]]
    for facts in fact_sets:
        for source, expression in expressions.items():
            try:
                expected: Any = reference_evaluate(expression, facts)
            except Exception as exc:  # the compiled one must raise the same
                expected = (type(exc), str(exc))
            try:
                got: Any = expression.evaluate(facts)
            except Exception as exc:
                got = (type(exc), str(exc))
            assert (got, type(got)) == (expected, type(expected)), f"{source} over {facts}"
    assert len(fact_sets) * len(expressions) > 10_000
