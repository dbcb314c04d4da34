"""A plan's hash chain: how a record is hashed, and whether a chain read back from the log holds.

A chain is the records of one plan, each linked to the record before it by that record's hash (`prev_hash`), the
first to `GENESIS`; its head anchor (`head#<plan id>` in the plans table) holds the seq and hash of the last record
the writers committed. Records follow each other by seq (1, 2, 3…); when the next seq was taken by a record the
anchor does not cover (written outside Medic's appends), the writer skips it and says which record it follows
(`prev_seq`), so such a record can neither block the log nor be adopted into it.

`check_chain` walks the chain back from its anchor and names every problem: a record whose content no longer
matches its hash, a missing record, a broken link, a record the chain does not reach (beyond the anchor, or skipped),
and a plan item that no longer matches what its records logged (`plan_content`, `plan_state`).
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from medic.plan import TRANSITIONS, Plan, plan_content_hash

GENESIS = "0" * 64


class Head(NamedTuple):
    """Where a chain ends: the seq and hash of its last committed record."""

    seq: int
    hash: str


class LogEvent(BaseModel):
    """One audit record: what happened to a plan, when, chained to the record before it.

    `context` ties the record to the incident: the alarm ARN, its state timestamp and the Slack message ts.
    `plan_state` and `plan_content` are the plan as the writer of the record last wrote it (its state and
    `plan_content_hash`); `prev_seq` is set only when the record does not follow seq - 1.
    """

    plan_id: str
    seq: int
    at: str
    kind: str
    data: dict[str, Any]
    prev_hash: str
    hash: str
    context: dict[str, str] = Field(default_factory=dict)
    prev_seq: int | None = None
    plan_state: str = ""
    plan_content: str = ""

    @property
    def predecessor(self) -> int:
        """The seq of the record this one follows (0: the chain's start)."""
        return self.seq - 1 if self.prev_seq is None else self.prev_seq


class UnreadableRecord(BaseModel):
    """A record the events table holds but Medic cannot read (a missing attribute, data that is not JSON...)."""

    plan_id: str
    seq: int | None = None
    problem: str


class ChainReport(BaseModel):
    """The result of checking one plan's chain: intact, or its first problem and every other one.

    `first_bad_seq` is the lowest record with a problem (None when only the plan item is at fault)."""

    plan_id: str
    events: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str = ""
    problems: list[str] = Field(default_factory=list)


def event_hash(
    plan_id: str,
    seq: int,
    at: str,
    kind: str,
    data: dict[str, Any],
    prev_hash: str,
    context: dict[str, str] | None = None,
    *,
    prev_seq: int | None = None,
    plan_state: str = "",
    plan_content: str = "",
) -> str:
    """SHA-256 of the record's canonical JSON. Fields that are empty are left out of it, so records written before
    a field existed keep their hash."""
    body: dict[str, Any] = {
        "plan_id": plan_id,
        "seq": seq,
        "at": at,
        "kind": kind,
        "data": data,
        "prev_hash": prev_hash,
    }
    if context:
        body["context"] = context
    if prev_seq is not None:
        body["prev_seq"] = prev_seq
    if plan_state:
        body["plan_state"] = plan_state
    if plan_content:
        body["plan_content"] = plan_content
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def recomputed_hash(event: LogEvent) -> str:
    """The hash `event` should carry, from its content."""
    return event_hash(
        event.plan_id,
        event.seq,
        event.at,
        event.kind,
        event.data,
        event.prev_hash,
        event.context,
        prev_seq=event.prev_seq,
        plan_state=event.plan_state,
        plan_content=event.plan_content,
    )


def may_become(old: str, new: str) -> bool:
    """Whether a plan in state `old` may be in state `new` later (the same state, or through allowed transitions)."""
    seen, queue = {old}, deque([old])
    while queue:
        state = queue.popleft()
        if state == new:
            return True
        for following in TRANSITIONS.get(state, frozenset()) - seen:
            seen.add(following)
            queue.append(following)
    return False


class _Problems:
    """Problems found, each at a record's seq (None: the plan item), reported lowest seq first."""

    def __init__(self) -> None:
        self.found: list[tuple[int | None, str]] = []

    def add(self, seq: int | None, message: str) -> None:
        self.found.append((seq, message))

    def report(self, plan_id: str, records: int) -> ChainReport:
        ordered = sorted(self.found, key=lambda item: (item[0] is None, item[0] or 0))
        if not ordered:
            return ChainReport(plan_id=plan_id, events=records, ok=True)
        return ChainReport(
            plan_id=plan_id,
            events=records,
            ok=False,
            first_bad_seq=ordered[0][0],
            problem=ordered[0][1],
            problems=[message for _, message in ordered],
        )


def check_chain(
    plan_id: str,
    events: list[LogEvent],
    head: Head | None,
    *,
    unreadable: list[UnreadableRecord] | None = None,
    plan: Plan | None = None,
    plan_exists: bool = False,
    plan_problem: str | None = None,
) -> ChainReport:
    """Check one chain as read back: its records (sorted by seq), its head anchor, and its plan item when it has
    one (`plan`, or `plan_problem` when the item exists but cannot be read)."""
    problems = _Problems()
    unreadable = unreadable or []
    for record in unreadable:
        problems.add(record.seq, f"record #{record.seq} is unreadable: {record.problem}")
    for event in events:
        if event.hash != recomputed_hash(event):
            problems.add(event.seq, f"record #{event.seq} was modified (its hash does not match its content)")
    seqs = sorted({event.seq for event in events} | {r.seq for r in unreadable if r.seq is not None})
    if head is None:
        if seqs:
            problems.add(seqs[-1], "the chain's head anchor is missing")
            last = next((e for e in events if e.seq == seqs[-1]), None)
            head = Head(seqs[-1], last.hash if last else "")
        elif plan_exists:
            problems.add(1, "every record and the head anchor are missing")
    reached = _walk(events, seqs, head, problems) if head is not None else set()
    _unreached(events, head, reached, problems)
    if plan is not None:
        _check_plan_item(plan, events, problems)
    elif plan_problem:
        problems.add(None, f"the plan item is unreadable: {plan_problem}")
    return problems.report(plan_id, len(events) + len(unreadable))


def _walk(events: list[LogEvent], seqs: list[int], head: Head, problems: _Problems) -> set[int]:
    """Follow the links from the anchor back to the chain's start; returns the seqs reached."""
    by_seq = {event.seq: event for event in events}
    reached: set[int] = set()
    seq, expected, linker = head.seq, head.hash, 0  # linker: the record whose link led here (0: the anchor)
    while seq > 0 and seq not in reached:
        event = by_seq.get(seq)
        if event is None:
            if seq in seqs:  # unreadable: already named; go on below it without a hash to compare
                reached.add(seq)
                seq, expected, linker = seq - 1, "", seq
                continue
            below = max((s for s in seqs if s < seq), default=0)
            span = f"#{below + 1}..#{seq}"
            if linker == 0:
                problems.add(below + 1, f"records {span} are missing (the head anchor says the chain ends at #{seq})")
            elif below + 1 == seq:
                problems.add(seq, f"record #{seq} is missing (the next one is #{linker})")
            else:
                problems.add(below + 1, f"records {span} are missing (the next one is #{linker})")
            seq, expected, linker = below, "", seq
            continue
        if expected and event.hash != expected:
            if linker == 0:
                problems.add(seq, f"record #{seq} does not match the head anchor")
            else:
                problems.add(linker, f"record #{linker} does not link to the record before it")
        reached.add(seq)
        if event.predecessor >= seq or event.predecessor < 0:
            problems.add(seq, f"record #{seq} links to #{event.predecessor}, which cannot come before it")
            break
        if event.predecessor == 0 and event.prev_hash != GENESIS:
            problems.add(seq, f"record #{seq} does not link to the record before it")
        seq, expected, linker = event.predecessor, event.prev_hash, seq
    return reached


def _unreached(events: list[LogEvent], head: Head | None, reached: set[int], problems: _Problems) -> None:
    """Records no link from the anchor reaches: written outside Medic's appends, they are not part of its log."""
    beyond = [e.seq for e in events if e.seq not in reached and head is not None and e.seq > head.seq]
    if beyond:
        span = f"record #{beyond[0]} is" if len(beyond) == 1 else f"records #{beyond[0]}..#{beyond[-1]} are"
        problems.add(
            beyond[0],
            f"{span} beyond the head anchor (#{head.seq if head else 0}): not part of the log "
            "Medic's writers committed",
        )
    for event in events:
        if event.seq not in reached and (head is None or event.seq < head.seq):
            problems.add(
                event.seq,
                f"record #{event.seq} is not linked into the chain (no later record links to "
                "it): not part of the log Medic's writers committed",
            )


def _check_plan_item(plan: Plan, events: list[LogEvent], problems: _Problems) -> None:
    """The plan item against what its records logged: one content, and a state each logged state may become."""
    marked = [event for event in events if event.plan_content]
    if not marked:
        return
    first = marked[0]
    for event in marked[1:]:
        if event.plan_content != first.plan_content:
            problems.add(
                event.seq,
                f"record #{event.seq} logs another plan content than record #{first.seq}: the "
                "plan item was changed between them",
            )
    content = plan_content_hash(plan)
    if content != first.plan_content:
        problems.add(
            None,
            f"the plan item does not match its log: its content hash is {content[:16]}…, record "
            f"#{first.seq} logged {first.plan_content[:16]}… (edited after the fact)",
        )
    for event in marked:
        if event.plan_state and not may_become(event.plan_state, plan.status):
            problems.add(
                None,
                f"the plan item is {plan.status}, which cannot follow {event.plan_state} (logged at "
                f"record #{event.seq}): its state was edited after the fact",
            )
            break
