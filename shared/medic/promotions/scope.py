"""A promotion's scope (one runbook row on one target), the fingerprint of the row it was granted for, and where a
promotion stands as its hash chain tells it (`standing`): the item in the plans table is only where triage looks
first; what triage acts on is the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medic.ledger.keys import PROMOTION_PREFIX

if TYPE_CHECKING:
    from medic.config import Settings
    from medic.ledger.chain import Head, LogEvent
    from medic.planning.runbook import Row, Runbook

#: Outcomes of a plan that demote its scope (and restart its evidence).
DEMOTING_STATES = ("FAILED", "ROLLED_BACK", "DRIFTED")
#: How many distinct approvers a promotion needs.
PROMOTION_APPROVERS = 2


def promotion_key(row: str, target: str) -> str:
    """The item and chain of one scope: `promotion#<row>#<target>`."""
    return f"{PROMOTION_PREFIX}{row}#{target}"


def find_row(runbook: Runbook, signal: str, row_id: str) -> Row | None:
    table = runbook.tables.get(signal)
    return next((row for row in table.rows if row.id == row_id), None) if table else None


def row_fingerprint(signal: str, row: Row) -> str:
    """What the row decides and does (conditions, scope, diagnosis, actions and their parameters, verification): a
    promotion holds for the row it was granted for, not for whatever a later runbook puts under the same id."""
    body = {
        "signal": signal,
        "id": row.id,
        "when": [c.source for c in row.conditions],
        "diagnosis": row.diagnosis,
        "actions": [
            {"kind": a.kind, "params": {k: e.source for k, e in sorted(a.params.items())}} for a in row.actions
        ],
        "scope": row.scope.describe() if row.scope else "",
        "verify": row.verify.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def proposal_hash(proposal: dict[str, Any]) -> str:
    """The hash approvers approve: the proposal's every field but the hash itself."""
    body = {k: v for k, v in proposal.items() if k != "proposal_hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Standing:
    """Where a promotion stands on its chain: `state` (NONE, PROPOSED, ACTIVE, DEMOTED, REJECTED, RESET), the
    proposal in force, its distinct valid approvers, and `problem` when the chain cannot be trusted."""

    state: str = "NONE"
    proposal: dict[str, Any] | None = None
    approvers: list[str] = field(default_factory=list)
    problem: str = ""
    since: str = ""


def standing(key: str, events: Sequence[LogEvent], head: Head | None, settings: Settings) -> Standing:
    """Replay the promotion's chain from its head anchor: the last proposal, the approvals of exactly that proposal
    (its hash, distinct users, each an approver by the settings' list when there is one and no group), and whether a
    `promotion_approved` with enough of them came after it and nothing demoted it since."""
    from medic.ledger.binding import linked_chain

    chain, broken = linked_chain(events, head)
    if broken:
        return Standing(problem=f"its log is not intact ({broken})")
    out = Standing()
    approvals: dict[str, str] = {}
    for event in chain:
        data = event.data
        if event.kind == "promotion_proposed":
            if data.get("key") != key or proposal_hash(data) != data.get("proposal_hash"):
                return Standing(problem=f"record #{event.seq} is not a proposal of {key}")
            out = Standing(state="PROPOSED", proposal=data, since=out.since)
            approvals = {}
        elif event.kind == "promotion_approval" and out.proposal is not None and out.state == "PROPOSED":
            user = str(data.get("user") or "")
            if data.get("proposal_hash") == out.proposal["proposal_hash"] and _may_approve(user, settings):
                approvals.setdefault(user, event.at)
        elif event.kind == "promotion_approved" and out.state == "PROPOSED" and out.proposal is not None:
            if data.get("proposal_hash") == out.proposal["proposal_hash"] and len(approvals) >= PROMOTION_APPROVERS:
                out.state, out.approvers = "ACTIVE", sorted(approvals)
            else:
                return Standing(problem=f"record #{event.seq} promotes without {PROMOTION_APPROVERS} approvals")
        elif event.kind in ("promotion_demoted", "promotion_rejected", "evidence_reset"):
            out = Standing(
                state={"promotion_demoted": "DEMOTED", "promotion_rejected": "REJECTED"}.get(event.kind, "RESET"),
                since=event.at,
            )
            approvals = {}
    return out


def _may_approve(user: str, settings: Settings) -> bool:
    if not user:
        return False
    if settings.approvers and not settings.approver_group:
        return user in settings.approvers
    return True  # a user group's membership is checked at the click (a Slack call): triage does not repeat it
