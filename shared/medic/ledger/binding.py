"""An approval binds exactly what the executor does: the checks the executor makes before it touches AWS.

The approval hash (`medic.plan.approval_hash`: every field the executor acts on, `medic.plan.executable_content`) is
computed by triage when it makes the plan and kept where no single writer controls all of it:

- on the plan item, as its `approval_hash` attribute, written once with the plan (template.yaml lets no role but
  triage write that attribute; the executor writes it on the re-proposals it creates);
- in the remediation log: triage's `plan_created` record, the first of the plan's chain to carry it, and, for a plan
  a human approved, each approval's record (`approval`: the hash the approver was shown and approved);
- in the executor's queue message.

`binding_refusal` recomputes the hash from the plan the executor read and refuses the plan unless every one of these
agrees with it, and unless the records it read form an intact chain. A plan rewritten in the plans table after it was
made (its target, an action's function or qualifier, before/after, the account, the runbook...) is therefore never
applied, whatever else the rewrite made consistent on the same item.

What an action records while it applies (`medic.plan.RECORDED_AT_APPLY`: what its rollback restores) is not approved;
`apply_records_refusal` binds it, and which actions were applied, to the executor's own records of the calls it made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medic.plan import Plan, Refusal, approval_hash, recorded_at_apply

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction
    from medic.ledger.chain import Head
    from medic.ledger.store import LogEvent

GUARD = "approval_binding"
#: Records that prove an action's change reached AWS (written by the executor with the plan's state).
APPLY_EVIDENCE = ("aws_call", "change_found_applied")


def linked_chain(events: Sequence[LogEvent], head: Head | None = None) -> tuple[list[LogEvent], str | None]:
    """The plan's records that form its chain, and why the chain is broken (None: every record on it hashes to
    itself and links to the one before it).

    With the chain's `head` anchor (what the writers committed), the chain is walked back from it along the links (a
    record names the one it follows: the seq before it, or `prev_seq` when it skipped a record it never adopted);
    without it, forward from the first record. Records off the chain (put beside it, never linked into it, or beyond
    the anchor) are left out: `medic log verify` names them; nothing bound here may come from them."""
    from medic.ledger.chain import GENESIS, recomputed_hash

    by_seq = {event.seq: event for event in events}
    if head is not None:
        chain: list[LogEvent] = []
        seq, wanted = head.seq, head.hash
        while seq > 0:
            event = by_seq.get(seq)
            if event is None:
                return chain[::-1], f"record #{seq} is missing"
            if event.hash != wanted or recomputed_hash(event) != event.hash:
                return chain[::-1], f"record #{seq} was modified"
            chain.append(event)
            seq, wanted = (event.prev_seq if event.prev_seq is not None else seq - 1), event.prev_hash
        if wanted != GENESIS:
            return chain[::-1], "the chain's first record does not start it"
        return chain[::-1], None
    chain = []
    previous_seq, previous_hash = 0, GENESIS
    for event in sorted(events, key=lambda event: event.seq):
        follows = event.prev_seq if event.prev_seq is not None else event.seq - 1
        if event.seq <= previous_seq or follows != previous_seq or event.prev_hash != previous_hash:
            continue  # not the next link of the chain
        if recomputed_hash(event) != event.hash:
            return chain, f"record #{event.seq} was modified"
        chain.append(event)
        previous_seq, previous_hash = event.seq, event.hash
    if events and not chain:
        return chain, "record #1 is missing"
    return chain, None


def logged_approval(events: Sequence[LogEvent]) -> tuple[dict[str, Any] | None, list[str]]:
    """Triage's `plan_created` record (the first one) and the hashes the approvers approved (each `approval` record)."""
    created = next((event.data for event in events if event.kind == "plan_created"), None)
    approvals = [str(event.data.get("approval_hash") or "") for event in events if event.kind == "approval"]
    return created, approvals


def binding_refusal(
    plan: Plan, *, stored: str | None, expected: str, events: Sequence[LogEvent], head: Head | None = None
) -> Refusal | None:
    """Why `plan` may not be applied as read (None: it is exactly what was made and approved).

    `stored` is the item's `approval_hash` attribute (None on an item written before it existed), `expected` the
    hash in the executor's message ("" for a rollback the verifier asked for), `events` the plan's records."""
    current = approval_hash(plan)
    problems: list[str] = []
    if plan.approval_hash != current:
        problems.append("its content no longer hashes to its own approval_hash")
    if stored is not None and stored != current:
        problems.append("it differs from the approval hash stored with the plan when it was made")
    if expected and expected != current:
        problems.append("it differs from the approval hash the executor's message carries")
    events, broken = linked_chain(events, head)
    if broken:
        problems.append(f"its log is not intact ({broken})")
    created, approvals = logged_approval(events)
    approved = stored or ""
    if created is None:
        problems.append("the log holds no plan_created record for it")
    else:
        approved = str(created.get("approval_hash") or "")
        if approved != current:
            problems.append("it differs from the plan triage logged when it made it")
        if created.get("status") != "APPROVED":  # made PROPOSED: a human approved it, with the hash on the record
            if not approvals:
                problems.append("no approval of it is in the log")
            elif any(hashed != current for hashed in approvals):
                problems.append("it differs from what the approvers approved")
    if not problems:
        return None
    return Refusal(
        guard=GUARD,
        limit=approved or plan.approval_hash,
        observed=current,
        message="the plan differs from what was approved: " + "; ".join(problems),
    )


def recorded(action: PlannedAction) -> dict[str, Any]:
    """What `action` recorded while applying (the keys of `RECORDED_AT_APPLY` in its `resource`)."""
    return {key: value for key, value in action.resource.items() if recorded_at_apply(action.kind, key)}


def apply_records_refusal(plan: Plan, events: Sequence[LogEvent], head: Head | None = None) -> Refusal | None:
    """Why the progress kept on the plan item cannot be trusted for a rollback or a resumed apply: an action marked
    applied that no record of the executor says it applied, or what an action recorded while applying (the targets,
    subscriptions and versions its rollback restores) differing from the executor's `aws_call` record of it."""
    calls: dict[tuple[str, str], dict[str, Any]] = {}
    found: set[str] = set()
    for event in linked_chain(events, head)[0]:
        if event.kind == "aws_call":
            calls[(str(event.data.get("action")), str(event.data.get("target")))] = event.data
        elif event.kind == "change_found_applied":
            found.add(str(event.data.get("target")))
    problems: list[str] = []
    for action in plan.changes:
        call = calls.get((action.kind, action.target))
        if call is None:
            if action.applied and action.target not in found:
                problems.append(f"{action.kind} on {action.target} is marked applied but no record says it was")
            elif action.applied and recorded(action):  # found applied after a crash: nothing was recorded then
                problems.append(f"{action.kind} on {action.target} holds apply records the log does not have")
            continue
        logged = call.get("recorded")  # absent from records written before it was kept
        if logged is not None and logged != recorded(action):
            problems.append(f"what {action.kind} on {action.target} recorded while applying differs from the log")
    if not problems:
        return None
    return Refusal(
        guard=GUARD,
        limit="the executor's records",
        observed="the plan item",
        message="the plan's progress differs from the log: " + "; ".join(problems),
    )
