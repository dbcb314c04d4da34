"""The remediation log in DynamoDB: `Ledger`, the one writer of its two tables, composed of its parts: the plans
(`plans`: current state, conditional transitions; `plan_reads`: many at once), the plans table's other items
(`items`: claims, control flags) and the plans' append-only, hash-chained records (`records`), with the bounded
per-plan caches they share and the check that reads a chain against its plan.

Two tables so that IAM can tell them apart: the plans table is updated only by conditional writes
on the expected state; the events table only ever receives `PutItem` with `attribute_not_exists`.
A chain grows from its head anchor, never from whatever the events table holds last: a record the anchor does not
cover (put there outside Medic's appends) is skipped and named by `verify_report`, never adopted (`medic.ledger.chain`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TypeVar

from medic.ledger.chain import GENESIS, ChainReport, Head, LogEvent, UnreadableRecord, check_chain, event_hash
from medic.ledger.items import ClaimLost, TableItems
from medic.ledger.keys import HEAD_PREFIX, OPEN_PREFIX
from medic.ledger.plan_reads import UnreadableItem
from medic.ledger.plans import Plans
from medic.ledger.promotions import PromotionItems
from medic.ledger.records import Mark, RecordChains

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "GENESIS",
    "HEAD_PREFIX",
    "OPEN_PREFIX",
    "ChainReport",
    "ClaimLost",
    "Head",
    "Ledger",
    "LogEvent",
    "UnreadableItem",
    "UnreadableRecord",
    "event_hash",
]

#: How many plans a Ledger keeps cached (context, chain end). Forgetting one only costs a read when it comes back.
CACHED_PLANS = 512
_V = TypeVar("_V")


class _Recent(dict[str, _V]):
    """A dict that keeps its `CACHED_PLANS` most recently set keys."""

    def __setitem__(self, key: str, value: _V) -> None:
        self.pop(key, None)
        super().__setitem__(key, value)
        while len(self) > CACHED_PLANS:
            del self[next(iter(self))]


class _RecentSet(set[str]):
    """A set of at most `CACHED_PLANS` keys (full: it starts again; a key forgotten is a hint lost, not a fact)."""

    def add(self, key: str) -> None:
        if len(self) >= CACHED_PLANS:
            self.clear()
        super().add(key)


class Ledger(Plans, PromotionItems, TableItems, RecordChains):
    """Reads and writes plans and their events. Inject the DynamoDB client and table names."""

    def __init__(self, dynamodb: DynamoDBClient, plans_table: str, events_table: str) -> None:
        self.dynamodb = dynamodb
        self.plans_table = plans_table
        self.events_table = events_table
        # Per-plan caches, bounded: a warm environment must not grow with every plan it has seen.
        self._context: dict[str, dict[str, str]] = _Recent()
        self._last: dict[str, Head] = _Recent()  # each chain's head as this ledger last wrote or read it
        self._marks: dict[str, Mark] = _Recent()  # each plan as this ledger last wrote it: logged on its records
        self._empty: set[str] = _RecentSet()  # chains this ledger just created with their plan: nothing to read back
        self._stored_hash: dict[str, str | None] = _Recent()  # the approval_hash attribute of each plan `get` read
        self._local = threading.local()  # per thread: what `prefetch` read and what `deferred` holds

    def verify_chain(self, plan_id: str) -> int | None:
        """The seq of the first record whose hash or link is wrong (or missing), or None when the chain holds."""
        return self.verify_report(plan_id).first_bad_seq

    def verify_report(self, plan_id: str) -> ChainReport:
        """Check the chain against its head anchor, and its plan item against what the chain logged; name the first
        problem (`medic.ledger.chain.check_chain`)."""
        events, unreadable = self.records(plan_id)
        plan, problem = self.plan_or_problem(plan_id)
        return check_chain(
            plan_id,
            events,
            self.head(plan_id),
            unreadable=unreadable,
            plan=plan,
            plan_exists=plan is not None or problem is not None,
            plan_problem=problem,
        )
