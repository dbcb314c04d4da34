"""`decide`: one table of a runbook evaluated over the facts, with the trace of every row tried.

A table belongs to a signal; its rows are tried in order (hit policy `first`). A row matches when all its `when`
conditions hold over the facts; a condition that needs an unknown fact does not hold, and the trace says which fact
was missing. Every decision carries that trace: which row matched and why each row above it did not. `render` fills a
rationale's `{fact}` placeholders.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from medic.planning.expr import UnknownFact
from medic.planning.runbook.model import PLACEHOLDER, CompiledAction, Row, Runbook, refusal_notice
from medic.planning.verdict import Decision
from medic.vocabulary import MODE_ORDER


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
            step["note"] = (
                f"a parameter needs the unknown fact {unknown.name!r}"
                if unknown.value is None
                else f"a parameter needs the fact {unknown.name!r}, which {unknown.reason}"
            )
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
            reason += f"; {refusal_notice(runbook)}"
        return Decision.model_validate(
            {
                "signal": signal,
                "table": signal,
                "hit_policy": table.hit_policy,
                "trace": trace,
                "reason": reason,
                "missing_facts": missing_facts,
            }
        )
    first, _ = matched[0]
    changing = [row for row, _ in matched if any(a.kind != "advise" for a in row.actions)]
    deciding = changing or [first]
    mode = min((row.mode for row in deciding), key=MODE_ORDER.__getitem__)
    ids = [row.id for row, _ in matched]
    rationale = "\n\n".join(_fill(row.rationale_parts, facts) for row, _ in matched)
    reason = f"row{'s' if len(ids) > 1 else ''} {', '.join(repr(i) for i in ids)} matched"
    if runbook.refused:  # failing closed: what the rows would do, as advice, and why
        mode = "notify"
        rationale = f"{refusal_notice(runbook)}\n\n{rationale}"
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


def render(template: str, facts: Mapping[str, Any]) -> str:
    """Fill `{fact}` placeholders; unknown facts read "unknown". No attribute access, no format specs."""
    return _fill(tuple(PLACEHOLDER.split(template)), facts)


def _fill(parts: tuple[str, ...], facts: Mapping[str, Any]) -> str:
    """`parts` as `PLACEHOLDER.split` cuts a template: text, fact name, text, ... text."""
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
