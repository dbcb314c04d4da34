"""A click on a promotion card (`medic.chatops.promotion_card`): two distinct approvers promote a runbook row to mode
auto on one target; one "Keep approving" rejects the proposal (its evidence then starts again).

The request was verified (Slack's signature) by the interactions use case; here: the workspace, the app, the card the
click comes from, the approver list, the proposal still open and still what the card shows (its hash on the chain),
then each approval added atomically (`Ledger.add_promotion_approval`) and logged on the promotion's chain with the
proposal's hash and the request's digest; the second distinct approver moves it to ACTIVE (`promotion_approved`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from medic.chatops.approvals import foreign, is_approver
from medic.chatops.responses import http_response
from medic.clock import iso
from medic.errors import SlackRequestRefused
from medic.ledger.keys import PROMOTION_PREFIX
from medic.log import get_logger
from medic.promotions.scope import PROMOTION_APPROVERS, standing

if TYPE_CHECKING:
    from medic.chatops.requests import BlockActionsPayload
    from medic.chatops.responses import HandledRequest
    from medic.runtime import Runtime


def decide_promotion(
    payload: BlockActionsPayload, request: HandledRequest, rt: Runtime, now: datetime
) -> dict[str, Any]:
    """Promote (or keep approving) the scope the clicked button names."""
    from medic.chatops.requests import PROMOTE_ACTION_ID

    action = payload.actions[0]
    key = action.value
    if not key.startswith(PROMOTION_PREFIX) or len(key) > 400:
        raise SlackRequestRefused(400, f"the button's value {key[:64]!r} is not a promotion")
    item = rt.ledger.promotion_item(key)
    if item is None:
        raise SlackRequestRefused(404, f"no promotion {key[:120]}")
    why = _unauthorized(payload, item, rt)
    if why:
        raise SlackRequestRefused(403, why)
    if item.get("promotion_state") != "PROPOSED":
        return http_response(200, {"text": f"Already {item.get('promotion_state')}; your click changed nothing."})
    found = standing(key, rt.ledger.events(key), rt.ledger.head(key), rt.settings)
    if (
        found.state != "PROPOSED"
        or found.proposal is None
        or found.proposal["proposal_hash"] != item.get("proposal_hash")
    ):
        raise SlackRequestRefused(409, f"the proposal no longer matches its log ({found.problem or found.state})")
    proposal, user = found.proposal, payload.user.id
    click = {
        "user": user,
        "team": payload.team.id,
        "api_app_id": payload.api_app_id,
        "channel": payload.channel.id if payload.channel else "",
        "message_ts": item.get("slack_ts", ""),
        "proposal_hash": proposal["proposal_hash"],
        "action_ts": action.action_ts,
        "request": request.digest,
    }
    log = get_logger(use_case="interactions", promotion=key)
    if action.action_id != PROMOTE_ACTION_ID:
        if not rt.ledger.move_promotion(
            key, "PROPOSED", "REJECTED", ("promotion_rejected", click), now, since=iso(now), updated_at=iso(now)
        ):
            return http_response(200, {"text": "Already decided; your click changed nothing."})
        _show(rt, item, proposal, "REJECTED", f"kept in mode approve by <@{user}> at {iso(now)}")
        log.info("promotion_rejected", user=user)
        return http_response(200, {"text": f"Kept in mode approve by <@{user}>."})
    approvals = rt.ledger.add_promotion_approval(key, user, proposal["proposal_hash"])
    if approvals is None:
        raise SlackRequestRefused(
            403, f"{user} has already approved this promotion: it needs a second, distinct approver"
        )
    rt.ledger.append(key, "promotion_approval", click, now)
    if len(approvals) < PROMOTION_APPROVERS:
        note = f"1 of {PROMOTION_APPROVERS} approvals: <@{user}> at {iso(now)}; a second approver is needed"
        _show(rt, item, proposal, "PROPOSED", note)
        return http_response(200, {"text": f"Recorded: {note}."})
    order = sorted(approvals)
    promoted = {"approvals": order, "proposal_hash": proposal["proposal_hash"], "key": key}
    if not rt.ledger.move_promotion(
        key, "PROPOSED", "ACTIVE", ("promotion_approved", promoted), now, updated_at=iso(now)
    ):
        return http_response(200, {"text": "Already decided; your approval is recorded."})
    who = " and ".join(f"<@{u}>" for u in order)
    _show(rt, item, proposal, "ACTIVE", f"promoted by {who} at {iso(now)}")
    log.info("promoted", approvals=order)
    return http_response(
        200, {"text": f"PROMOTED by {who}: {proposal['row']} now runs in mode auto on {proposal['target']}."}
    )


def _unauthorized(payload: BlockActionsPayload, item: dict[str, Any], rt: Runtime) -> str:
    """Why this click may not decide this promotion ("" when it may): on IDs only, as for a plan."""
    settings = rt.settings
    if why := foreign(payload, rt):
        return why
    channel = payload.channel.id if payload.channel else ""
    if not item.get("slack_ts") or channel != item.get("slack_channel"):
        return "the click does not come from the promotion's card"
    if (payload.message.ts if payload.message else "") != item.get("slack_ts"):
        return "the click does not come from the promotion's card"
    if settings.dry_run:
        return "dry run: nothing is ever applied, nothing is promoted"
    allowed, why = is_approver(payload.user.id, rt)
    return "" if allowed else why


def _show(rt: Runtime, item: dict[str, Any], proposal: dict[str, Any], state: str, note: str) -> None:
    from slack_sdk.errors import SlackClientError

    from medic.chatops.promotion_card import promotion_blocks, promotion_summary

    if rt.slack is None or not item.get("slack_ts"):
        return
    try:
        rt.slack.update(
            str(item["slack_channel"]),
            str(item["slack_ts"]),
            promotion_summary(proposal),
            promotion_blocks(proposal, state, note=note),
        )
    except SlackClientError as exc:
        get_logger(promotion=item.get("plan_id")).warning("slack_update_failed", error=str(exc))
