"""A small, typed, safe expression language for runbook conditions and parameters.

Expressions use Python's syntax for arithmetic and comparisons, but are never `eval`-ed: the source
is parsed with `ast`, every node is checked against a short allow-list and typed against the known
facts, and the tree is compiled once into plain closures.

Allowed: numbers, strings, booleans; fact names; `+ - * / // %`; comparisons (incl. chained and
`in (...)` with literals); `and`, `or`, `not`; `x if cond else y`; the functions `min`, `max`,
`ceil`, `floor`, `round`, `abs`, `sqrt`, and `known(a, b, …)` (the first argument whose facts are known: a fallback).

>>> expr = compile_expression("ceil(peak * 1.2)", {"peak": float})
>>> expr.evaluate({"peak": 50})
60
>>> compile_expression("peak > 0 and pc_status == 'READY'", {"peak": float, "pc_status": str}).kind
'bool'
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import isfinite
from typing import Any, Literal

Kind = Literal["number", "bool", "str"]
Value = int | float | bool | str
Env = Mapping[str, Any]
Evaluator = Callable[[Env], Any]


class ExpressionError(ValueError):
    """The expression is not valid: says what and where (column)."""


class UnknownFact(LookupError):
    """A fact the expression needs is unknown: not collected (None), or not a finite number (NaN, ±inf: no
    comparison with it means anything, so it is read as unknown, never as false). `value` is what was there."""

    def __init__(self, name: str, value: Any = None) -> None:
        super().__init__(name)
        self.name = name
        self.value = value

    @property
    def reason(self) -> str:
        """Why the fact is unknown, in words: "is unknown", or "is nan (not a finite number)"."""
        return "is unknown" if self.value is None else f"is {self.value!r} (not a finite number)"


#: How deeply an expression may nest (operators, calls, conditionals): compiling and evaluating walk it recursively,
#: and 500 characters of `- - - x` would otherwise end in RecursionError. A sum of 71 terms nests 71 levels.
MAX_DEPTH = 100


def kind_of_type(py_type: type) -> Kind:
    if py_type is bool:
        return "bool"
    if py_type in (int, float):
        return "number"
    if py_type is str:
        return "str"
    raise ExpressionError(f"facts of type {py_type.__name__} cannot be used in expressions")


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    # name: (function, min args, max args); all take and return numbers
    "min": (min, 2, 8),
    "max": (max, 2, 8),
    "ceil": (math.ceil, 1, 1),
    "floor": (math.floor, 1, 1),
    "round": (round, 1, 1),
    "abs": (abs, 1, 1),
    "sqrt": (lambda x: math.sqrt(max(0.0, x)), 1, 1),  # square-root staffing: demand + 3 * sqrt(demand)
    "known": (lambda *values: values[0], 2, 4),  # the first argument whose facts are known (evaluated lazily below)
}


@dataclass(frozen=True)
class Expression:
    """A compiled expression: its source, result kind, the facts it reads, and the evaluator."""

    source: str
    kind: Kind
    names: frozenset[str]
    _evaluate: Evaluator

    def evaluate(self, env: Env) -> Any:
        """Evaluate against facts; raises `UnknownFact` when a needed fact is None or absent."""
        return self._evaluate(env)

    @property
    def evaluator(self) -> Evaluator:
        """`evaluate` without the method call in between, for hot loops."""
        return self._evaluate


def compile_expression(source: str | int | float | bool, facts: Mapping[str, type]) -> Expression:
    """Parse, type-check and compile `source` against the fact types in `facts`."""
    if isinstance(source, bool | int | float):
        if isinstance(source, float) and not math.isfinite(source):
            raise ExpressionError(f"{source!r} is not a finite number")
        constant = source
        return Expression(
            str(source), "bool" if isinstance(source, bool) else "number", frozenset(), lambda _: constant
        )
    text = str(source).strip()
    if not text:
        raise ExpressionError("empty expression")
    if len(text) > 500:
        raise ExpressionError("expression longer than 500 characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error at column {(exc.offset or 0)}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep") from None
    if _depth(tree.body) > MAX_DEPTH:
        raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep")
    compiler = _Compiler(facts, text)
    kind, evaluate = compiler.compile(tree.body)
    return Expression(text, kind, frozenset(compiler.names), evaluate)


def _depth(root: ast.AST) -> int:
    """How deeply `root` nests (1: a name or a constant), walked without recursion."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend(
            (child, level + 1)
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, ast.expr_context | ast.operator | ast.boolop | ast.unaryop | ast.cmpop)
        )
    return deepest


def _first_known(parts: list[Evaluator]) -> Evaluator:
    """`known(a, b, …)`: the first argument that can be evaluated (its facts known); unknown when none can. A
    runbook's fallback in one parameter: `ceil(known(demand_concurrency_peak, peak_concurrency) * 1.2)`."""

    def evaluate(env: Env) -> Any:
        for part in parts[:-1]:
            try:
                return part(env)
            except UnknownFact:
                continue
        return parts[-1](env)

    return evaluate


def _kleene(parts: list[Evaluator], *, decisive: bool) -> Evaluator:
    """`and` (decisive False) / `or` (decisive True) in three-valued logic: one decisive part settles it even when
    another reads an unknown fact (`unknown or True` is True, `unknown and False` is False); otherwise an unknown
    part makes the whole unknown."""

    def evaluate(env: Env) -> bool:
        unknown: UnknownFact | None = None
        for part in parts:
            try:
                if bool(part(env)) is decisive:
                    return decisive
            except UnknownFact as exc:
                unknown = unknown or exc
        if unknown is not None:
            raise unknown
        return not decisive

    return evaluate


