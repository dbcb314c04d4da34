"""The runbook override a promotion hands to humans: YAML they can commit to make it permanent.

The runbook scopes a row to function-name globs, tags or database ids, not to an alias, so the override adds a copy
of the row in mode auto, scoped to the function (or the database) by its exact name and, for an alias, with one more
condition on the `qualifier` fact. An override's rows come first in the layered table (docs/RUNBOOK.md): the rows the
base table has before the promoted one are copied in front of it, under their own ids (a row with the id of a base
row replaces it), so the layered table keeps the base table's order and only the promoted scope changes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from medic.planning.runbook import Row, Runbook


def override_yaml(
    runbook: Runbook,
    signal: str,
    row_id: str,
    function_name: str | None,
    qualifier: str | None,
    db_instance: str | None,
) -> str:
    """The override document (text) that runs `row_id` in mode auto on this one target."""
    table = runbook.tables[signal]
    rows: list[dict[str, Any]] = []
    for row in table.rows:
        if row.id == row_id:
            rows.append(_promoted(row, function_name, qualifier, db_instance))
            break
        rows.append(_row_doc(row))
    target = f"{function_name}:{qualifier}" if function_name and qualifier else function_name or db_instance or ""
    doc = {
        "runbook": f"{runbook.name}-promoted-{_slug(row_id)}-{_slug(target)}",
        "version": 1,
        "extends": runbook.name,
        "description": f"Medic promotion: row {row_id} runs in mode auto on {target} only.",
        "tables": {signal: {"rows": rows}},
    }
    return yaml.safe_dump(doc, sort_keys=False, width=100)


def _promoted(row: Row, function_name: str | None, qualifier: str | None, db_instance: str | None) -> dict[str, Any]:
    doc = _row_doc(row)
    scope = dict(doc.pop("scope", {}) or {})
    when = list(doc["when"])
    if function_name:
        scope["functions"] = [function_name]
        if qualifier:
            when.append(f"qualifier == {qualifier!r}")
    elif db_instance:
        scope["databases"] = [db_instance]
    target = f"{function_name}-{qualifier}" if function_name and qualifier else function_name or db_instance or "x"
    doc.pop("id")
    return {"id": f"{row.id}-auto-{_slug(target)}"[:120], "scope": scope, **doc, "when": when, "mode": "auto"}


def _row_doc(row: Row) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": row.id}
    if row.scope is not None:
        scope: dict[str, Any] = {}
        if row.scope.functions:
            scope["functions"] = list(row.scope.functions)
        if row.scope.tags:
            scope["tags"] = dict(row.scope.tags)
        if row.scope.databases:
            scope["databases"] = list(row.scope.databases)
        doc["scope"] = scope
    doc.update(
        when=[condition.source for condition in row.conditions],
        diagnosis=row.diagnosis,
        mode=row.mode,
        actions=[{"kind": a.kind, "params": {k: _param(e.source) for k, e in a.params.items()}} for a in row.actions],
        rationale=row.rationale,
        verify=row.verify.model_dump(mode="json"),
    )
    return doc


def _param(source: str) -> Any:
    try:
        number = float(source)
    except ValueError:
        return source
    return int(number) if number.is_integer() else number


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
