"""Who may decide a plan from Slack, and how many must: authorization of a click on IDs only (workspace, app, the
plan's channel and card, the approver list or the approver user group), the plan still being what was proposed, and
the two-person rule (`approvals_required`, each approval added atomically by `add_approval`).

**Two-person rule**: plans with a high-risk change (`MEDIC_TWO_PERSON_ACTIONS`: quota requests, memory changes and
reserved-concurrency cuts by default) or adding more than `MEDIC_TWO_PERSON_COST_USD` a month need two distinct
approvers, and the person who triggered a manual plan (`Plan.triggered_by`) never approves it alone. Each approval
is added atomically to the plan item's `approvals` set (conditioned on `PROPOSED` and on the user not being in it).

Light at import, like the endpoint that uses it (medic.usecases.interactions): what is heavy is imported where used.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from medic.log import get_logger

if TYPE_CHECKING:
    from medic.chatops.requests import BlockActionsPayload
    from medic.config import Settings
    from medic.plan import Plan
    from medic.runtime import Runtime

#: Per execution environment: the approver user groups' members, each with when it expires.
_GROUPS: WeakKeyDictionary[Runtime, dict[str, tuple[datetime, frozenset[str]]]] = WeakKeyDictionary()


def foreign(payload: BlockActionsPayload, rt: Runtime) -> str:
    """Why this click is not from Medic's app in this workspace ("" when it is): the first check of any card's click
    (a plan's, a promotion's), on IDs only."""
    settings = rt.settings
    if settings.slack_team_id and payload.team.id != settings.slack_team_id:
        return f"team {payload.team.id} is not this workspace"
    if settings.slack_app_id and payload.api_app_id != settings.slack_app_id:
        return f"app {payload.api_app_id} is not Medic"
    return ""


def authorize(payload: BlockActionsPayload, plan: Plan, rt: Runtime) -> str:
    """Why this click may not decide this plan ("" when it may). Authorization is on IDs only, never names."""
    if why := foreign(payload, rt):
        return why
    channel = payload.channel.id if payload.channel else ""
    if plan.slack.channel and channel != plan.slack.channel:
        return f"channel {channel} is not the plan's channel"
    if not plan.slack.ts:
        return "the plan has no card in Slack: a click cannot come from it"
    if (payload.message.ts if payload.message else "") != plan.slack.ts:
        return "the click does not come from the plan's card"
    allowed, why = is_approver(payload.user.id, rt)
    if not allowed:
        return why
    if plan.dry_run:
        return "dry run: this plan can never be applied"
    if not matches_what_was_made(plan, rt):
        return "the plan no longer matches what was proposed"
    return ""


def matches_what_was_made(plan: Plan, rt: Runtime) -> bool:
    """Whether `plan` as read is what triage made and the card shows: its content (`medic.plan.executable_content`)
    hashes to its own approval hash and to the one stored beside it when it was made (an attribute only triage's role
    may write; on an item older than that attribute, the hash in triage's `plan_created` record)."""
    from medic.plan import approval_hash

    current = approval_hash(plan)
    if current != plan.approval_hash:
        return False
    stored = rt.ledger.stored_approval_hash(plan.id)
    if stored is None:
        created = next((e.data for e in rt.ledger.events(plan.id) if e.kind == "plan_created"), None)
        stored = str(created.get("approval_hash") or "") if created else ""
    return stored == current


def add_approval(rt: Runtime, plan_id: str, user: str) -> frozenset[str] | None:
    """Add `user` to the plan item's `approvals` set in one conditional write (the plan still PROPOSED, the user not
    yet in it); the approvals after the write, or None when the condition failed. Concurrent approvals all count."""
    return rt.ledger.add_approval(plan_id, user)


def approvals_required(plan: Plan, settings: Settings) -> tuple[int, list[str]]:
    """How many distinct approvers `plan` needs (1 or 2), and why two: a high-risk change (an action kind in
    `two_person_actions`; `KIND:cut` only when the action lowers its value, or caps what had no cap) or a monthly
    cost above `two_person_cost_usd` (the plan's positive estimated deltas, summed; unknown costs are not counted)."""
    reasons: list[str] = []
    rules = [entry.partition(":") for entry in settings.two_person_actions]
    for action in plan.changes:
        for kind, _, qualifier in rules:
            if action.kind != kind:
                continue
            before, after = action.before.get(action.primary), action.after.get(action.primary)
            if not qualifier:
                reasons.append(f"{action.kind} on {action.target}")
            elif _is_cut(before, after):
                reasons.append(f"{action.kind} cut on {action.target} ({before} → {after})")
    threshold = settings.two_person_cost_usd
    if threshold is not None:
        added = sum(a.cost_monthly_usd for a in plan.changes if a.cost_monthly_usd and a.cost_monthly_usd > 0)
        if added > threshold:
            reasons.append(f"adds ${added:,.2f}/month, above ${threshold:,.2f}")
    return (2 if reasons else 1), reasons


def _is_cut(before: Any, after: Any) -> bool:
    if after is None or isinstance(after, bool) or not isinstance(after, int | float):
        return False
    if before is None:
        return True  # a cap on what had none (e.g. reserved concurrency on an unreserved function)
    return isinstance(before, int | float) and not isinstance(before, bool) and after < before


def is_approver(user: str, rt: Runtime) -> tuple[bool, str]:
    """Whether `user` (an ID) may decide: in `approvers`, or a member of `approver_group`; and why not."""
    settings = rt.settings
    if user in settings.approvers:
        return True, ""
    if settings.approver_group:
        members, problem = group_members(rt, settings.approver_group)
        if user in members:
            return True, ""
        if problem:
            return False, f"user {user} is not an approver (the group {settings.approver_group} is unknown: {problem})"
    return False, f"user {user} is not an approver"


def group_members(rt: Runtime, group: str) -> tuple[frozenset[str], str]:
    """The members of a Slack user group (`usergroups.users.list` through the transport's WebClient), cached per
    environment for `approver_group_ttl_s`. When Slack cannot answer, nobody is a member (fail closed)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from slack_sdk.errors import SlackClientError

    groups = _GROUPS.setdefault(rt, {})
    now = rt.clock.now()
    cached = groups.get(group)
    if cached is not None and now < cached[0]:
        return cached[1], ""
    try:
        transport = rt.slack  # its bot token: read at its first Web API call, once per environment
        if transport is None:
            return frozenset(), "no Slack transport"
        members = frozenset(transport.usergroup_members(group))
    except (SlackClientError, ClientError, BotoCoreError) as exc:
        get_logger(use_case="interactions").warning("approver_group_unavailable", group=group, error=str(exc)[:200])
        return frozenset(), f"{type(exc).__name__}: {str(exc)[:120]}"
    groups[group] = (now + timedelta(seconds=rt.settings.approver_group_ttl_s), members)
    return members, ""
