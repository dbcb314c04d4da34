"""The runbook: decision tables in YAML, validated and compiled once at load, evaluated per alarm.

A table belongs to a signal; its rows are tried in order (hit policy `first`). A row matches when
all its `when` conditions hold over the facts; a condition that needs an unknown fact does not
hold, and the trace says which fact was missing. Every decision carries that trace: which row
matched and why each row above it did not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medic.actions import ACTION_KINDS, UnknownAction, action_params
from medic.errors import RunbookError
from medic.expr import Expression, ExpressionError, UnknownFact, compile_expression
from medic.facts import FACT_TYPES

Mode = Literal["auto", "approve", "notify"]
SIGNALS = ("throttles", "spillover", "p99_latency", "db_connections")

#: The diagnoses of the vocabulary (DESIGN.md §3), per signal. Runbooks may not invent others.
DIAGNOSES: dict[str, frozenset[str]] = {
    "throttles": frozenset({"account_limit", "reserved_limit", "burst_limit", "async_burst", "unexplained"}),
    "spillover": frozenset({"pc_floor_too_low", "autoscaling_max_too_low", "pc_not_ready", "unexplained"}),
    "p99_latency": frozenset(
        {"cold_starts", "cpu_starved", "spillover_cold_starts", "dependency", "pc_misconfigured", "unexplained"}
    ),
    "db_connections": frozenset({"connection_blowup", "unexplained"}),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VerifySpec(_Strict):
    """What the verifier expects after the change."""

    expect: str = "alarm back to OK"
    rollback_on_failure: bool = False


class ActionDoc(_Strict):
    kind: str
    params: dict[str, str | int | float] = Field(default_factory=dict)


class RowDoc(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    when: list[str] = Field(min_length=1)
    diagnosis: str
    mode: Mode
    actions: list[ActionDoc] = Field(min_length=1)
    rationale: str = Field(min_length=1)
    verify: VerifySpec = VerifySpec()


class TableDoc(_Strict):
    hit_policy: Literal["first"] = "first"
    description: str = ""
    rows: list[RowDoc] = Field(min_length=1)


class RunbookDoc(_Strict):
    runbook: str
    version: int
    description: str = ""
    tables: dict[Literal["throttles", "spillover", "p99_latency", "db_connections"], TableDoc]


@dataclass(frozen=True)
class CompiledAction:
    kind: str
    params: dict[str, Expression]


@dataclass(frozen=True)
class Row:
    id: str
    conditions: tuple[Expression, ...]
    diagnosis: str
    mode: Mode
    actions: tuple[CompiledAction, ...]
    rationale: str
    verify: VerifySpec


@dataclass(frozen=True)
class Table:
    signal: str
    hit_policy: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Runbook:
    name: str
    version: int
    source: str
    tables: dict[str, Table] = field(default_factory=dict)


# -- decisions -----------------------------------------------------------------------------------


class ConditionResult(BaseModel):
    expression: str
    result: Literal["true", "false", "unknown"]
    facts: dict[str, Any] = Field(default_factory=dict)


class RowTrace(BaseModel):
    row: str
    matched: bool
    conditions: list[ConditionResult] = Field(default_factory=list)
    note: str = ""


class ActionCall(BaseModel):
    kind: str
    params: dict[str, float] = Field(default_factory=dict)


class Decision(BaseModel):
    """The verdict of one table over one set of facts, with the trace that explains it."""

    signal: str
    table: str | None = None
    row: str | None = None
    diagnosis: str | None = None
    mode: Mode | None = None
    rationale: str = ""
    actions: list[ActionCall] = Field(default_factory=list)
    verify: VerifySpec = VerifySpec()
    trace: list[RowTrace] = Field(default_factory=list)
    reason: str = ""

    @property
    def matched(self) -> bool:
        return self.row is not None


def decide(runbook: Runbook, signal: str, facts: Mapping[str, Any]) -> Decision:
    """Evaluate the table of `signal` over `facts` (name → value; None = unknown)."""
    table = runbook.tables.get(signal)
    if table is None:
        return Decision(signal=signal, reason=f"runbook {runbook.name!r} has no table for signal {signal!r}")
    trace: list[RowTrace] = []
    for row in table.rows:
        row_trace = RowTrace(row=row.id, matched=False)
        trace.append(row_trace)
        if not _conditions_hold(row, facts, row_trace):
            continue
        try:
            calls = [
                ActionCall(kind=action.kind, params={k: float(v.evaluate(facts)) for k, v in action.params.items()})
                for action in row.actions
            ]
        except UnknownFact as missing:
            row_trace.note = f"a parameter needs the unknown fact {missing.name!r}"
            continue
        except (ArithmeticError, ValueError, TypeError) as exc:
            row_trace.note = f"a parameter could not be computed: {exc}"
            continue
        row_trace.matched = True
        return Decision(
            signal=signal,
            table=signal,
            row=row.id,
            diagnosis=row.diagnosis,
            mode=row.mode,
            rationale=render(row.rationale, facts),
            actions=calls,
            verify=row.verify,
            trace=trace,
            reason=f"row {row.id!r} matched",
        )
    return Decision(signal=signal, table=signal, trace=trace, reason=f"no row of table {signal!r} matched")


def _conditions_hold(row: Row, facts: Mapping[str, Any], row_trace: RowTrace) -> bool:
    for condition in row.conditions:
        seen = {name: facts.get(name) for name in sorted(condition.names)}
        try:
            holds = bool(condition.evaluate(facts))
        except UnknownFact as missing:
            row_trace.conditions.append(ConditionResult(expression=condition.source, result="unknown", facts=seen))
            row_trace.note = f"fact {missing.name!r} is unknown"
            return False
        except (ArithmeticError, TypeError) as exc:
            row_trace.conditions.append(ConditionResult(expression=condition.source, result="unknown", facts=seen))
            row_trace.note = f"condition could not be evaluated: {exc}"
            return False
        row_trace.conditions.append(
            ConditionResult(expression=condition.source, result="true" if holds else "false", facts=seen)
        )
        if not holds:
            return False
    return True


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def render(template: str, facts: Mapping[str, Any]) -> str:
    """Fill `{fact}` placeholders; unknown facts read "unknown". No attribute access, no format specs."""

    def value(match: re.Match[str]) -> str:
        found = facts.get(match.group(1))
        if found is None:
            return "unknown"
        if isinstance(found, float) and found.is_integer():
            return str(int(found))
        return str(found)

    return _PLACEHOLDER.sub(value, template)


# -- loading -------------------------------------------------------------------------------------


def load_runbook(path: str | Path) -> Runbook:
    """Load, validate and compile a runbook file. Raises `RunbookError` naming file, table, row, field."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RunbookError(source, f"cannot read: {exc.strerror or exc}") from None
    return parse_runbook(text, source)


