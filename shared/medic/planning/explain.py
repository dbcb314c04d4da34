"""`medic explain`: the decision trace, as text. Which row matched, and why each row above it did not.

The same trace is kept in the plan (`Plan.decision.trace`), the remediation log (`decision` event) and, in
short, the Slack card (`trace_lines`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medic.errors import InputError
from medic.facts import FACT_TYPES
from medic.plan import Plan
from medic.planning.verdict import Decision, RowTrace

if TYPE_CHECKING:
    from pydantic import BaseModel

    from medic.planning.runbook import Runbook


def _value(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.4g}"
    return json.dumps(value) if isinstance(value, str) else str(value)


def row_reason(row: RowTrace) -> str:
    """Why a row did (not) match, with the fact values that decided it."""
    if row.matched:
        return "matched: " + "; ".join(f"{c.expression}" for c in row.conditions)
    failed = [c for c in row.conditions if c.result != "true"]
    if not failed:
        return row.note or "not evaluated"
    condition = failed[-1]
    values = ", ".join(f"{name}={_value(value)}" for name, value in condition.facts.items())
    verdict = "is false" if condition.result == "false" else "is unknown"
    text = f"`{condition.expression}` {verdict}" + (f" ({values})" if values else "")
    return text + (f"; {row.note}" if row.note and condition.result == "unknown" else "")


def trace_lines(decision: Decision) -> list[str]:
    """One line per row tried: ✔ for the match(es), ✘ with the failing condition and its facts otherwise."""
    lines = []
    for row in decision.trace:
        mark = "✔" if row.matched else "✘"
        lines.append(f"{mark} {row.row}: {row_reason(row)}")
    return lines


def explain_decision(
    decision: Decision,
    facts: Mapping[str, Any],
    sources: Mapping[str, str] | None = None,
    missing: Mapping[str, str] | None = None,
    runbook: Runbook | None = None,
) -> str:
    """The full explanation: the verdict, the trace, and the facts the table read (with sources): its conditions'
    facts and, given the `runbook`, those the matched rows' parameters read (what sized the change)."""
    out = [f"signal {decision.signal} → table {decision.table or '(none)'} (hit policy {decision.hit_policy})"]
    if decision.matched:
        out.append(f"verdict: {decision.diagnosis} by row {decision.rule}, mode {decision.mode}")
        out.append(
            "actions: "
            + ", ".join(
                f"{c.kind}({', '.join(f'{k}={_value(v)}' for k, v in c.params.items())})" for c in decision.actions
            )
        )
    else:
        out.append(f"verdict: none ({decision.reason})")
    out.append("")
    out.append("rows, in order:")
    for row in decision.trace:
        where = f"  [{row.where}]" if row.where else ""
        out.append(f"  {'✔' if row.matched else '✘'} {row.row}{where}")
        for condition in row.conditions:
            values = ", ".join(f"{name}={_value(value)}" for name, value in condition.facts.items())
            out.append(f"      {condition.result:<7} {condition.expression}" + (f"   ({values})" if values else ""))
        if row.note:
            out.append(f"      note: {row.note}")
    read = _facts_read(decision, runbook)
    if read:
        out.append("")
        out.append("facts read:")
        for name in read:
            source = (sources or {}).get(name) or (missing or {}).get(name) or ""
            out.append(f"  {name} = {_value(facts.get(name))}" + (f"   ← {source}" if source else ""))
    if decision.matched and decision.rationale:
        out.append("")
        out.append("rationale: " + decision.rationale)
    return "\n".join(out)


def _facts_read(decision: Decision, runbook: Runbook | None) -> list[str]:
    """The facts the table read: its conditions' and, given the `runbook`, the matched rows' parameters'."""
    conditions = {name for row in decision.trace for condition in row.conditions for name in condition.facts}
    return sorted(conditions | _parameter_facts(decision, runbook))


def _parameter_facts(decision: Decision, runbook: Runbook | None) -> set[str]:
    table = runbook.tables.get(decision.table or "") if runbook is not None else None
    if table is None:
        return set()
    matched = {row.row for row in decision.trace if row.matched}
    return {
        name
        for row in table.rows
        if row.id in matched
        for action in row.actions
        for expression in action.params.values()
        for name in expression.names
    }


def explain_plan(plan: Plan, runbook: Runbook | None = None) -> str:
    """A plan's explanation: the alarm, the target, the decision, the changes and the guardrails."""
    out = [f"plan {plan.id}: {plan.alarm_name} → {plan.signal} on {plan.target} → {plan.status}"]
    if plan.decision is None:
        out.append(f"no decision: {plan.reason}")
        return "\n".join(out)
    out.append(explain_decision(plan.decision, plan.facts, plan.fact_sources, plan.missing_facts, runbook))
    changes = [a for a in plan.actions if a.kind != "advise"]
    if changes:
        out.append("")
        out.append("changes:")
        for action in changes:
            out.append(f"  {action.kind} {action.target}: {action.before} → {action.after}")
            out.extend(f"    clamped: {clamp}" for clamp in action.clamps)
            if action.cost_basis:
                out.append(f"    cost: {action.cost_basis}")
    for refusal in plan.blocked_by:
        out.append(f"  blocked by {refusal.guard}: {refusal.message}")
    return "\n".join(out)


