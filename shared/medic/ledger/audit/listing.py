"""`medic log list`: which plans there were (touched since when, in which state, about which function), as rows or
an aligned table, and the plans' items that cannot be read. Also `--since` as the log's ISO timestamp:

    >>> parse_since("24h", datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    '2026-11-21T12:00:00.000Z'
    >>> parse_since("2026-11-22T05:00+01:00", datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    '2026-11-22T04:00:00.000Z'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from medic.clock import iso
from medic.errors import InputError
from medic.plan import Plan
from medic.vocabulary import PLAN_STATES

if TYPE_CHECKING:
    from medic.ledger.store import Ledger, UnreadableItem, UnreadableRecord

CLI = "command line"
"""The source an `InputError` names for a bad argument of `medic log`."""
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DECIDED = frozenset({"APPROVED", "APPLYING", "APPLIED", "VERIFIED", "FAILED", "ROLLED_BACK", "DRIFTED"})


def parse_since(text: str, now: datetime, *, field: str = "--since") -> str:
    """`--since` as the log's ISO timestamp: a duration back from `now` (`30m`, `24h`, `7d`, `2w`) or an ISO
    date/time (`2026-11-22`, `2026-11-22T05:00Z`; no zone means UTC). Anything else is an `InputError`."""
    value = text.strip()
    duration = _DURATION.match(value.lower())
    if duration:
        return iso(now - timedelta(seconds=int(duration.group(1)) * _SECONDS[duration.group(2)]))
    try:
        when = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        problem = f"{text!r} is neither a duration (30m, 24h, 7d, 2w) nor an ISO date/time (2026-11-22T05:00Z)"
        raise InputError(field=field, source=CLI, problem=problem) from None
    return iso(when if when.tzinfo else when.replace(tzinfo=UTC))


def list_plans(
    ledger: Ledger, *, function: str | None = None, since: str | None = None, state: str | None = None
) -> list[Plan]:
    """Plans newest first, touched (created or changed: `updated_at`) at or after `since` (ISO), optionally only
    those in `state` or about `function` (`list_plans_and_problems` also names the items that cannot be read).

    With `state` this is one query of the `by_state` index (whose sort key is `updated_at`). Without it, a full
    scan of the plans table (`Ledger.scan_plans`) filtered here: fine at Medic's volume (one plan per alarm
    transition, storms attach); a by-function index would serve `--function` when that stops being true.
    """
    return list_plans_and_problems(ledger, function=function, since=since, state=state)[0]


def list_plans_and_problems(
    ledger: Ledger, *, function: str | None = None, since: str | None = None, state: str | None = None
) -> tuple[list[Plan], list[UnreadableItem]]:
    """`list_plans`, and the plan items in range that cannot be read (listed whatever their function: an
    unreadable item says nothing about what it is about)."""
    if state is not None:
        wanted = state.upper()
        if wanted not in PLAN_STATES:
            raise InputError(
                field="--state", source=CLI, problem=f"unknown state {state!r}; one of {', '.join(PLAN_STATES)}"
            )
        plans, unreadable = ledger.query_state(wanted, since=since)
    else:
        plans, unreadable = ledger.scan_plans()
        plans = [plan for plan in plans if since is None or plan.updated_at >= since]
    if function:
        plans = [plan for plan in plans if function in functions_of(plan)]
    return sorted(plans, key=lambda plan: (plan.created_at, plan.id), reverse=True), unreadable


def unreadable_lines(items: Sequence[UnreadableItem | UnreadableRecord]) -> list[str]:
    """One line per item of the log that cannot be read: which, and why."""
    lines = []
    for item in items:
        if hasattr(item, "key"):
            lines.append(f"UNREADABLE plan item {item.key}: {item.problem}")
        else:
            lines.append(
                f"UNREADABLE record {item.plan_id}#{item.seq if item.seq is not None else '?'}: {item.problem}"
            )
    return lines


def functions_of(plan: Plan) -> set[str]:
    """The functions a plan is about: its target's, and its actions' (a database plan acts on its consumers)."""
    names = {action.function_name for action in plan.actions if action.function_name}
    if plan.function_name:
        names.add(plan.function_name)
    return names


def who_decided(plan: Plan) -> str | None:
    """The Slack user id(s) that approved or rejected the plan; "medic (auto)" for an auto-mode plan Medic approved
    itself; None while nobody has (or nobody had to)."""
    if plan.decided_by:
        return ", ".join(plan.decided_by)
    if plan.mode == "auto" and plan.status in _DECIDED:
        return "medic (auto)"
    return None


def plan_row(plan: Plan) -> dict[str, Any]:
    """One plan as `log list --json` prints it (the table shows the same fields)."""
    return {
        "id": plan.id,
        "created_at": plan.created_at,
        "updated_at": plan.updated_at,
        "state": plan.status,
        "signal": plan.signal,
        "diagnosis": plan.diagnosis,
        "target": plan.target,
        "rule": plan.rule,
        "mode": plan.mode,
        "decided_by": who_decided(plan),
        "alarm_name": plan.alarm_name,
        "functions": sorted(functions_of(plan)),
    }


def plans_table(plans: Sequence[Plan]) -> str:
    """An aligned table for the terminal: id, created, state, signal, diagnosis, target, rule, decided by."""
    header = ("ID", "CREATED", "STATE", "SIGNAL", "DIAGNOSIS", "TARGET", "RULE", "DECIDED BY")
    rows = [
        (
            plan.id,
            plan.created_at,
            plan.status,
            plan.signal,
            plan.diagnosis or "-",
            plan.target,
            plan.rule or "-",
            who_decided(plan) or "-",
        )
        for plan in plans
    ]
    text = table([header, *rows])
    return text + ("\n(no plans)" if not rows else f"\n{len(rows)} plan{'s' if len(rows) != 1 else ''}")


def table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
