"""The Slack messages Medic posts, built with slack_sdk's Block Kit models (limits validated)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from medic.actions.base import PlannedAction
from medic.chatops.requests import APPROVE_ACTION_ID, REJECT_ACTION_ID
from medic.plan import Plan

__all__ = ["APPROVE_ACTION_ID", "REJECT_ACTION_ID", "blocks_json", "console_links", "plan_blocks", "plan_summary"]

SECTION_TEXT_LIMIT = 3000

_STATUS_EMOJI = {
    "PROPOSED": ":hourglass_flowing_sand:",
    "APPROVED": ":white_check_mark:",
    "REJECTED": ":no_entry_sign:",
    "APPLIED": ":wrench:",
    "VERIFIED": ":large_green_circle:",
    "FAILED": ":red_circle:",
    "BLOCKED": ":octagonal_sign:",
    "NOOP": ":information_source:",
    "EXPIRED": ":alarm_clock:",
    "ROLLED_BACK": ":rewind:",
    "DRIFTED": ":twisted_rightwards_arrows:",
}


def _clip(text: str, limit: int = SECTION_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "—" if value is None else str(value)


def plan_blocks(plan: Plan, *, decided_note: str = "", approval_note: str = "") -> list[Block]:
    """The card for a plan: what fired, the diagnosis and why, the change, and (if pending) buttons.

    `decided_note` (who decided, when) removes the buttons; `approval_note` ("1 of 2 approvals") keeps them.
    """
    blocks: list[Block] = [HeaderBlock(text=_clip(f"Medic: {plan.signal} on {plan.target}", 150))]
    datapoints = ", ".join(_number(v) for v in plan.recent_datapoints[-6:]) or "—"
    metric = plan.metric or {}
    fired = (
        f"*Alarm* `{plan.alarm_name}` → ALARM at {plan.state_timestamp}\n"
        f"*Metric* {metric.get('namespace', '?')} {metric.get('name', '?')} ({metric.get('stat', '?')}, "
        f"{metric.get('period', '?')}s): *{_number(plan.alarm_value)}* vs threshold {_number(plan.alarm_threshold)}\n"
        f"*Recent datapoints* {datapoints}\n"
        f"*Account* {plan.account} · *Region* {plan.region}"
    )
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(fired))))
    if plan.diagnosis:
        diagnosis = f"*Diagnosis* `{plan.diagnosis}` (runbook row `{plan.rule}`, mode `{plan.mode}`)\n{plan.rationale}"
    else:
        diagnosis = f"*No action*: {plan.reason}"
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(diagnosis))))
    if plan.decision is not None and plan.decision.trace:
        from medic.planning.explain import trace_lines

        why = "*Why this row* (runbook rows in order)\n" + "\n".join(trace_lines(plan.decision))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(why))]))
    changes = [action for action in plan.actions if action.kind != "advise"]
    if changes:
        lines = ["*Change* (before → after)"]
        for action in changes:
            for key, after in action.after.items():
                lines.append(f"• `{action.target}` {key}: {_number(action.before.get(key))} → *{_number(after)}*")
            lines.extend(f"  _clamped_: {clamp}" for clamp in action.clamps)
            if action.cost_basis:
                lines.append(f"  Cost: {_usd(action.cost_monthly_usd)} — {action.cost_basis}")
        lines.extend(_total_cost(changes))
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip("\n".join(lines)))))
    if plan.template_warnings:  # a change outside its stack's template lasts until the stack's next deploy
        text = "*Outside its CloudFormation template*\n" + "\n".join(
            f":warning: {warning.text()}" for warning in plan.template_warnings
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(text))))
    advice = [action.text for action in plan.actions if action.kind == "advise" and action.text != "advice only"]
    if advice:  # what Medic leaves to a human (e.g. a consumer not opted in): said on the card, not only in the log
        text = "*Left to you*\n" + "\n".join(f"• {line}" for line in advice)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(text))))
    if plan.blocked_by:
        refused = "\n".join(
            f"• `{r.guard}`: {r.message} (limit {r.limit}, observed {r.observed})" for r in plan.blocked_by
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(f"*Blocked by guardrails*\n{refused}"))))
    links = console_links(plan)
    if links:
        text = " · ".join(f"<{url}|{_mrkdwn_escape(label)}>" for label, url in links)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(text, 2000))]))
    blocks.append(DividerBlock())
    if plan.status == "PROPOSED" and changes and not plan.dry_run and not decided_note:
        blocks.append(
            ActionsBlock(
                block_id=f"decide:{plan.id}",
                elements=[
                    ButtonElement(
                        text="Approve",
                        action_id=APPROVE_ACTION_ID,
                        value=plan.id,
                        style="primary",
                        confirm=ConfirmObject(
                            title="Apply this change?",
                            text=_clip("; ".join(a.text for a in changes), 300),
                            confirm="Apply",
                            deny="Cancel",
                        ),
                    ),
                    ButtonElement(text="Reject", action_id=REJECT_ACTION_ID, value=plan.id, style="danger"),
                ],
            )
        )
    status = f"{_STATUS_EMOJI.get(plan.status, '')} *{plan.status}*"
    if plan.dry_run:
        status += " · DRY RUN: proposal only, never applied"
    if approval_note and not decided_note:
        status += f" · {approval_note}"
    if decided_note:
        status += f" · {decided_note}"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(f"{status} · plan `{plan.id}`", 2000))]))
    for block in blocks:
        block.validate_json()
    return blocks


def console_links(plan: Plan) -> list[tuple[str, str]]:
    """(label, URL) of the alarm and the target in the AWS console, for the card."""
    region = plan.region
    if not region:
        return []
    console = f"https://{region}.console.aws.amazon.com"
    links: list[tuple[str, str]] = []
    if plan.alarm_name:
        alarm = quote(plan.alarm_name, safe="")
        links.append(("Alarm in the console", f"{console}/cloudwatch/home?region={region}#alarmsV2:alarm/{alarm}"))
    if plan.function_name:
        path = f"#/functions/{quote(plan.function_name, safe='')}"
        qualifier = plan.qualifier or ""
        if qualifier.isdigit():
            path += f"/versions/{qualifier}"
        elif qualifier and qualifier != "$LATEST":
            path += f"/aliases/{quote(qualifier, safe='')}"
        links.append((f"{plan.target} in Lambda", f"{console}/lambda/home?region={region}{path}"))
    elif plan.db_instance:
        database = quote(plan.db_instance, safe="")
        links.append((f"{plan.db_instance} in RDS", f"{console}/rds/home?region={region}#database:id={database}"))
    return links


def _usd(amount: float | None) -> str:
    from medic.planning.cost import (
        format_usd,  # where a change is priced: medic.planning.cost builds its price models at import
    )

    return format_usd(amount)


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _total_cost(changes: list[PlannedAction]) -> list[str]:
    """The estimated monthly total when several changes were priced; unknown costs are counted out, not guessed."""
    priced = [action for action in changes if action.cost_basis]
    if len(priced) < 2:
        return []
    known = [action.cost_monthly_usd for action in priced if action.cost_monthly_usd is not None]
    unknown = len(priced) - len(known)
    if not known:
        return ["*Total cost*: unknown"]
    total = f"*Total cost*: {_usd(sum(known))}"
    if unknown:
        total += f", not counting {unknown} change{'s' if unknown > 1 else ''} of unknown cost"
    return [total]


def plan_summary(plan: Plan) -> str:
    """The notification text (shown where blocks are not: notifications, screen readers)."""
    what = f"{plan.diagnosis}" if plan.diagnosis else "no action"
    return f"Medic {plan.status}: {plan.signal} on {plan.target} — {what} (plan {plan.id})"


def blocks_json(blocks: list[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]