def parse_runbook(text: str, source: str = "runbook") -> Runbook:
    try:
        raw = yaml.safe_load(text)
        lines = _line_index(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise RunbookError(where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        doc = RunbookDoc.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        table, row, field_name = _locate(raw, loc)
        line = lines.get(_closest(loc, lines))
        where = f"{source}:{line}" if line else source
        raise RunbookError(where, first["msg"], table=table, row=row, field=field_name) from None
    tables: dict[str, Table] = {
        str(signal): _compile_table(signal, table_doc, source, raw, lines) for signal, table_doc in doc.tables.items()
    }
    return Runbook(name=doc.runbook, version=doc.version, source=source, tables=tables)


def _compile_table(signal: str, doc: TableDoc, source: str, raw: Any, lines: dict[tuple[Any, ...], int]) -> Table:
    rows: list[Row] = []
    seen: set[str] = set()
    for index, row in enumerate(doc.rows):
        base = ("tables", signal, "rows", index)

        def fail(
            problem: str, field_path: tuple[Any, ...] = (), row_id: str = row.id, base: tuple[Any, ...] = base
        ) -> RunbookError:
            line = lines.get(_closest(base + field_path, lines))
            where = f"{source}:{line}" if line else source
            return RunbookError(where, problem, table=signal, row=row_id, field=".".join(str(p) for p in field_path))

        if row.id in seen:
            raise fail(f"duplicate row id {row.id!r}", ("id",))
        seen.add(row.id)
        if row.diagnosis not in DIAGNOSES[signal]:
            valid = ", ".join(sorted(DIAGNOSES[signal]))
            raise fail(f"unknown diagnosis {row.diagnosis!r} for {signal}; valid: {valid}", ("diagnosis",))
        conditions: list[Expression] = []
        for number, condition in enumerate(row.when):
            try:
                expression = compile_expression(condition, FACT_TYPES)
            except ExpressionError as exc:
                raise fail(f"{exc} in {condition!r}", ("when", number)) from None
            if expression.kind != "bool":
                raise fail(f"a condition must be true/false, got a {expression.kind}: {condition!r}", ("when", number))
            conditions.append(expression)
        actions: list[CompiledAction] = []
        for number, action in enumerate(row.actions):
            if action.kind not in ACTION_KINDS:
                raise fail(f"unknown action {action.kind!r}; valid: {', '.join(ACTION_KINDS)}", ("actions", number))
            try:
                expected = set(action_params(action.kind))
            except UnknownAction as exc:
                raise fail(str(exc), ("actions", number, "kind")) from None
            given = set(action.params)
            if given != expected:
                problem = (
                    f"{action.kind} takes params {sorted(expected) or 'none'}; "
                    f"missing {sorted(expected - given)}, unexpected {sorted(given - expected)}"
                )
                raise fail(problem, ("actions", number, "params"))
            compiled: dict[str, Expression] = {}
            for name, value in action.params.items():
                try:
                    expression = compile_expression(value, FACT_TYPES)
                except ExpressionError as exc:
                    raise fail(f"{exc} in {value!r}", ("actions", number, "params", name)) from None
                if expression.kind != "number":
                    raise fail(f"parameter {name} must be a number, got a {expression.kind}",
                               ("actions", number, "params", name))  # fmt: skip
                compiled[name] = expression
            actions.append(CompiledAction(kind=action.kind, params=compiled))
        if row.mode == "auto" and all(a.kind == "advise" for a in actions):
            raise fail("an advise-only row has nothing to apply: use mode notify", ("mode",))
        rows.append(
            Row(
                id=row.id,
                conditions=tuple(conditions),
                diagnosis=row.diagnosis,
                mode=row.mode,
                actions=tuple(actions),
                rationale=row.rationale.strip(),
                verify=row.verify,
            )
        )
    return Table(signal=signal, hit_policy=doc.hit_policy, rows=tuple(rows))


def _locate(raw: Any, loc: tuple[Any, ...]) -> tuple[str, str, str]:
    """Turn a pydantic error location into (table, row id, field path)."""
    if len(loc) >= 2 and loc[0] == "tables":
        table = str(loc[1])
        if len(loc) >= 4 and loc[2] == "rows" and isinstance(loc[3], int):
            try:
                row_id = str(raw["tables"][table]["rows"][loc[3]].get("id", f"#{loc[3] + 1}"))
            except (KeyError, IndexError, TypeError, AttributeError):
                row_id = f"#{loc[3] + 1}"
            return table, row_id, ".".join(str(p) for p in loc[4:])
        return table, "", ".".join(str(p) for p in loc[2:])
    return "", "", ".".join(str(p) for p in loc)


def _line_index(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each YAML path to its 1-based line number."""
    index: dict[tuple[Any, ...], int] = {}
    if node is None:
        return index
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            index[child] = key.start_mark.line + 1
            index.update({k: v for k, v in _line_index(value, child).items() if k != child})
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            index.update(_line_index(item, (*path, position)))
    return index


def _closest(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> tuple[Any, ...]:
    while path and path not in lines:
        path = path[:-1]
    return path