class _Compiler:
    def __init__(self, facts: Mapping[str, type], source: str = "") -> None:
        self.facts = facts
        self.source = source
        self.names: set[str] = set()

    def fail(self, node: ast.AST, problem: str) -> ExpressionError:
        return ExpressionError(f"{problem} (column {getattr(node, 'col_offset', 0) + 1})")

    def compile(self, node: ast.expr) -> tuple[Kind, Evaluator]:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BoolOp):
            parts = [self._expect(value, "bool") for value in node.values]
            return "bool", _kleene(parts, decisive=not isinstance(node.op, ast.And))
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                inner = self._expect(node.operand, "bool")
                return "bool", lambda env: not inner(env)
            if isinstance(node.op, ast.USub):
                number = self._expect(node.operand, "number")
                return "number", lambda env: -number(env)
            raise self.fail(node, "unsupported unary operator")
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
            left, right = self._expect(node.left, "number"), self._expect(node.right, "number")
            return "number", lambda env: op(left(env), right(env))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            test = self._expect(node.test, "bool")
            body_kind, body = self.compile(node.body)
            other = self._expect(node.orelse, body_kind)
            return body_kind, lambda env: body(env) if test(env) else other(env)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise self.fail(node, f"{type(node).__name__} is not allowed in a runbook expression")

    def _constant(self, node: ast.Constant) -> tuple[Kind, Evaluator]:
        value = node.value
        if isinstance(value, bool):
            kind: Kind = "bool"
        elif isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                shown = ast.get_source_segment(self.source, node) or repr(value)
                raise self.fail(node, f"{shown} is not a finite number (it reads as {value!r})")
            kind = "number"
        elif isinstance(value, str):
            kind = "str"
        else:
            raise self.fail(node, f"constant {value!r} is not allowed")
        return kind, lambda _env: value

    def _name(self, node: ast.Name) -> tuple[Kind, Evaluator]:
        name = node.id
        if name in ("true", "false"):
            flag = name == "true"
            return "bool", lambda _env: flag
        if name not in self.facts:
            raise self.fail(node, f"unknown fact {name!r}")
        self.names.add(name)

        def read(env: Env) -> Any:
            value = env.get(name)
            if value is None or (value.__class__ is float and not isfinite(value)):
                raise UnknownFact(name, value)
            return value

        return kind_of_type(self.facts[name]), read

    def _expect(self, node: ast.expr, kind: Kind) -> Evaluator:
        actual, evaluate = self.compile(node)
        if actual != kind:
            raise self.fail(node, f"expected a {kind}, got a {actual}: {ast.unparse(node)}")
        return evaluate

    def _compare(self, node: ast.Compare) -> tuple[Kind, Evaluator]:
        left_kind, left = self.compile(node.left)
        steps: list[tuple[Callable[[Any, Any], bool], Evaluator]] = []
        current_kind = left_kind
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(comparator, ast.Tuple | ast.List):
                    raise self.fail(comparator, "`in` needs a literal list, e.g. x in ('READY', 'FAILED')")
                members = [self._expect(element, current_kind) for element in comparator.elts]
                negate = isinstance(op, ast.NotIn)

                def member_of(env: Env, members: list[Evaluator] = members) -> tuple[Any, ...]:
                    return tuple(member(env) for member in members)

                contains: Callable[[Any, Any], bool] = (lambda a, b: a not in b) if negate else (lambda a, b: a in b)
                steps.append((contains, member_of))
                continue
            compare = _COMPARE.get(type(op))
            if compare is None:
                raise self.fail(node, f"comparison {type(op).__name__} is not allowed")
            right_kind, right = self.compile(comparator)
            if right_kind != current_kind:
                raise self.fail(comparator, f"cannot compare a {current_kind} with a {right_kind}")
            if current_kind == "bool" and not isinstance(op, ast.Eq | ast.NotEq):
                raise self.fail(comparator, "booleans can only be compared with == or !=")
            steps.append((compare, right))
            current_kind = right_kind

        def evaluate(env: Env) -> bool:
            value = left(env)
            for compare, right in steps:
                other = right(env)
                if not compare(value, other):
                    return False
                value = other
            return True

        if len(steps) != 1:
            return "bool", evaluate
        # The common shapes, `fact <op> constant` and `a <op> b`, in one closure each: the same reads, in the same
        # order, the same errors, the same True/False.
        (only, right), comparator = steps[0], node.comparators[0]
        fact = node.left.id if isinstance(node.left, ast.Name) and node.left.id in self.names else None
        if fact is not None and isinstance(comparator, ast.Constant):  # (`in` takes a literal list, never a constant)
            constant = comparator.value

            def fact_against_constant(env: Env) -> bool:
                value = env.get(fact)
                if value is None or (value.__class__ is float and not isfinite(value)):
                    raise UnknownFact(fact, value)
                return bool(only(value, constant))

            return "bool", fact_against_constant

        def single(env: Env) -> bool:
            return bool(only(left(env), right(env)))

        return "bool", single

    def _call(self, node: ast.Call) -> tuple[Kind, Evaluator]:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            allowed = ", ".join(sorted(_FUNCTIONS))
            raise self.fail(node, f"only these functions are allowed: {allowed}")
        if node.keywords:
            raise self.fail(node, "keyword arguments are not allowed")
        function, low, high = _FUNCTIONS[node.func.id]
        if not low <= len(node.args) <= high:
            raise self.fail(node, f"{node.func.id}() takes {low}..{high} arguments")
        args = [self._expect(arg, "number") for arg in node.args]
        if node.func.id == "known":
            return "number", _first_known(args)
        return "number", lambda env: function(*(arg(env) for arg in args))
