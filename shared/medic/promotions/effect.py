"""What a promotion does at triage: the decided row, in mode approve, is raised to auto on the promoted target, when
the promotion's chain holds it (`medic.promotions.scope.standing`) and the row is still the one it was granted for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medic.log import get_logger
from medic.promotions.scope import find_row, promotion_key, row_fingerprint, standing
from medic.vocabulary import MODE_ORDER

if TYPE_CHECKING:
    from medic.plan import Plan
    from medic.planning.verdict import Decision
    from medic.runtime import Runtime


def promotion_keys(signal: str, target: str, rt: Runtime) -> list[str]:
    """The promotion items `promotion_reason` may read for an alarm of `signal` on `target`: one per row it could raise
    (mode approve, every action allowed auto), for triage's first read of the log (`Ledger.prefetch`) to carry them.
    A key not carried is read when needed: this list saves a request, it decides nothing."""
    from medic.actions import get_action

    settings, table = rt.settings, rt.runbook.tables.get(signal)
    if settings.promotion_after <= 0 or settings.dry_run or table is None or not target or target == "(none)":
        return []
    return [
        promotion_key(row.id, target)
        for row in table.rows
        if row.mode == "approve"
        and all(MODE_ORDER[get_action(a.kind).max_mode] >= MODE_ORDER["auto"] for a in row.actions)
    ]


def promotion_reason(plan: Plan, decision: Decision, rt: Runtime) -> str | None:
    """Why `decision` runs in mode auto on `plan`'s target (None: it keeps its mode).

    One read (the promotion item) when the decision is approve on one row; the chain is read only for an item that says
    ACTIVE. Never when promotions are off, in dry run, for a row of several (`collect`), or when an action's
    `max_mode` is below auto."""
    from medic.actions import get_action

    settings = rt.settings
    row_id = decision.row
    if settings.promotion_after <= 0 or settings.dry_run or decision.mode != "approve" or not row_id:
        return None
    if len(decision.rows) > 1 or not plan.target or plan.target == "(none)":
        return None
    if any(MODE_ORDER[get_action(call.kind).max_mode] < MODE_ORDER["auto"] for call in decision.actions):
        return None
    key = promotion_key(row_id, plan.target)
    item = rt.ledger.promotion_item(key)
    if not item or item.get("promotion_state") != "ACTIVE":
        return None
    log = get_logger(use_case="triage", plan_id=plan.id, promotion=key)
    head = rt.ledger.head(key)
    found = standing(key, rt.ledger.events(key), head, settings)
    if found.state != "ACTIVE" or found.proposal is None:
        log.warning("promotion_not_bound", item_state="ACTIVE", chain_state=found.state, problem=found.problem)
        return None
    row = find_row(rt.runbook, plan.signal, row_id)
    if row is None or found.proposal.get("row_fingerprint") != row_fingerprint(plan.signal, row):
        log.warning("promotion_row_changed")
        return None
    seq = head.seq if head else 0
    return f"mode raised to auto by {key} (approved by {' and '.join(found.approvers)}; its chain at #{seq})"
