"""Unreachable rows: under hit policy `first`, a row that an earlier row always pre-empts is refused at load."""

from __future__ import annotations

import ast
import itertools

from medic.errors import RunbookError
from medic.planning.expr import Expression
from medic.planning.runbook.model import Scope, Table


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
        shadowing = [
            earlier
            for earlier in _subset_rows(row.scope, conditions, by_conditions, by_condition, earlier_rows)
            if earlier_rows[earlier][2] <= names
        ]
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
