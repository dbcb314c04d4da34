"""The runbook: decision tables in YAML, validated and compiled once at load, evaluated per alarm.

A table belongs to a signal; its rows are tried in order (hit policy `first`). A row matches when
all its `when` conditions hold over the facts; a condition that needs an unknown fact does not
hold, and the trace says which fact was missing. Every decision carries that trace: which row
matched and why each row above it did not.
"""

from __future__ import annotations

import ast
import fnmatch
import itertools
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medic import yaml_tree
from medic.actions import ACTION_KINDS, UnknownAction, get_action
from medic.errors import RunbookError
from medic.facts import FACT_TYPES
from medic.planning.expr import Evaluator, Expression, ExpressionError, UnknownFact, compile_expression
from medic.planning.verdict import Decision, Mode, VerifySpec

HitPolicy = Literal["first", "collect"]
SignalName = Literal["throttles", "spillover", "p99_latency", "db_connections"]
SIGNALS = ("throttles", "spillover", "p99_latency", "db_connections")
#: Modes from the most cautious to the most autonomous.
MODE_ORDER: dict[str, int] = {"notify": 0, "approve": 1, "auto": 2}

#: The diagnoses of the vocabulary (docs/ARCHITECTURE.md §3), per signal. Runbooks may not invent others.
DIAGNOSES: dict[str, frozenset[str]] = {
    "throttles": frozenset({"account_limit", "reserved_limit", "burst_limit", "async_burst", "unexplained"}),
    "spillover": frozenset(
        {"pc_floor_too_low", "autoscaling_max_too_low", "pc_not_ready", "pc_overprovisioned", "unexplained"}
    ),
    "p99_latency": frozenset(
        {
            "cold_starts",
            "cpu_starved",
            "memory_pressure",
            "spillover_cold_starts",
            "dependency",
            "pc_misconfigured",
            "pc_not_ready",
            "unexplained",
        }
    ),
    "db_connections": frozenset({"connection_blowup", "unexplained"}),
}


class _Strict(BaseModel):
    # defer_build: the documents are validated once, when a runbook is loaded, not at every import.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ActionDoc(_Strict):
    kind: str = Field(description="an action kind of the vocabulary, e.g. set_provisioned_concurrency")
    params: dict[str, str | int | float] = Field(
        default_factory=dict, description="parameter name → number or expression over facts, e.g. ceil(peak * 1.2)"
    )


class ScopeDoc(_Strict):
    """Which targets a row applies to (all that are given must match). Used by per-team/per-function overrides."""

    functions: list[str] = Field(default_factory=list, description="function-name globs, e.g. checkout-*")
    tags: dict[str, str] = Field(default_factory=dict, description="tags the function must carry, e.g. team: pay")
    databases: list[str] = Field(default_factory=list, description="DB instance id globs (db_connections)")


