"""The interactions use case: Slack's request URL (one Lambda Function URL) for the card's buttons and `/medic`.

Slack gives the endpoint 3 s, cold start included, so a click does only verify → authorize → one conditional write
→ enqueue → respond (and replaces the card); the executor does the rest. This module imports nothing heavy at import
time (nor do the medic.chatops pieces it imports): the request models, the ledger (through the runtime), Block Kit and
the safety controls are imported where they are used, and neither triage nor planning (facts, guardrails, costs) nor
Bolt is imported at all.

**Clicks** (`block_actions`): the v0 signature over the raw body (±300 s) before any other work; then the button
(`action_id`, a plan id), the plan, and authorization on IDs only (`medic.chatops.approvals.authorize`). A decision
is one conditional write on `PROPOSED`: of concurrent clicks one wins, the others are told who decided. An approval
is bound to the plan's hash and expires (`EXPIRED`, 410).

**Two-person rule** (`medic.chatops.approvals.approvals_required`): when a plan needs two distinct approvers, or was
triggered by a person (`Plan.triggered_by`, who never approves it alone), each approval is added atomically to the
plan item's `approvals` set: the first is logged as `approval` with `first_of_two`, the card says "1 of 2 approvals"
and keeps its buttons, the plan stays `PROPOSED`; the second distinct approver moves it to `APPROVED`. The same user
twice is refused (403).

**Refusals** are answered with their HTTP status and kept in the remediation log (`medic.chatops.responses`).

**`/medic`** (a slash command: the form carries `command`): `status`, `pause [reason]` / `resume`, `log [function]`,
`explain <plan id>` (their texts: `medic.chatops.commands`, imported at the first command), answered ephemerally in
the HTTP response.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from medic.chatops import PLAN_ID
from medic.chatops.approvals import add_approval, approvals_required, authorize
from medic.chatops.responses import (
    REFUSALS_LOGGED_PER_MINUTE,
    HandledRequest,
    fresh_response_url,
    http_response,
    log_refusal,
    refuse_on_plan,
    show_card,
    tell_clicker,
)
from medic.clock import iso, parse_iso
from medic.errors import MedicError, SlackRequestRefused, StateConflict
from medic.log import get_logger

if TYPE_CHECKING:
    from medic.chatops.requests import BlockActionsPayload
    from medic.plan import Plan
    from medic.runtime import Runtime

#: The use case, and names that moved to medic.chatops (issue 20) but are still imported from here.
__all__ = [
    "PLAN_ID",
    "REFUSALS_LOGGED_PER_MINUTE",
    "add_approval",
    "approvals_required",
    "authorize",
    "fresh_response_url",
    "handle_interaction",
]


# -- the endpoint ----------------------------------------------------------------------------------


def handle_interaction(event: Mapping[str, Any], rt: Runtime) -> dict[str, Any]:
    """A Function URL event from Slack (a button click or `/medic`) → verified, authorized, decided, answered."""
    from medic.chatops.requests import function_url_body, parse_form

    now = rt.clock.now()
    context = event.get("requestContext") or {}
    http = context.get("http") if isinstance(context, Mapping) else None
    request = HandledRequest(
        source_ip=str(http.get("sourceIp", "")) if isinstance(http, Mapping) else "",
        user_agent=str((event.get("headers") or {}).get("user-agent", ""))[:200],
        raw_size=len(event.get("body") or ""),
    )
    try:
        request.headers, request.body = function_url_body(event)
        _verify(request, rt)
        request.signed = True
        form = parse_form(request.body)
        if "command" in form:
            return _command(form, request, rt, now)
        return _click(form, request, rt, now)
    except SlackRequestRefused as refused:
        get_logger(use_case="interactions").warning(
            "interaction_refused", status=refused.status, reason=refused.reason, user=request.user
        )
        log_refusal(rt, request, refused, now)
        return http_response(refused.status, {"text": refused.reason})


def _verify(request: HandledRequest, rt: Runtime) -> None:
    """Slack's signature, checked with the cached signing secret and, when it fails, once more with the secret read
    again: a secret rotated in Secrets Manager is in force at the first click after the rotation."""
    from medic.chatops.requests import verify_signature

    try:
        verify_signature(request.headers, request.body, rt.signing_secret)
    except SlackRequestRefused as refused:
        reread = rt.reread_signing_secret() if refused.status == 401 else None
        if reread is None:
            raise
        verify_signature(request.headers, request.body, reread)


# -- clicks ----------------------------------------------------------------------------------------


def _click(form: Mapping[str, str], request: HandledRequest, rt: Runtime, now: datetime) -> dict[str, Any]:
    from medic.chatops.requests import (
        APPROVE_ACTION_ID,
        PROMOTE_ACTION_ID,
        PROMOTE_REJECT_ACTION_ID,
        REJECT_ACTION_ID,
        parse_block_actions,
    )

    payload = parse_block_actions(form)
    request.user = payload.user.id
    request.channel = payload.channel.id if payload.channel else ""
    request.response_url = payload.response_url
    action = payload.actions[0]
    if action.action_id in (PROMOTE_ACTION_ID, PROMOTE_REJECT_ACTION_ID):  # a promotion card (medic.promotions)
        from medic.usecases.promote import decide_promotion

        return decide_promotion(payload, request, rt, now)
    if action.action_id not in (APPROVE_ACTION_ID, REJECT_ACTION_ID):
        raise SlackRequestRefused(400, f"unknown action_id {action.action_id[:64]!r}")
    if not PLAN_ID.fullmatch(action.value):
        raise SlackRequestRefused(400, f"the button's value {action.value[:64]!r} is not a plan id")
    request.plan_id = action.value
    plan = rt.ledger.get(action.value)
    if plan is None:
        raise SlackRequestRefused(404, f"no plan {action.value}")

    refusal = authorize(payload, plan, rt)
    if refusal:
        return refuse_on_plan(plan, request, rt, now, 403, refusal, action.action_id)
    if plan.status == "PROPOSED" and plan.expires_at and now > parse_iso(plan.expires_at):
        return _expire(plan, payload, request, rt, now)
    if action.action_id == REJECT_ACTION_ID:
        return _decide(plan, "REJECTED", payload, request, rt, now)
    required, reasons = approvals_required(plan, rt.settings)
    if required > 1 or plan.triggered_by:
        return _approve_with_others(plan, required, reasons, payload, request, rt, now)
    return _decide(plan, "APPROVED", payload, request, rt, now)


def _decide(
    plan: Plan, new_state: str, payload: BlockActionsPayload, request: HandledRequest, rt: Runtime, now: datetime
) -> dict[str, Any]:
    """One conditional write PROPOSED → APPROVED | REJECTED; the loser of a race is told who decided."""
    from medic import queue

    user = payload.user.id
    approve = new_state == "APPROVED"
    data = _click_data(payload, plan, request)
    if approve:
        data.update(approvals=[user], required=1)
    try:  # the decision and its record: one write
        plan = rt.ledger.transition(
            plan, new_state, now, decided_by=[user], record=("approval" if approve else "rejection", data)
        )
    except StateConflict:
        return _already_decided(plan, payload, request, rt, now)
    with rt.ledger.deferred():  # what follows is logged in one write when the card is shown
        if approve:
            queue.enqueue(plan, rt, now)
        show_card(plan, rt, payload, request, now, decided_note=f"{new_state.lower()} by <@{user}> at {iso(now)}")
    get_logger(use_case="interactions", plan_id=plan.id).info("decided", state=new_state, user=user)
    return http_response(200, {"text": f"{new_state} by <@{user}>"})


def _approve_with_others(
    plan: Plan,
    required: int,
    reasons: list[str],
    payload: BlockActionsPayload,
    request: HandledRequest,
    rt: Runtime,
    now: datetime,
) -> dict[str, Any]:
    """The two-person rule: record this approval; the plan moves to APPROVED only with enough distinct approvers."""
    from medic import queue

    user = payload.user.id
    approvals = add_approval(rt, plan.id, user)
    if approvals is None:  # the plan moved on, or this user already approved it
        current = rt.ledger.get(plan.id) or plan
        if current.status != "PROPOSED":
            return _already_decided(current, payload, request, rt, now)
        if _replayed(current, request, rt):
            return refuse_on_plan(current, request, rt, now, 409, "replayed request: this exact click was handled")
        reason = f"{user} has already approved this plan: it needs a second, distinct approver"
        return refuse_on_plan(current, request, rt, now, 403, reason, "approve")
    order = list(dict.fromkeys([*(u for u in plan.decided_by if u in approvals), *sorted(approvals - {user}), user]))
    enough = len(approvals) >= required and bool(approvals - {plan.triggered_by})
    why = reasons or [f"{plan.triggered_by} triggered this plan and cannot approve it alone"]
    data = {
        **_click_data(payload, plan, request),
        "approvals": order,
        "required": max(required, 2),
        "two_person": why,
        "first_of_two": not enough,
    }
    if not enough:
        try:
            plan = rt.ledger.save(plan, now, decided_by=order)  # conditioned on PROPOSED, like every write
        except StateConflict:
            return _already_decided(plan, payload, request, rt, now)
        rt.ledger.append(plan.id, "approval", data, now)
        note = f"1 of 2 approvals: <@{user}> at {iso(now)}; a second approver is needed ({'; '.join(why)})"
        show_card(plan, rt, payload, request, now, approval_note=":one: " + note)
        return http_response(200, {"text": f"Recorded: {note}."})
    try:
        plan = rt.ledger.transition(plan, "APPROVED", now, decided_by=order)
    except StateConflict:
        return _already_decided(plan, payload, request, rt, now)
    rt.ledger.append(plan.id, "approval", data, now)
    queue.enqueue(plan, rt, now)
    who = " and ".join(f"<@{u}>" for u in order)
    show_card(plan, rt, payload, request, now, decided_note=f"approved by {who} at {iso(now)}")
    get_logger(use_case="interactions", plan_id=plan.id).info("decided", state="APPROVED", approvals=order)
    return http_response(200, {"text": f"APPROVED by {who}"})


def _expire(
    plan: Plan, payload: BlockActionsPayload, request: HandledRequest, rt: Runtime, now: datetime
) -> dict[str, Any]:
    try:
        plan = rt.ledger.transition(plan, "EXPIRED", now)
    except StateConflict:
        return _already_decided(plan, payload, request, rt, now)
    rt.ledger.append(
        plan.id,
        "expired",
        {
            "user": payload.user.id,
            "clicked": payload.actions[0].action_id,
            "expires_at": plan.expires_at,
            "request": request.digest,
        },
        now,
    )
    show_card(plan, rt, payload, request, now, decided_note=f"expired at {plan.expires_at}; nothing was changed")
    return tell_clicker(plan, request, rt, now, f"This approval expired at {plan.expires_at}; nothing was changed.")


def _already_decided(
    plan: Plan, payload: BlockActionsPayload, request: HandledRequest, rt: Runtime, now: datetime
) -> dict[str, Any]:
    """The click lost: the plan is no longer PROPOSED. Say who decided (a replay of a handled click is refused)."""
    from medic import queue

    current = rt.ledger.get(plan.id) or plan
    clicked = payload.actions[0].action_id
    if _replayed(current, request, rt):
        return refuse_on_plan(current, request, rt, now, 409, "replayed request: this exact click was handled", clicked)
    if current.status == "EXPIRED":
        reason = f"This approval expired at {current.expires_at}; nothing was changed."
        return refuse_on_plan(current, request, rt, now, 410, reason, clicked)
    if current.status == "DRIFTED":
        reason = "The live state drifted from this plan: nothing was changed; Medic re-proposes from the live state."
        return refuse_on_plan(current, request, rt, now, 409, reason, clicked)
    who = ", ".join(current.decided_by) or "nobody"
    if current.status == "APPROVED" and "enqueued" not in {e.kind for e in rt.ledger.events(current.id)}:
        queue.enqueue(current, rt, now)  # the approving click failed after its write (SQS down): hand the plan over now
        return tell_clicker(current, request, rt, now, f"Already APPROVED (by {who}); handed to the executor now.")
    ignored = {
        "user": payload.user.id,
        "clicked": clicked,
        "status": current.status,
        "decided_by": current.decided_by,
        "request": request.digest,
    }
    rt.ledger.append(current.id, "click_ignored", ignored, now)
    return tell_clicker(current, request, rt, now, f"Already {current.status} (by {who}); your click changed nothing.")


def _replayed(plan: Plan, request: HandledRequest, rt: Runtime) -> bool:
    """Whether this exact request (same signature) was handled before: Slack sends a click once."""
    return any(event.data.get("request") == request.digest for event in rt.ledger.events(plan.id))


def _click_data(payload: BlockActionsPayload, plan: Plan, request: HandledRequest) -> dict[str, Any]:
    return {
        "user": payload.user.id,
        "team": payload.team.id,
        "api_app_id": payload.api_app_id,
        "channel": payload.channel.id if payload.channel else "",
        "message_ts": plan.slack.ts,
        "approval_hash": plan.approval_hash,
        "action_ts": payload.actions[0].action_ts,
        "request": request.digest,
    }


# -- /medic ----------------------------------------------------------------------------------------


def _command(form: Mapping[str, str], request: HandledRequest, rt: Runtime, now: datetime) -> dict[str, Any]:
    from medic.chatops.commands import (
        ANSWER_LIMIT,
        USAGE,
        clip,
        escape,
        explain_text,
        log_text,
        set_kill_switch,
        status_text,
    )
    from medic.chatops.requests import parse_slash_command

    command = parse_slash_command(form)
    request.user = command.user_id
    settings = rt.settings
    if settings.slack_team_id and command.team_id != settings.slack_team_id:
        raise SlackRequestRefused(403, f"team {command.team_id} is not this workspace")
    if settings.slack_app_id and command.api_app_id != settings.slack_app_id:
        raise SlackRequestRefused(403, f"app {command.api_app_id} is not Medic")
    words = command.text.split()
    verb = words[0].lower() if words else "help"
    rest = command.text.strip()[len(words[0]) :].strip() if words else ""
    try:
        if verb == "status":
            text = status_text(rt, now)
        elif verb in ("pause", "resume"):
            text = set_kill_switch(verb, rest, command, request, rt, now)
        elif verb == "log":
            text = log_text(rt, now, words[1] if len(words) > 1 else None)
        elif verb == "explain":
            text = explain_text(rt, words[1] if len(words) > 1 else "")
        else:
            text = USAGE if verb == "help" else f"Unknown command `{escape(verb[:40])}`.\n{USAGE}"
    except MedicError as exc:
        text = f":warning: {escape(str(exc))}"
    get_logger(use_case="interactions", command=verb, user=command.user_id).info("slash_command")
    return http_response(200, {"response_type": "ephemeral", "text": clip(text, ANSWER_LIMIT)})
