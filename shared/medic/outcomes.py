"""What follows a state change of a plan, in one place: its outcome metric, the reply in the card's thread, the card
itself (posted, or updated with a note), and the one-line description of a change these use.

Slack failures never fail the use case: a post that fails is recorded (`slack_failed`), an update or a reply that
fails is logged as a warning. The card and the thread are views; the remediation log is the record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medic.accounts import member_graph_client
from medic.actions.base import PlannedAction
from medic.errors import (
    StateConflict,
)
from medic.log import get_logger
from medic.plan import Plan, SlackRef
from medic.runtime import Runtime


def post_card(plan: Plan, rt: Runtime, now: datetime) -> Plan:
    from slack_sdk.errors import SlackClientError

    from medic.chatops.blocks import plan_blocks, plan_summary

    transport = rt.slack
    if transport is None or not rt.settings.slack_channel:
        return plan
    try:
        ts = transport.post(rt.settings.slack_channel, plan_summary(plan), plan_blocks(plan))
    except SlackClientError as exc:
        rt.ledger.append(plan.id, "slack_failed", {"error": type(exc).__name__, "detail": str(exc)[:500]}, now)
        return plan
    rt.ledger.append(plan.id, "slack_posted", {"channel": rt.settings.slack_channel, "ts": ts}, now)
    from medic.chatops.graph import attach_metric_graph  # the alarm's graph in the card's thread, when available

    attach_metric_graph(plan, rt, rt.settings.slack_channel, ts, now, cloudwatch=member_graph_client(plan, rt))
    try:
        return rt.ledger.save(plan, now, slack=SlackRef(channel=rt.settings.slack_channel, ts=ts))
    except StateConflict:
        return plan  # the plan moved on meanwhile (e.g. auto-applied); the card is in the log


def update_card(plan: Plan, rt: Runtime, note: str) -> None:
    from slack_sdk.errors import SlackClientError

    from medic.chatops.blocks import plan_blocks, plan_summary

    if rt.slack is None or not plan.slack.ts:
        return
    try:
        rt.slack.update(plan.slack.channel, plan.slack.ts, plan_summary(plan), plan_blocks(plan, decided_note=note))
    except SlackClientError as exc:
        get_logger(plan_id=plan.id).warning("slack_update_failed", error=str(exc))


def reply(plan: Plan, rt: Runtime, text: str) -> None:
    from slack_sdk.errors import SlackClientError

    if rt.slack is None or not plan.slack.ts:
        return
    try:
        rt.slack.reply(plan.slack.channel, plan.slack.ts, text)
    except SlackClientError as exc:
        get_logger(plan_id=plan.id).warning("slack_reply_failed", error=str(exc))


def describe_change(action: PlannedAction) -> str:
    """One line for humans: every field that changes, and what AWS still has to do (e.g. a pending request)."""
    fields = ", ".join(
        f"{key} {action.before.get(key)} → {value}"
        for key, value in action.after.items()
        if action.before.get(key) != value
    )
    status = action.observed_after.get("request_status")
    pending = f" (request {status}: AWS applies it after review)" if status else ""
    return f"{action.kind} on {action.target}: {fields or 'no field changes'}{pending}"


def move(
    rt: Runtime,
    plan: Plan,
    state: str,
    now: datetime,
    *,
    say: str | None = None,
    note: str | None = None,
    **changes: Any,
) -> Plan:
    """A state change and what follows every one, in one place: the transition (`Ledger.transition`, with its record
    when `record=` is given), the outcome metric, then, when given, the reply in the card's thread (`say`) and the
    card's note (`note`). The plan as stored."""
    plan = rt.ledger.transition(plan, state, now, **changes)
    rt.emit_outcome(plan)
    if say:
        reply(plan, rt, say)
    if note:
        update_card(plan, rt, note)
    if state == "VERIFIED" or state in ("FAILED", "ROLLED_BACK", "DRIFTED"):
        _promotion_after(plan, rt, now)
    return plan


def _promotion_after(plan: Plan, rt: Runtime, now: datetime) -> None:
    """The outcome's part in graduated autonomy (`medic.promotions.evidence`): evidence, a proposal, a demotion. The
    plan's own state change stands whatever happens here; a failed write is logged as an error (a demotion that
    could not be written leaves the scope promoted: the alarm on Medic's errors must see it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from medic.promotions.evidence import after_outcome

    try:
        after_outcome(plan, rt, now)
    except (ClientError, BotoCoreError) as exc:
        get_logger(plan_id=plan.id).error("promotion_update_failed", state=plan.status, error=str(exc)[:300])