class RowDoc(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    scope: ScopeDoc | None = None
    when: list[str] = Field(min_length=1, description="conditions over facts; all must hold")
    diagnosis: str
    mode: Mode
    actions: list[ActionDoc] = Field(min_length=1)
    rationale: str = Field(min_length=1, description="shown to humans; {fact} placeholders are filled in")
    verify: VerifySpec = VerifySpec()


class TableDoc(_Strict):
    hit_policy: HitPolicy | None = Field(default=None, description="first (default): the first matching row decides; "
                                         "collect: every matching row contributes its actions")  # fmt: skip
    description: str = ""
    rows: list[RowDoc] = Field(default_factory=list)
    disable: list[str] = Field(default_factory=list, description="in an override: ids of the base rows to drop")


class ExampleExpect(_Strict):
    matched: bool = True
    row: str | None = None
    rows: list[str] | None = None
    diagnosis: str | None = None
    mode: Mode | None = None
    actions: list[str] | None = None
    params: dict[str, dict[str, float]] | None = Field(default=None, description="action kind → param → value")


class ExampleDoc(_Strict):
    """Facts in, expected verdict out: run by `medic runbook check`."""

    name: str = Field(min_length=1)
    signal: SignalName
    facts: dict[str, Any] = Field(default_factory=dict)
    expect: ExampleExpect


class RunbookDoc(_Strict):
    runbook: str = Field(min_length=1)
    version: int
    description: str = ""
    extends: str | None = Field(default=None, description="an override file names the runbook it layers on")
    tables: dict[SignalName, TableDoc] = Field(default_factory=dict)
    examples: list[ExampleDoc] = Field(default_factory=list)


@dataclass(frozen=True)
class CompiledAction:
    kind: str
    params: dict[str, Expression]


@dataclass(frozen=True)
class Scope:
    functions: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    databases: tuple[str, ...] = ()

    def matches(self, facts: Mapping[str, Any], tags: Mapping[str, str] | None) -> bool:
        name, database = facts.get("function_name"), facts.get("db_instance")
        if self.functions and not (name and any(fnmatch.fnmatchcase(str(name), g) for g in self.functions)):
            return False
        if self.databases and not (database and any(fnmatch.fnmatchcase(str(database), g) for g in self.databases)):
            return False
        return all((tags or {}).get(key) == value for key, value in self.tags)

    def describe(self) -> str:
        parts = [f"functions {', '.join(self.functions)}"] if self.functions else []
        parts += [f"tags {', '.join(f'{k}={v}' for k, v in self.tags)}"] if self.tags else []
        parts += [f"databases {', '.join(self.databases)}"] if self.databases else []
        return "; ".join(parts)


@dataclass(frozen=True)
class Row:
    id: str
    conditions: tuple[Expression, ...]
    diagnosis: str
    mode: Mode
    actions: tuple[CompiledAction, ...]
    rationale: str
    verify: VerifySpec
    scope: Scope | None = None
    where: str = ""

    @cached_property
    def checks(self) -> tuple[tuple[str, tuple[str, ...], Evaluator], ...]:
        """Each condition as `decide` walks it: (its source, the facts it reads in name order, its evaluator)."""
        return tuple((c.source, tuple(sorted(c.names)), c.evaluator) for c in self.conditions)

    @cached_property
    def rationale_parts(self) -> tuple[str, ...]:
        """The rationale cut at its `{fact}` placeholders (as `render` cuts a template), for `decide` to fill."""
        return tuple(_PLACEHOLDER.split(self.rationale))


@dataclass(frozen=True)
class Table:
    signal: str
    hit_policy: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Example:
    doc: ExampleDoc
    where: str


@dataclass(frozen=True)
class Runbook:
    """A loaded runbook. `refused` is set on a runbook that fails closed (`RunbookStore`): an override was refused
    before any layered runbook was good, so this is the base alone, and every decision made with it is advice
    (mode notify) that says why."""

    name: str
    version: int
    source: str
    tables: dict[str, Table] = field(default_factory=dict)
    examples: tuple[Example, ...] = ()
    layers: tuple[str, ...] = ()
    refused: str = ""


def notify_only(base: Runbook, refusal: RunbookError) -> Runbook:
    """`base` failing closed because an override was refused: every decision made with it is notify-only, its
    rationale and reason carry the refusal (the card and the log show it), until the override is fixed."""
    return replace(base, source=f"{base.source} (notify-only: an override was refused)", refused=str(refusal))


def _refusal_notice(runbook: Runbook) -> str:
    return (f":warning: Advice only: a runbook override was refused ({runbook.refused}). Until it is fixed, Medic "
            "changes nothing on its own and proposes nothing to approve.")  # fmt: skip


# -- decisions -----------------------------------------------------------------------------------


def decide(runbook: Runbook, signal: str, facts: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> Decision:
    """Evaluate the table of `signal` over `facts` (name → value; None = unknown) and the target's `tags`."""
    table = runbook.tables.get(signal)
    if table is None:
        return Decision(signal=signal, reason=f"runbook {runbook.name!r} has no table for signal {signal!r}")
    # The trace is built as plain data and validated once, as a whole, into the Decision at the end: one pass of
    # pydantic's validator over the lot costs a fraction of a model construction per condition, row and call.
    trace: list[dict[str, Any]] = []
    matched: list[tuple[Row, list[dict[str, Any]]]] = []
    missing: set[str] = set()
    first_only = table.hit_policy == "first"
    get = facts.get
    for row in table.rows:
        conditions: list[dict[str, Any]] = []
        step: dict[str, Any] = {"row": row.id, "matched": False, "where": row.where, "conditions": conditions}
        trace.append(step)
        if row.scope is not None and not row.scope.matches(facts, tags):
            step["note"] = f"out of scope ({row.scope.describe()})"
            continue
        note = _conditions_hold(row, facts, get, conditions, missing)
        if note is not None:
            if note:
                step["note"] = note
            continue
        try:
            calls = [
                {"kind": action.kind, "row": row.id, "params": _parameters(action, facts)} for action in row.actions
            ]
        except UnknownFact as unknown:
            step["note"] = (f"a parameter needs the unknown fact {unknown.name!r}" if unknown.value is None
                            else f"a parameter needs the fact {unknown.name!r}, which {unknown.reason}")  # fmt: skip
            continue
        except (ArithmeticError, ValueError, TypeError) as exc:
            step["note"] = f"a parameter could not be computed: {exc}"
            continue
        step["matched"] = True
        matched.append((row, calls))
        if first_only:
            break
    missing_facts = sorted(missing)
    if not matched:
        reason = f"no row of table {signal!r} matched"
        if missing_facts:
            reason += f" (unknown facts: {', '.join(missing_facts)})"
        if runbook.refused:
            reason += f"; {_refusal_notice(runbook)}"
        return Decision.model_validate({"signal": signal, "table": signal, "hit_policy": table.hit_policy,
                                        "trace": trace, "reason": reason, "missing_facts": missing_facts})  # fmt: skip
    first, _ = matched[0]
    changing = [row for row, _ in matched if any(a.kind != "advise" for a in row.actions)]
    deciding = changing or [first]
    mode = min((row.mode for row in deciding), key=MODE_ORDER.__getitem__)
    ids = [row.id for row, _ in matched]
    rationale = "\n\n".join(_fill(row.rationale_parts, facts) for row, _ in matched)
    reason = f"row{'s' if len(ids) > 1 else ''} {', '.join(repr(i) for i in ids)} matched"
    if runbook.refused:  # failing closed: what the rows would do, as advice, and why
        mode = "notify"
        rationale = f"{_refusal_notice(runbook)}\n\n{rationale}"
        reason += f" (notify-only: a runbook override was refused: {runbook.refused})"
    return Decision.model_validate(
        {
            "signal": signal,
            "table": signal,
            "hit_policy": table.hit_policy,
            "row": first.id,
            "rows": ids if table.hit_policy == "collect" else [],
            "diagnosis": first.diagnosis,
            "mode": mode,
            "rationale": rationale,
            "actions": [call for _, calls in matched for call in calls],
            "verify": deciding[0].verify,
            "trace": trace,
            "reason": reason,
            "missing_facts": missing_facts,
        }
    )


def _parameters(action: CompiledAction, facts: Mapping[str, Any]) -> dict[str, float]:
    """The action's parameters computed on `facts`; a result that is not a finite number (``1e308 * 10``) raises
    ValueError: the row is skipped, as for a division by zero."""
    values = {name: float(expression.evaluate(facts)) for name, expression in action.params.items()}
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{action.kind}.{name} is {value!r}, not a finite number")
    return values


def _known(value: Any) -> bool:
    """Whether a fact's value can be read: neither None nor a non-finite number (`medic.planning.expr.UnknownFact`)."""
    return value is not None and not (value.__class__ is float and not math.isfinite(value))


def _trace_facts(seen: dict[str, Any]) -> dict[str, Any]:
    """The facts a condition read, as the trace keeps them: a non-finite number as its name ("nan"), which the log
    can store."""
    for value in seen.values():
        if value.__class__ is float and not math.isfinite(value):
            return {name: _shown_fact(value) for name, value in seen.items()}
    return seen


def _shown_fact(value: Any) -> Any:
    return str(value) if value.__class__ is float and not math.isfinite(value) else value


def _conditions_hold(
    row: Row, facts: Mapping[str, Any], get: Callable[[str], Any], out: list[dict[str, Any]], missing: set[str]
) -> str | None:
    """None when every condition of `row` holds; else the row's note ("" when a condition is simply false).
    Each condition evaluated is appended to `out`; the facts an unknown condition needed and lacked to `missing`."""
    for source, names, evaluate in row.checks:
        seen = {names[0]: get(names[0])} if len(names) == 1 else {name: get(name) for name in names}
        try:
            holds = bool(evaluate(facts))
        except UnknownFact as unknown:
            out.append({"expression": source, "result": "unknown", "facts": _trace_facts(seen)})
            missing.update(name for name, value in seen.items() if not _known(value))
            return f"fact {unknown.name!r} {unknown.reason}"
        except (ArithmeticError, TypeError, ValueError) as exc:
            out.append({"expression": source, "result": "unknown", "facts": _trace_facts(seen)})
            missing.update(name for name, value in seen.items() if not _known(value))
            return f"condition could not be evaluated: {exc}"
        out.append({"expression": source, "result": "true" if holds else "false", "facts": _trace_facts(seen)})
        if not holds:
            return ""
    return None


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def render(template: str, facts: Mapping[str, Any]) -> str:
    """Fill `{fact}` placeholders; unknown facts read "unknown". No attribute access, no format specs."""
    return _fill(tuple(_PLACEHOLDER.split(template)), facts)


def _fill(parts: tuple[str, ...], facts: Mapping[str, Any]) -> str:
    """`parts` as `_PLACEHOLDER.split` cuts a template: text, fact name, text, ... text."""
    if len(parts) == 1:
        return parts[0]
    filled = list(parts)
    for index in range(1, len(parts), 2):
        found = facts.get(parts[index])
        if found is None:
            filled[index] = "unknown"
        elif isinstance(found, float):
            filled[index] = _shown(found)
        else:
            filled[index] = str(found)
    return "".join(filled)


def _shown(number: float) -> str:
    """A fact's number as a human reads it on a card: whole numbers whole, others to three significant digits
    (0.0135, 0.95, 52.7, 1234)."""
    if not math.isfinite(number) or number.is_integer():
        return str(int(number)) if math.isfinite(number) else str(number)
    if abs(number) >= 100:
        return str(round(number))
    return f"{number:.3g}"


# -- loading -------------------------------------------------------------------------------------


def load_runbook(path: str | Path, overrides: Sequence[str | Path] = ()) -> Runbook:
    """Load, validate and compile a runbook, layered with `overrides` (in order; later layers win).

    Raises `RunbookError` naming file:line, table, row and field.
    """
    runbook = parse_runbook(_read(path), str(path))
    for override in overrides:
        runbook = layer(runbook, _read(override), str(override))
    return runbook


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RunbookError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RunbookError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class _Parsed:
    """A validated document with its source and line index, ready to compile rows from."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        node = None
        try:
            node = yaml_tree.compose(text)
            yaml_tree.check_tree(node)
            self.raw = yaml_tree.construct(node)
            self.lines = _line_index(node)
        except yaml_tree.YamlRefused as exc:
            table, row, field_name = _locate(_row_ids(node, exc.path), exc.path)
            raise RunbookError(f"{source}:{exc.line}", exc.problem, table=table, row=row, field=field_name) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark else source
            raise RunbookError(where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
        try:
            self.doc = RunbookDoc.model_validate(self.raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = tuple(first["loc"])
            table, row, field_name = _locate(self.raw, loc)
            raise RunbookError(self.where(loc), first["msg"], table=table, row=row, field=field_name) from None

    def where(self, path: tuple[Any, ...]) -> str:
        line = self.lines.get(_closest(path, self.lines))
        return f"{self.source}:{line}" if line else self.source

    def fail(
        self, signal: str, index: int, row_id: str, problem: str, field_path: tuple[Any, ...] = ()
    ) -> RunbookError:
        where = self.where(("tables", signal, "rows", index, *field_path))
        return RunbookError(where, problem, table=signal, row=row_id, field=".".join(str(p) for p in field_path))

    def rows(self, signal: str) -> list[Row]:
        doc = self.doc.tables[signal]  # type: ignore[index]
        rows: list[Row] = []
        seen: set[str] = set()
        for index, row in enumerate(doc.rows):
            if row.id in seen:
                raise self.fail(signal, index, row.id, f"duplicate row id {row.id!r}", ("id",))
            seen.add(row.id)
            rows.append(_compile_row(self, signal, index, row))
        return rows

    def examples(self) -> tuple[Example, ...]:
        return tuple(Example(doc, self.where(("examples", i))) for i, doc in enumerate(self.doc.examples))


def parse_runbook(text: str, source: str = "runbook") -> Runbook:
    """Validate and compile one runbook document (the base layer)."""
    parsed = _Parsed(text, source)
    if parsed.doc.extends:
        raise RunbookError(parsed.where(("extends",)), "an override (with `extends`) needs a base runbook to layer on",
                           field="extends")  # fmt: skip
    tables: dict[str, Table] = {}
    for signal, table_doc in parsed.doc.tables.items():
        if not table_doc.rows:
            raise RunbookError(parsed.where(("tables", signal)), "a table needs at least one row", table=signal,
                               field="rows")  # fmt: skip
        if table_doc.disable:
            raise RunbookError(parsed.where(("tables", signal, "disable")), "`disable` belongs in an override",
                               table=signal, field="disable")  # fmt: skip
        table = Table(signal, table_doc.hit_policy or "first", tuple(parsed.rows(signal)))
        _check_reachable(table)
        tables[signal] = table
    return Runbook(name=parsed.doc.runbook, version=parsed.doc.version, source=source, tables=tables,
                   examples=parsed.examples(), layers=(source,))  # fmt: skip


def layer(base: Runbook, text: str, source: str) -> Runbook:
    """Layer an override document on `base`: its rows come first (they take precedence), a row with the id of a
    base row replaces it, `disable` drops base rows, and its examples are added."""
    parsed = _Parsed(text, source)
    if parsed.doc.extends != base.name:
        raise RunbookError(parsed.where(("extends",)), f"an override must say `extends: {base.name}` "
                           f"(got {parsed.doc.extends!r})", field="extends")  # fmt: skip
    tables = dict(base.tables)
    for signal, table_doc in parsed.doc.tables.items():
        own = parsed.rows(signal)
        below = list(tables[signal].rows) if signal in tables else []
        known = {row.id for row in below}
        for number, row_id in enumerate(table_doc.disable):
            if row_id not in known:
                raise RunbookError(parsed.where(("tables", signal, "disable", number)),
                                   f"no row {row_id!r} in the {signal} table of {base.name} to disable",
                                   table=signal, field=f"disable.{number}")  # fmt: skip
        dropped = set(table_doc.disable) | {row.id for row in own}
        rows = tuple(own + [row for row in below if row.id not in dropped])
        if not rows:
            raise RunbookError(parsed.where(("tables", signal)), "the layered table has no rows left", table=signal)
        policy = table_doc.hit_policy or (tables[signal].hit_policy if signal in tables else "first")
        table = Table(signal, policy, rows)
        _check_reachable(table)
        tables[signal] = table
    return Runbook(name=base.name, version=base.version, source=f"{base.source} + {source}", tables=tables,
                   examples=base.examples + parsed.examples(), layers=(*base.layers, source))  # fmt: skip


def _compile_row(parsed: _Parsed, signal: str, index: int, row: RowDoc) -> Row:
    def fail(problem: str, *field_path: Any) -> RunbookError:
        return parsed.fail(signal, index, row.id, problem, field_path)

    if row.diagnosis not in DIAGNOSES[signal]:
        valid = ", ".join(sorted(DIAGNOSES[signal]))
        raise fail(f"unknown diagnosis {row.diagnosis!r} for {signal}; valid: {valid}", "diagnosis")
    conditions: list[Expression] = []
    for number, condition in enumerate(row.when):
        try:
            expression = compile_expression(condition, FACT_TYPES)
        except ExpressionError as exc:
            raise fail(f"{exc} in {condition!r}", "when", number) from None
        if expression.kind != "bool":
            raise fail(f"a condition must be true/false, got a {expression.kind}: {condition!r}", "when", number)
        conditions.append(expression)
    actions: list[CompiledAction] = []
    for number, action in enumerate(row.actions):
        if action.kind not in ACTION_KINDS:
            raise fail(f"unknown action {action.kind!r}; valid: {', '.join(ACTION_KINDS)}", "actions", number, "kind")
        try:
            impl = get_action(action.kind)
        except UnknownAction as exc:
            raise fail(str(exc), "actions", number, "kind") from None
        expected, given = set(impl.params), set(action.params)
        if given != expected:
            problem = (
                f"{action.kind} takes params {sorted(expected) or 'none'}; "
                f"missing {sorted(expected - given)}, unexpected {sorted(given - expected)}"
            )
            raise fail(problem, "actions", number, "params")
        if MODE_ORDER[row.mode] > MODE_ORDER[impl.max_mode]:
            raise fail(f"{action.kind} is never applied in mode {row.mode}: its most autonomous mode is "
                       f"{impl.max_mode}", "mode")  # fmt: skip
        compiled: dict[str, Expression] = {}
        for name, value in action.params.items():
            try:
                expression = compile_expression(value, FACT_TYPES)
            except ExpressionError as exc:
                shown = f"{exc} in {value!r}" if isinstance(value, str) else str(exc)
                raise fail(shown, "actions", number, "params", name) from None
            if expression.kind != "number":
                raise fail(f"parameter {name} must be a number, got a {expression.kind}",
                           "actions", number, "params", name)  # fmt: skip
            compiled[name] = expression
        actions.append(CompiledAction(kind=action.kind, params=compiled))
    if row.mode == "auto" and all(a.kind == "advise" for a in actions):
        raise fail("an advise-only row has nothing to apply: use mode notify", "mode")
    scope = None
    if row.scope is not None:
        scope = Scope(tuple(row.scope.functions), tuple(sorted(row.scope.tags.items())), tuple(row.scope.databases))
    return Row(
        id=row.id, conditions=tuple(conditions), diagnosis=row.diagnosis, mode=row.mode, actions=tuple(actions),
        rationale=row.rationale.strip(), verify=row.verify, scope=scope,
        where=parsed.where(("tables", signal, "rows", index)),
    )  # fmt: skip


def _normal(expression: Expression) -> str:
    return ast.dump(ast.parse(expression.source, mode="eval").body)


#: Above this many conditions in a row, `_check_reachable` counts shared conditions instead of trying every subset.
_SUBSETS_UP_TO = 10


def _check_reachable(table: Table) -> None:
    """Under hit policy `first`, a row is unreachable when an earlier row with the same (or no) scope matches
    whenever it does: the earlier row's conditions are a subset of its own, and every fact the earlier row's
    parameters read is read by the later row's conditions too (else the earlier row is skipped when such a fact
    is unknown, and the later row is its fallback).

    Near-linear in the rows: each row's conditions are normalized once, and the earlier rows whose conditions are a
    subset of a row's are found through an index (the earlier rows by their exact set of conditions, looked up for
    each subset of the row's up to `_SUBSETS_UP_TO` conditions; beyond that, by counting, per earlier row, the
    conditions it shares with this one), never by comparing every pair of rows."""
    if table.hit_policy != "first":
        return
    by_conditions: dict[tuple[Scope | None, frozenset[str]], list[int]] = {}
    by_condition: dict[str, list[int]] = {}
    earlier_rows: list[tuple[Scope | None, frozenset[str], frozenset[str]]] = []  # scope, conditions, param facts
    for index, row in enumerate(table.rows):
        conditions = frozenset(_normal(c) for c in row.conditions)
        names = frozenset().union(*(c.names for c in row.conditions))
        shadowing = [earlier for earlier in _subset_rows(row.scope, conditions, by_conditions, by_condition,
                                                         earlier_rows)
                     if earlier_rows[earlier][2] <= names]  # fmt: skip
        if shadowing:
            earlier = table.rows[min(shadowing)]
            raise RunbookError(
                row.where,
                f"unreachable: row {earlier.id!r} ({earlier.where}) matches whenever this row does (its "
                "conditions are a subset of these); move this row above it or make the rows exclusive",
                table=table.signal,
                row=row.id,
                field="when",
            )
        params = frozenset().union(*(e.names for a in row.actions for e in a.params.values()))
        earlier_rows.append((row.scope, conditions, params))
        by_conditions.setdefault((row.scope, conditions), []).append(index)
        for condition in conditions:
            by_condition.setdefault(condition, []).append(index)


def _subset_rows(
    scope: Scope | None,
    conditions: frozenset[str],
    by_conditions: dict[tuple[Scope | None, frozenset[str]], list[int]],
    by_condition: dict[str, list[int]],
    earlier_rows: list[tuple[Scope | None, frozenset[str], frozenset[str]]],
) -> list[int]:
    """The earlier rows (indexes) with no scope or `scope`, whose conditions are a subset of `conditions`."""
    if len(conditions) <= _SUBSETS_UP_TO:
        ordered = sorted(conditions)
        scopes = (None,) if scope is None else (None, scope)
        return [
            earlier
            for size in range(1, len(ordered) + 1)
            for subset in itertools.combinations(ordered, size)
            for each in scopes
            for earlier in by_conditions.get((each, frozenset(subset)), ())
        ]
    shared: dict[int, int] = {}
    for condition in conditions:
        for earlier in by_condition.get(condition, ()):
            shared[earlier] = shared.get(earlier, 0) + 1
    return [
        earlier
        for earlier, count in shared.items()
        if count == len(earlier_rows[earlier][1]) and earlier_rows[earlier][0] in (None, scope)
    ]


def _row_ids(node: yaml.Node | None, loc: tuple[Any, ...]) -> dict[str, Any]:
    """Just enough of a refused document for `_locate` to name the row at `loc`: its id, read from the node tree
    (the document itself is not built: it was refused)."""
    if len(loc) < 4 or loc[0] != "tables" or loc[2] != "rows" or not isinstance(loc[3], int):
        return {}
    for key in ("tables", loc[1], "rows", loc[3], "id"):
        if isinstance(node, yaml.MappingNode):
            node = next((value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return {}
    if not isinstance(node, yaml.ScalarNode):
        return {}
    return {"tables": {loc[1]: {"rows": {loc[3]: {"id": node.value}}}}}


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


# -- examples, schema, the last good runbook -------------------------------------------------------


@dataclass(frozen=True)
class ExampleResult:
    name: str
    where: str
    problems: tuple[str, ...]
    decision: Decision

    @property
    def passed(self) -> bool:
        return not self.problems


def run_examples(runbook: Runbook) -> list[ExampleResult]:
    """Run the runbook's examples: each example's facts through its table, compared with its `expect`."""
    return [_run_example(runbook, example) for example in runbook.examples]


def _run_example(runbook: Runbook, example: Example) -> ExampleResult:
    doc = example.doc
    problems: list[str] = []
    facts: dict[str, Any] = {}
    tags: dict[str, str] | None = None
    for name, value in doc.facts.items():
        if name == "tags" and isinstance(value, dict):
            tags = {str(k): str(v) for k, v in value.items()}
            continue
        wanted = FACT_TYPES.get(name)
        if wanted is None:
            problems.append(f"unknown fact {name!r}")
        elif value is not None and not _fits(value, wanted):
            problems.append(f"fact {name!r} must be a {wanted.__name__}, got {value!r}")
        else:
            facts[name] = value
    decision = decide(runbook, doc.signal, facts, tags)
    if problems:
        return ExampleResult(doc.name, example.where, tuple(problems), decision)
    expect = doc.expect
    if expect.matched != decision.matched:
        problems.append(f"expected {'a match' if expect.matched else 'no match'}, got {decision.reason}")
    checks: list[tuple[str, Any, Any]] = [
        ("row", expect.row, decision.row),
        ("rows", expect.rows, decision.rows or ([decision.row] if decision.row else [])),
        ("diagnosis", expect.diagnosis, decision.diagnosis),
        ("mode", expect.mode, decision.mode),
        ("actions", expect.actions, [call.kind for call in decision.actions]),
    ]
    problems += [f"{key} is {got!r}, expected {wanted!r}" for key, wanted, got in checks
                 if wanted is not None and got != wanted]  # fmt: skip
    for kind, params in (expect.params or {}).items():
        call = next((c for c in decision.actions if c.kind == kind), None)
        if call is None:
            problems.append(f"no {kind} action to check params of")
            continue
        for name, value in params.items():
            if name not in call.params or not math.isclose(call.params[name], value, rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"{kind}.{name} is {call.params.get(name)!r}, expected {value!r}")
    return ExampleResult(doc.name, example.where, tuple(problems), decision)


def _fits(value: Any, wanted: type) -> bool:
    if wanted is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, wanted)


def runbook_schema() -> dict[str, Any]:
    """The JSON Schema of a runbook file, for editors (`medic runbook schema`)."""
    schema = RunbookDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Medic runbook (decision tables)"
    definitions = schema.get("$defs", {})
    if "ActionDoc" in definitions:
        definitions["ActionDoc"]["properties"]["kind"]["enum"] = list(ACTION_KINDS)
    if "RowDoc" in definitions:
        definitions["RowDoc"]["properties"]["diagnosis"]["enum"] = sorted(set().union(*DIAGNOSES.values()))
    return schema


class RunbookStore:
    """The runbook a running Medic decides with, reloaded when one of its files changes.

    - A refused change never replaces the last good layered runbook: Medic keeps deciding with it.
    - An override refused before any layered runbook was good (at a cold start, or while failing closed) fails
      closed: the base alone, every decision notify-only with the refusal in its rationale (`notify_only`), until
      the override is fixed. Falling back to the base as it is would apply what a restricting override blocks.
    - An invalid base with no runbook to keep raises: Medic cannot decide at all.

    Every refusal is reported to `on_refused` (the runtime logs it and counts it), after the store has settled on
    what it decides with: `notify_only` then says whether that is advice only.
    """

    def __init__(
        self,
        path: str | Path,
        overrides: Sequence[str | Path] = (),
        on_refused: Callable[[RunbookError], None] | None = None,
    ) -> None:
        self.path, self.overrides = Path(path), tuple(Path(o) for o in overrides)
        self.on_refused = on_refused or (lambda error: None)
        self._good: Runbook | None = None
        self._base: Runbook | None = None  # the base alone, while failing closed
        self._stamp: tuple[float, ...] | None = None

    @property
    def loaded(self) -> bool:
        """Whether there is a runbook to decide with (a good one, or the base failing closed)."""
        return self._good is not None

    @property
    def notify_only(self) -> bool:
        """Whether the runbook in use fails closed (an override refused): every decision is advice."""
        return self._good is not None and bool(self._good.refused)

    def _mtimes(self) -> tuple[float, ...]:
        stamps = []
        for path in (self.path, *self.overrides):
            try:
                stamps.append(os.stat(path).st_mtime)
            except OSError:
                stamps.append(-1.0)
        return tuple(stamps)

    def current(self) -> Runbook:
        stamp = self._mtimes()
        if self._good is not None and stamp == self._stamp:
            return self._good
        self._stamp = stamp
        try:
            self._good = load_runbook(self.path, self.overrides)
        except RunbookError as error:
            try:
                if self._good is None or self._good.refused:
                    self._fail_closed(error)
            finally:
                self.on_refused(error)
        assert self._good is not None
        return self._good

    def _fail_closed(self, error: RunbookError) -> None:
        """No good layered runbook to keep: the base alone (as it is now, else the last good one), notify-only;
        raises when there is no base to fall back on."""
        if not self.overrides:
            if self._good is None:
                raise error
            return
        try:
            self._base = load_runbook(self.path)
        except RunbookError:
            if self._base is None:
                raise
        self._good = notify_only(self._base, error)
