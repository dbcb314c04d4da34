"""When a plan's outcome is known: a VERIFIED plan a human approved counts towards promoting its scope (its row on its
target), and proposes it once there is enough evidence; a FAILED, ROLLED_BACK or DRIFTED one demotes the scope (or,
when it was not promoted, restarts its evidence). Called by `medic.outcomes.move`, after every state change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from medic.clock import iso
from medic.log import get_logger
from medic.promotions.scope import (
    DEMOTING_STATES,
    PROMOTION_APPROVERS,
    find_row,
    promotion_key,
    proposal_hash,
    row_fingerprint,
)
from medic.vocabulary import MODE_ORDER

if TYPE_CHECKING:
    from medic.plan import Plan
    from medic.runtime import Runtime


def after_outcome(plan: Plan, rt: Runtime, now: datetime) -> str:
    """What `plan`'s new state does to its scope's promotion: "proposed", "demoted", "reset" or "" (nothing)."""
    settings = rt.settings
    if settings.promotion_after <= 0 or plan.dry_run or not plan.rule or "+" in plan.rule or not plan.target:
        return ""
    key = promotion_key(plan.rule, plan.target)
    if plan.status in DEMOTING_STATES:
        return _demote(plan, key, rt, now)
    if plan.status == "VERIFIED" and plan.mode == "approve" and _approved_by_humans(plan):
        return _consider(plan, key, rt, now)
    return ""


def _approved_by_humans(plan: Plan) -> bool:
    return bool(plan.decided_by) and "auto" not in plan.decided_by


def evidence(plan: Plan, since: str, rt: Runtime, now: datetime) -> list[Plan]:
    """The VERIFIED plans of `plan`'s row on its target that humans approved, updated after `since` and within the
    window (one query of the `by_state` index, bounded by time), oldest first."""
    floor = iso(now - timedelta(days=rt.settings.promotion_window_days))
    verified = rt.ledger.by_state("VERIFIED", since=max(since, floor))
    same = [
        p
        for p in verified
        if p.rule == plan.rule
        and p.target == plan.target
        and p.mode == "approve"
        and _approved_by_humans(p)
        and not p.dry_run
    ]
    return sorted(same, key=lambda p: p.updated_at)


def _consider(plan: Plan, key: str, rt: Runtime, now: datetime) -> str:
    from medic.actions import get_action

    item = rt.ledger.promotion_item(key) or {}
    state = str(item.get("promotion_state") or "NONE")
    if state in ("PROPOSED", "ACTIVE"):
        return ""  # one open proposal per scope
    row = find_row(rt.runbook, plan.signal, plan.rule or "")
    if row is None or row.mode != "approve":
        return ""
    if any(MODE_ORDER[get_action(a.kind).max_mode] < MODE_ORDER["auto"] for a in row.actions):
        return ""  # an action that is never applied unasked: nothing to promote
    found = evidence(plan, str(item.get("since") or ""), rt, now)
    needed = rt.settings.promotion_after
    if len(found) < needed:
        return ""
    proposal = _proposal(plan, key, found[-needed:], row_fingerprint(plan.signal, row), rt)
    attributes = {
        "row": plan.rule or "",
        "target": plan.target,
        "signal": plan.signal,
        "proposal_hash": proposal["proposal_hash"],
        "updated_at": iso(now),
    }
    if not rt.ledger.put_promotion(key, "PROPOSED", attributes, ("promotion_proposed", proposal), now):
        return ""  # another verifier proposed it first
    get_logger(use_case="verifier", promotion=key).info("promotion_proposed", evidence=len(found[-needed:]))
    _post_card(key, proposal, rt, now)
    return "proposed"


def _proposal(plan: Plan, key: str, plans: list[Plan], fingerprint: str, rt: Runtime) -> dict[str, Any]:
    from medic.promotions.override import override_yaml

    proposal: dict[str, Any] = {
        "key": key,
        "row": plan.rule,
        "target": plan.target,
        "signal": plan.signal,
        "function_name": plan.function_name,
        "qualifier": plan.qualifier,
        "db_instance": plan.db_instance,
        "required": PROMOTION_APPROVERS,
        "after": rt.settings.promotion_after,
        "row_fingerprint": fingerprint,
        "runbook": rt.runbook.name,
        "evidence": [
            {
                "plan_id": p.id,
                "created_at": p.created_at,
                "verified_at": p.updated_at,
                "approved_by": list(p.decided_by),
                "outcome": p.status,
                "note": p.verification.note if p.verification else "",
            }
            for p in plans
        ],
        "backtest": f"medic backtest --function {plan.function_name}" if plan.function_name else "",
        "override": override_yaml(
            rt.runbook, plan.signal, plan.rule or "", plan.function_name, plan.qualifier, plan.db_instance
        ),
    }
    proposal["proposal_hash"] = proposal_hash(proposal)
    return proposal


def _post_card(key: str, proposal: dict[str, Any], rt: Runtime, now: datetime) -> None:
    from slack_sdk.errors import SlackClientError

    from medic.chatops.promotion_card import override_reply, promotion_blocks, promotion_summary

    transport, channel = rt.slack, rt.settings.slack_channel
    if transport is None or not channel:
        return
    try:
        ts = transport.post(channel, promotion_summary(proposal), promotion_blocks(proposal, "PROPOSED"))
    except SlackClientError as exc:
        rt.ledger.append(key, "slack_failed", {"error": type(exc).__name__, "detail": str(exc)[:500]}, now)
        return
    rt.ledger.set_promotion_card(key, channel, ts)
    rt.ledger.append(key, "slack_posted", {"channel": channel, "ts": ts}, now)
    try:
        transport.reply(channel, ts, override_reply(proposal))
    except SlackClientError as exc:
        get_logger(promotion=key).warning("slack_reply_failed", error=str(exc))


def _demote(plan: Plan, key: str, rt: Runtime, now: datetime) -> str:
    item = rt.ledger.promotion_item(key)
    state = str(item.get("promotion_state") or "NONE") if item else "NONE"
    data = {"plan_id": plan.id, "outcome": plan.status, "was": state}
    if state in ("PROPOSED", "ACTIVE"):
        if not rt.ledger.move_promotion(
            key, state, "DEMOTED", ("promotion_demoted", data), now, since=iso(now), updated_at=iso(now)
        ):
            return ""
        get_logger(promotion=key, plan_id=plan.id).info("promotion_demoted", outcome=plan.status, was=state)
        text = (
            f":arrow_down: {plan.rule} on {plan.target} is back to mode approve: plan {plan.id} ended "
            f"{plan.status}." + (" The promotion was in force." if state == "ACTIVE" else " The proposal is withdrawn.")
        )
        _say(item or {}, rt, text)
        from medic import outcomes

        outcomes.reply(plan, rt, text)
        return "demoted"
    if item and str(item.get("since") or "") >= plan.created_at:
        return ""  # already restarted after this plan was made (its FAILED, then its ROLLED_BACK)
    attributes = {
        "row": plan.rule or "",
        "target": plan.target,
        "signal": plan.signal,
        "since": iso(now),
        "updated_at": iso(now),
    }
    rt.ledger.put_promotion(
        key, "RESET", attributes, ("evidence_reset", data), now, expected=("DEMOTED", "REJECTED", "RESET")
    )
    return "reset"


def _say(item: dict[str, Any], rt: Runtime, text: str) -> None:
    """A reply in the promotion card's thread, and the card shown as demoted."""
    from slack_sdk.errors import SlackClientError

    channel, ts = str(item.get("slack_channel") or ""), str(item.get("slack_ts") or "")
    if rt.slack is None or not channel or not ts:
        return
    try:
        rt.slack.reply(channel, ts, text)
    except SlackClientError as exc:
        get_logger(promotion=item.get("plan_id")).warning("slack_reply_failed", error=str(exc))