def decision_json(
    decision: Decision,
    facts: Mapping[str, Any],
    sources: Mapping[str, str] | None = None,
    missing: Mapping[str, str] | None = None,
    runbook: Runbook | None = None,
) -> dict[str, Any]:
    """`explain_decision` as data (`medic explain --json`, docs/RUNBOOK.md "The trace"): the table, the verdict, how
    many rows were evaluated and which matched, the trace, and the facts read with their values and sources."""
    table = runbook.tables.get(decision.table or "") if runbook is not None else None
    return {
        "table": decision.table,
        "hit_policy": decision.hit_policy,
        "verdict": {
            "matched": decision.matched,
            "diagnosis": decision.diagnosis,
            "rule": decision.rule,
            "mode": decision.mode,
            "actions": [{"kind": call.kind, "params": call.params} for call in decision.actions],
            "rationale": decision.rationale or None,
            "reason": decision.reason or None,
        },
        "rows": {
            "in_table": len(table.rows) if table is not None else None,
            "evaluated": len(decision.trace),
            "matched": [row.row for row in decision.trace if row.matched],
        },
        "trace": [row.model_dump(mode="json") for row in decision.trace],
        "facts": {
            name: {"value": facts.get(name), "source": (sources or {}).get(name), "missing": (missing or {}).get(name)}
            for name in _facts_read(decision, runbook)
        },
    }


def plan_explanation_json(plan: Plan, runbook: Runbook | None = None) -> dict[str, Any]:
    """`explain_plan` as data: the alarm, the signal and target, the decision (None with the reason when there was
    none), the plan's changes and what blocked it."""
    decision = None
    if plan.decision is not None:
        decision = decision_json(plan.decision, plan.facts, plan.fact_sources, plan.missing_facts, runbook)
    return {
        "alarm": plan.alarm_name,
        "signal": plan.signal,
        "target": plan.target,
        "signal_reason": None,
        "plan": {
            "id": plan.id,
            "status": plan.status,
            "changes": [
                {
                    "kind": action.kind,
                    "target": action.target,
                    "before": action.before.get(action.primary),
                    "after": action.after.get(action.primary),
                    "changes": {key: [action.before.get(key), action.after.get(key)] for key in action.after},
                    "clamps": list(action.clamps),
                }
                for action in plan.actions
                if action.kind != "advise"
            ],
            "blocked_by": [refusal.model_dump(mode="json") for refusal in plan.blocked_by],
        },
        "no_decision": plan.reason if plan.decision is None else None,
        "decision": decision,
    }


def load_facts_file(path: str | Path) -> dict[str, Any]:
    """A JSON object of facts (name → value) for `medic explain EVENT --facts FILE`, as `facts_schema` describes it
    (docs/SCENARIOS.md, "The facts file"); bad input names the field. The values are returned as given."""
    source = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(field="(root)", source=source, problem=f"cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(field="(root)", source=source, problem=f"not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(field="(root)", source=source, problem="expected a JSON object of fact name → value")
    for name in raw:
        if name not in FACT_TYPES and name not in ("tags",):
            raise InputError(field=name, source=source, problem=f"unknown fact; known: {', '.join(sorted(FACT_TYPES))}")
    from pydantic import ValidationError

    try:
        _facts_file_model().model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise InputError(field=field, source=source, problem=first["msg"]) from None
    return raw


@cache
def _facts_file_model() -> type[BaseModel]:
    """The facts file as a model, built on first use (a hundred fields: not at import, which the functions pay): each
    fact optional, of its expression type (a number, a boolean or a string; null is unknown), and `tags`."""
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {
        name: (kind | None, Field(default=None, title=name)) for name, kind in sorted(FACT_TYPES.items())
    }
    fields["tags"] = (dict[str, str] | None, Field(default=None, description="the target's tags (row scopes)"))
    config = ConfigDict(extra="forbid", strict=True)  # strict: "75" is not the number 75, nor 1 the boolean true
    model: type[BaseModel] = create_model("FactsFile", __config__=config, **fields)
    return model


def facts_schema() -> dict[str, Any]:
    """The JSON Schema of the facts file of `medic explain EVENT.json --facts FILE` (`medic schema facts`)."""
    schema = _facts_file_model().model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Medic facts file (medic explain --facts)"
    schema["description"] = (
        "Fact name → value, for a decision on given facts instead of live AWS. A fact left out, or null, is unknown. "
        'What each fact is and where Medic reads it: docs/RUNBOOK.md, "The facts"; the format: docs/SCENARIOS.md.'
    )
    return schema


def explain_all(plans: Iterable[Plan], runbook: Runbook | None = None) -> str:
    return "\n\n".join(explain_plan(plan, runbook) for plan in plans)
