"""Loading a runbook: read, validate (pydantic, naming file:line, table, row and field) and compile a base document,
then layer its overrides on it; every table is checked for unreachable rows (`reachability`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from medic import yaml_tree
from medic.actions import UnknownAction, get_action
from medic.errors import RunbookError
from medic.facts import FACT_TYPES
from medic.planning.expr import Expression, ExpressionError, compile_expression
from medic.planning.runbook.documents import RowDoc, RunbookDoc
from medic.planning.runbook.locations import closest, line_index, locate, row_ids
from medic.planning.runbook.model import CompiledAction, Example, Row, Runbook, Scope, Table
from medic.planning.runbook.reachability import _check_reachable
from medic.vocabulary import ACTION_KINDS, DIAGNOSES, MODE_ORDER


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
            self.lines = line_index(node)
        except yaml_tree.YamlRefused as exc:
            table, row, field_name = locate(row_ids(node, exc.path), exc.path)
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
            table, row, field_name = locate(self.raw, loc)
            raise RunbookError(self.where(loc), first["msg"], table=table, row=row, field=field_name) from None

    def where(self, path: tuple[Any, ...]) -> str:
        line = self.lines.get(closest(path, self.lines))
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
        raise RunbookError(
            parsed.where(("extends",)), "an override (with `extends`) needs a base runbook to layer on", field="extends"
        )
    tables: dict[str, Table] = {}
    for signal, table_doc in parsed.doc.tables.items():
        if not table_doc.rows:
            raise RunbookError(
                parsed.where(("tables", signal)), "a table needs at least one row", table=signal, field="rows"
            )
        if table_doc.disable:
            raise RunbookError(
                parsed.where(("tables", signal, "disable")),
                "`disable` belongs in an override",
                table=signal,
                field="disable",
            )
        table = Table(signal, table_doc.hit_policy or "first", tuple(parsed.rows(signal)))
        _check_reachable(table)
        tables[signal] = table
    return Runbook(
        name=parsed.doc.runbook,
        version=parsed.doc.version,
        source=source,
        tables=tables,
        examples=parsed.examples(),
        layers=(source,),
    )


def layer(base: Runbook, text: str, source: str) -> Runbook:
    """Layer an override document on `base`: its rows come first (they take precedence), a row with the id of a
    base row replaces it, `disable` drops base rows, and its examples are added."""
    parsed = _Parsed(text, source)
    if parsed.doc.extends != base.name:
        raise RunbookError(
            parsed.where(("extends",)),
            f"an override must say `extends: {base.name}` (got {parsed.doc.extends!r})",
            field="extends",
        )
    tables = dict(base.tables)
    for signal, table_doc in parsed.doc.tables.items():
        own = parsed.rows(signal)
        below = list(tables[signal].rows) if signal in tables else []
        known = {row.id for row in below}
        for number, row_id in enumerate(table_doc.disable):
            if row_id not in known:
                raise RunbookError(
                    parsed.where(("tables", signal, "disable", number)),
                    f"no row {row_id!r} in the {signal} table of {base.name} to disable",
                    table=signal,
                    field=f"disable.{number}",
                )
        dropped = set(table_doc.disable) | {row.id for row in own}
        rows = tuple(own + [row for row in below if row.id not in dropped])
        if not rows:
            raise RunbookError(parsed.where(("tables", signal)), "the layered table has no rows left", table=signal)
        policy = table_doc.hit_policy or (tables[signal].hit_policy if signal in tables else "first")
        table = Table(signal, policy, rows)
        _check_reachable(table)
        tables[signal] = table
    return Runbook(
        name=base.name,
        version=base.version,
        source=f"{base.source} + {source}",
        tables=tables,
        examples=base.examples + parsed.examples(),
        layers=(*base.layers, source),
    )


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
            raise fail(
                f"{action.kind} is never applied in mode {row.mode}: its most autonomous mode is {impl.max_mode}",
                "mode",
            )
        compiled: dict[str, Expression] = {}
        for name, value in action.params.items():
            try:
                expression = compile_expression(value, FACT_TYPES)
            except ExpressionError as exc:
                shown = f"{exc} in {value!r}" if isinstance(value, str) else str(exc)
                raise fail(shown, "actions", number, "params", name) from None
            if expression.kind != "number":
                raise fail(
                    f"parameter {name} must be a number, got a {expression.kind}", "actions", number, "params", name
                )
            compiled[name] = expression
        actions.append(CompiledAction(kind=action.kind, params=compiled))
    if row.mode == "auto" and all(a.kind == "advise" for a in actions):
        raise fail("an advise-only row has nothing to apply: use mode notify", "mode")
    scope = None
    if row.scope is not None:
        scope = Scope(tuple(row.scope.functions), tuple(sorted(row.scope.tags.items())), tuple(row.scope.databases))
    return Row(
        id=row.id,
        conditions=tuple(conditions),
        diagnosis=row.diagnosis,
        mode=row.mode,
        actions=tuple(actions),
        rationale=row.rationale.strip(),
        verify=row.verify,
        scope=scope,
        where=parsed.where(("tables", signal, "rows", index)),
    )
