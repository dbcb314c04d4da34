"""The promotion card: the evidence that a runbook row may run in mode auto on one target (each plan, when, who
approved it, how it was verified), how to backtest the row, the runbook override to commit, and Promote / Keep
approving buttons for two distinct approvers (`medic.usecases.promote`)."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from medic.chatops.requests import PROMOTE_ACTION_ID, PROMOTE_REJECT_ACTION_ID

SECTION_TEXT_LIMIT = 3000


def override_reply(proposal: dict[str, Any]) -> str:
    """The thread reply that carries the override, whole (a message holds far more than a card's section)."""
    return f"Runbook override for `{proposal['key']}`:\n```{proposal['override']}```"


def promotion_summary(proposal: dict[str, Any]) -> str:
    return f"Promote {proposal['row']} to auto on {proposal['target']}? ({len(proposal['evidence'])} verified plans)"


def promotion_blocks(proposal: dict[str, Any], state: str, *, note: str = "") -> list[Block]:
    """The card for `proposal` in `state` (PROPOSED shows the buttons; `note` says who decided or what happened)."""
    row, target = proposal["row"], proposal["target"]
    lines = [
        f"• `{e['plan_id']}` made {e['created_at'][:16]}Z, approved by {', '.join(f'<@{u}>' for u in e['approved_by'])}"
        f", {e['outcome']} {e['verified_at'][:16]}Z" + (f" ({e['note']})" if e.get("note") else "")
        for e in proposal["evidence"]
    ]
    backtest = proposal.get("backtest") or ""
    texts = [
        f"The last {len(lines)} plans of row *{row}* on *{target}* were approved by humans and verified, with no "
        f"failure, rollback or drift since. Promoted, Medic applies this row on {target} without asking (within the "
        "guardrails); any failure, rollback or drift demotes it back to approve.\n" + "\n".join(lines),
        "To make it permanent, commit the runbook override in this thread (also `medic promotions show "
        f"'{proposal['key']}'`): a copy of the row in mode auto, scoped to {target} only; check it with "
        "`medic runbook check --override FILE`.",
    ]
    if backtest:
        texts.append(
            f"Backtest the row on this function's alarm history from a shell with AWS access: `{backtest}` "
            "(in the developer package `medic_tools`, not in the Lambda layer)."
        )
    blocks: list[Block] = [HeaderBlock(text=f"Promote {row} to auto on {target}?"[:150])]
    blocks += [SectionBlock(text=MarkdownTextObject(text=_clip(text))) for text in texts]
    if state == "PROPOSED" and not note.startswith("promoted"):
        confirm = ConfirmObject(
            title="Promote to auto?",
            text=_clip(f"{row} will be applied on {target} without approval.", 300),
            confirm="Promote",
            deny="Cancel",
        )
        buttons = [
            ButtonElement(
                text="Promote", action_id=PROMOTE_ACTION_ID, value=proposal["key"], style="primary", confirm=confirm
            ),
            ButtonElement(
                text="Keep approving", action_id=PROMOTE_REJECT_ACTION_ID, value=proposal["key"], style="danger"
            ),
        ]
        blocks.append(ActionsBlock(block_id=f"promote:{proposal['key']}"[:255], elements=buttons))
    status = f"*{state}* · two distinct approvers promote it · `{proposal['key']}`"
    if note:
        status += f" · {note}"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(status, 2000))]))
    for block in blocks:
        block.validate_json()
    return blocks


def _clip(text: str, limit: int = SECTION_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
