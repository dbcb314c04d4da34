"""The `/medic` slash command's answers: `status` (open plans, the kill switch, the circuit breaker, freeze windows),
`pause [reason]` / `resume` (the kill switch; approvers only; logged with `set_control`), `log [function]` (recent
remediations) and `explain <plan id>`, as ephemeral mrkdwn text. Which command a request is, and the request's
checks, are the use case's (medic.usecases.interactions)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from medic.chatops import PLAN_ID
from medic.chatops.approvals import is_approver
from medic.clock import iso
from medic.log import get_logger

if TYPE_CHECKING:
    from medic.chatops.requests import SlashCommand
    from medic.chatops.responses import HandledRequest
    from medic.runtime import Runtime

#: An ephemeral answer stays well under Slack's message limits.
ANSWER_LIMIT = 3900
#: `/medic log`: how far back, how many lines.
LOG_DAYS, LOG_LINES = 7, 10
USAGE = (
    "*/medic* — `status` (open plans, kill switch, circuit breaker) · `pause [reason]` / `resume` (the kill "
    "switch; approvers only) · `log [function]` (recent remediations) · `explain <plan id>`"
)


def status_text(rt: Runtime, now: datetime) -> str:
    """Open plans, the kill switch, the circuit breaker (`medic.safety.describe`) and freeze windows."""
    from medic.safety import describe

    state = describe(rt.safety, now)
    switch, breaker = state["kill_switch"], state["circuit_breaker"]
    lines = ["*Medic status*" + (" · dry run: plans are proposals only" if rt.settings.dry_run else "")]
    if switch["on"]:
        lines.append(
            f":octagonal_sign: Kill switch *ON* (by {_who(switch['by'])} at {switch['at'] or '?'}): "
            f"{escape(switch['reason']) or 'no reason given'}. Nothing is applied."
        )
    else:
        lines.append(":large_green_circle: Kill switch off")
    since = breaker["reset_at"] or "the start"
    if breaker["open"]:
        lines.append(
            f":red_circle: Circuit breaker *OPEN*: {breaker['failures_since_reset']} remediations failed "
            f"since {since} (threshold {breaker['threshold']}); Medic only notifies until "
            "`medic control breaker-reset`"
        )
    else:
        lines.append(
            f":large_green_circle: Circuit breaker closed ({breaker['failures_since_reset']} of "
            f"{breaker['threshold']} failures since {since})"
        )
    active = [w["window"] for w in state["freeze_windows"] if w["active"]]
    if active:
        lines.append(f":snowflake: Inside the freeze window {', '.join(active)}: nothing is applied")
    plans = [p for s in ("PROPOSED", "APPROVED", "APPLYING", "APPLIED") for p in rt.ledger.by_state(s)]
    plans.sort(key=lambda p: p.created_at, reverse=True)
    lines.append(f"*Open plans* ({len(plans)})" if plans else "*Open plans*: none")
    for plan in plans[:15]:
        pending = (
            f" · 1 of 2 approvals (<@{plan.decided_by[0]}>)" if plan.status == "PROPOSED" and plan.decided_by else ""
        )
        lines.append(
            f"• `{plan.id}` *{plan.status}* {plan.signal} on `{escape(plan.target)}` · {plan.diagnosis or '-'}{pending}"
        )
    if len(plans) > 15:
        lines.append(f"… and {len(plans) - 15} more (`medic log list --state PROPOSED`)")
    return "\n".join(lines)


def set_kill_switch(
    verb: str, reason: str, command: SlashCommand, request: HandledRequest, rt: Runtime, now: datetime
) -> str:
    """`/medic pause [reason]` / `/medic resume`: approvers only; both outcomes are in the kill switch's chain."""
    from medic.safety import KILL_SWITCH_KEY

    allowed, why = is_approver(command.user_id, rt)
    if not allowed:
        rt.ledger.append(
            KILL_SWITCH_KEY,
            "control_refused",
            {"user": command.user_id, "command": verb, "reason": why, "request": request.digest},
            now,
        )
        get_logger(use_case="interactions").warning("control_refused", user=command.user_id, command=verb)
        return f":no_entry: Only Medic's approvers can {verb} Medic ({escape(why)}). This attempt is logged."
    enabled = verb == "pause"
    reason = reason[:500] or ("paused from Slack" if enabled else "resumed from Slack")
    rt.safety.set_control(KILL_SWITCH_KEY, enabled, command.user_id, reason, now)
    if enabled:
        return (
            f":octagonal_sign: Medic is paused: kill switch *ON* (by <@{command.user_id}>: {escape(reason)}). "
            "Nothing is applied until `/medic resume`; a plan being applied stops at its next step."
        )
    text = f":arrow_forward: Medic resumed: kill switch off (by <@{command.user_id}>)."
    if rt.settings.kill_switch:
        text += " MEDIC_KILL_SWITCH is still set in the environment, so nothing is applied until it is removed."
    return text


def log_text(rt: Runtime, now: datetime, function: str | None) -> str:
    """Recent remediations (plans of the last days that proposed, applied or refused a change), newest first."""
    from medic.ledger import audit
    from medic.vocabulary import PLAN_STATES

    if function is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", function):
        return "Usage: `/medic log [function]` (a Lambda function name)"
    since = iso(now - timedelta(days=LOG_DAYS))
    states = [state for state in PLAN_STATES if state not in ("NOOP", "SUPERSEDED")]
    plans = [
        plan for state in states for plan in audit.list_plans(rt.ledger, function=function, since=since, state=state)
    ]
    plans.sort(key=lambda plan: (plan.created_at, plan.id), reverse=True)
    scope = f" of `{function}`" if function else ""
    if not plans:
        return f"No remediations{scope} in the last {LOG_DAYS} days."
    lines = [f"*Recent remediations*{scope} (last {LOG_DAYS} days, newest first)"]
    for plan in plans[:LOG_LINES]:
        changes = "; ".join(f"{a.kind} {a.target}" for a in plan.changes) or "no change"
        lines.append(
            f"• `{plan.id}` {plan.created_at[:16]}Z *{plan.status}* {plan.signal} on `{escape(plan.target)}`"
            f" · {plan.diagnosis or '-'} · {escape(changes)} · decided by "
            f"{escape(audit.who_decided(plan) or '-')}"
        )
    if len(plans) > LOG_LINES:
        lines.append(f"… and {len(plans) - LOG_LINES} more (`medic log list --since {LOG_DAYS}d`)")
    return "\n".join(lines)


def explain_text(rt: Runtime, plan_id: str) -> str:
    """`medic explain` of a plan in the log: the decision trace, the changes and the guardrails."""
    if not PLAN_ID.fullmatch(plan_id):
        return "Usage: `/medic explain <plan id>` (e.g. `p-0123456789abcdef`, as on the card)"
    plan = rt.ledger.get(plan_id)
    if plan is None:
        return f"No plan `{plan_id}` in the remediation log."
    from medic.planning.explain import explain_plan

    return f"*Plan `{plan.id}`*\n```{escape(clip(explain_plan(plan), ANSWER_LIMIT - 200))}```"


def _who(user: str) -> str:
    return f"<@{user}>" if re.fullmatch(r"[UW][A-Z0-9]{2,}", user) else escape(user or "?")


def escape(text: str) -> str:
    """Slack mrkdwn control characters, so that logged text cannot mention or link anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters (the last one an ellipsis when cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
