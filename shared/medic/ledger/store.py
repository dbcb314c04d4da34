"""The remediation log in DynamoDB: plans (current state, conditional transitions) and their
append-only, hash-chained audit events.

Two tables so that IAM can tell them apart: the plans table is updated only by conditional writes
on the expected state; the events table only ever receives `PutItem` with `attribute_not_exists`.
A chain grows from its head anchor, never from whatever the events table holds last: a record the anchor does not
cover (put there outside Medic's appends) is skipped and named by `verify_report`, never adopted (`medic.ledger.chain`).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from medic.clock import iso
from medic.errors import LeaseHeld, StateConflict
from medic.finite import finite_json, refuse_non_finite, storable
from medic.ledger.chain import GENESIS, ChainReport, Head, LogEvent, UnreadableRecord, check_chain, event_hash
from medic.ledger.keys import HEAD_PREFIX, OPEN_PREFIX
from medic.plan import INITIAL_STATES, Plan, can_transition, plan_content_hash

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["GENESIS", "HEAD_PREFIX", "OPEN_PREFIX", "ChainReport", "ClaimLost", "Head", "Ledger", "LogEvent",
           "UnreadableItem", "UnreadableRecord", "event_hash"]  # fmt: skip

APPEND_ATTEMPTS = 8
Record = tuple[str, dict[str, Any]]
"""A record to append: its kind and its data."""
TRANSACTION_ITEMS = 100
"""DynamoDB's limit of actions in one TransactWriteItems (the 4 MB limit is far: an event is capped by the callers)."""
Mark = tuple[str, str]
"""The plan as a record logs it: (state, content hash)."""


class UnreadableItem(BaseModel):
    """A plans-table item Medic cannot read back as a plan: its key and why."""

    key: str
    problem: str


class ClaimLost(Exception):
    """Another open plan holds the target this plan tried to claim (nothing was written)."""

    def __init__(self, target: str) -> None:
        super().__init__(f"another open plan holds {target}")
        self.target = target


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


class Ledger:
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

    @property
    def _prefetched(self) -> dict[str, dict[str, Any] | None]:
        found: dict[str, dict[str, Any] | None] | None = getattr(self._local, "prefetched", None)
        if found is None:
            found = self._local.prefetched = {}
        return found

    @property
    def _pending(self) -> list[tuple[LogEvent, dict[str, Any]]] | None:
        return getattr(self._local, "pending", None)

    @_pending.setter
    def _pending(self, value: list[tuple[LogEvent, dict[str, Any]]] | None) -> None:
        self._local.pending = value

    # -- plans ----------------------------------------------------------------------------------
    def create(
        self, plan: Plan, events: Sequence[Record] = (), now: datetime | None = None, *,
        claim: tuple[str, str | None] | None = None,
    ) -> bool:  # fmt: skip
        """Store a new plan; False if a plan with this id exists (a duplicate delivery).

        With `events` (kind, data), the plan and the first records of its chain are written together, in one
        TransactWriteItems: a plan never exists without the records that explain it, and it costs one call. With
        `claim` (target, stale holder), the plan also claims its target in that write (as `claim` does); if another
        plan holds the target, nothing is written and `ClaimLost` is raised.

        A plan holding a non-finite number (inf, NaN) is never stored as it is (it could not be read back): the
        numbers are removed and a plan that would be acted on is stored BLOCKED by a `non_finite_number` refusal,
        logged as a `blocked` record with the other records (`non_finite_removed` for a plan that keeps its state;
        `medic.finite.refuse_non_finite`). `plan` itself is updated to what is stored, so the caller goes on with
        the refused plan."""
        if plan.status not in INITIAL_STATES:
            raise ValueError(f"a plan cannot start in {plan.status}")
        refusal = refuse_non_finite(plan)
        if refusal is not None:
            blocked = refusal in plan.blocked_by
            if blocked:
                claim = None  # a refused plan holds no target
            if now is not None:
                events = [*events, ("blocked" if blocked else "non_finite_removed", refusal.model_dump(mode="json"))]
        put = {"TableName": self.plans_table, "Item": self._item(plan),
               "ConditionExpression": "attribute_not_exists(plan_id)"}  # fmt: skip
        if claim is not None and (not events or now is None):
            if not self.claim(claim[0], plan.id, claim[1]):
                raise ClaimLost(claim[0])
            claim = None
        mark = _mark(plan)
        if not events or now is None:
            try:
                self.dynamodb.put_item(**put)  # type: ignore[arg-type]
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                return False
            self.remember(plan)
            self._marks[plan.id] = mark
            self._empty.add(plan.id)
            return True
        self.remember(plan)
        chain = self._chain(plan.id, events, now, after=None, mark=mark)
        claiming = [{"Put": self._claim_put(claim[0], plan.id, claim[1])}] if claim else []
        actions: list[dict[str, Any]] = [{"Put": put}, *claiming, *self._chain_writes(chain)]
        try:
            self.dynamodb.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
        except self.dynamodb.exceptions.TransactionCanceledException as exc:
            codes = [reason.get("Code") for reason in exc.response.get("CancellationReasons") or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                return False  # the plan exists: a duplicate delivery
            if claim and len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise ClaimLost(claim[0]) from None
            if not any(code == "ConditionalCheckFailed" for code in codes):
                raise
            # The plan was free but its chain was not (records left by an earlier crash, or put there by someone
            # else): create, then append after the chain's committed end.
            if not self.create(plan, claim=claim):
                return False
            self._empty.discard(plan.id)
            for kind, data in events:
                self._append(plan.id, kind, data, now, mark)
            return True
        self._marks[plan.id] = mark
        self._written(chain)
        return True

    def get(self, plan_id: str) -> Plan | None:
        """The plan, or None when there is none, or when its item cannot be read as a plan (logged: a redelivery or
        a click on such a plan then finds nothing to act on, instead of failing; `plan_or_problem` tells them
        apart)."""
        plan, problem = self.plan_or_problem(plan_id)
        if problem is not None:
            from medic.log import get_logger

            get_logger(component="ledger", plan_id=plan_id).warning("unreadable_plan", problem=problem)
        return plan

    def plan_or_problem(self, plan_id: str) -> tuple[Plan | None, str | None]:
        """The plan (None when no plan item has this id), or why its item cannot be read."""
        found = self.item(plan_id)
        if not found or "doc" not in found:
            return None, None
        plan, problem = _plan_of(found)
        if plan is not None:
            self.remember(plan)
            self._stored_hash[plan_id] = found["approval_hash"]["S"] if "approval_hash" in found else None
        return plan, problem

    def stored_approval_hash(self, plan_id: str) -> str | None:
        """The `approval_hash` attribute of the plan's item as `get` last read it: written once, with the plan, by its
        creator (IAM lets no other role write it); None on an item written before the attribute existed."""
        return self._stored_hash.get(plan_id)

    def transition(self, plan: Plan, new_state: str, now: datetime, *, record: Record | None = None,
                   unleased: bool = False, **changes: Any) -> Plan:  # fmt: skip
        """Move `plan` to `new_state` if (and only if) it is still in its current state (and, `unleased`, no executor's
        lease on it is running). `record` (kind, data) is appended to its chain in the same write (with any records
        `deferred()` holds)."""
        expected = plan.status
        if not can_transition(expected, new_state):
            raise StateConflict(plan.id, f"a state that may become {new_state}", expected)
        # A lease lasts while the plan stays in the state it was taken for (`lease`): a transition ends it.
        updated = plan.model_copy(update={"lease_owner": "", "lease_until": None, **changes, "status": new_state,
                                          "updated_at": iso(now)})  # fmt: skip
        self._conditional_put(updated, expected, record, now, lease=(iso(now), iso(now)) if unleased else None)
        return updated

    def save(self, plan: Plan, now: datetime, *, record: Record | None = None, **changes: Any) -> Plan:
        """Update a plan's details without changing its state (still conditional on that state); `record` as in
        `transition`."""
        updated = plan.model_copy(update={**changes, "updated_at": iso(now)})
        self._conditional_put(updated, plan.status, record, now)
        return updated

    def lease(self, plan: Plan, now: datetime, until: datetime, owner: str, *, hold: str = "APPLYING",
              record: Record | None = None) -> Plan:  # fmt: skip
        """Take `plan` for one executor until `until`, in state `hold`: APPROVED → APPLYING, an APPLYING plan whose
        lease has expired (the executor that held it died), or a FAILED plan to roll back (`hold="FAILED"`). The
        write is conditional on the state *and* on no live lease, so of two executors given the same message only
        one acts. The lease ends with the next transition. `record` as in `transition`.

        Raises `LeaseHeld` while another executor's lease runs, `StateConflict` if the plan moved on."""
        if plan.status != hold and not can_transition(plan.status, hold):
            raise StateConflict(plan.id, f"{hold} or a state that may become it", plan.status)
        updated = plan.model_copy(update={"status": hold, "lease_owner": owner, "lease_until": iso(until),
                                          "updated_at": iso(now)})  # fmt: skip
        try:
            self._conditional_put(updated, plan.status, record, now, lease=(iso(until), iso(now)))
        except StateConflict:
            current = self.get(plan.id)
            if current is not None and current.status == hold and (current.lease_until or "") > iso(now):
                raise LeaseHeld(plan.id, current.lease_owner, current.lease_until or "") from None
            raise
        return updated

    def _conditional_put(self, plan: Plan, expected_state: str, record: Record | None = None,
                         now: datetime | None = None, *, lease: tuple[str, str] | None = None) -> None:  # fmt: skip
        """Rewrite an existing plan's item only if it is still in `expected_state` (UpdateItem: it can never
        create a plan, so the roles that decide and verify need no PutItem on the plans table).

        With a record, or records held by `deferred()`, the update and the records are one TransactWriteItems: the
        state and the record that explains it are written together or not at all."""
        item = self._item(plan)
        update: dict[str, Any] = {
            "TableName": self.plans_table,
            "Key": {"plan_id": item["plan_id"]},
            "UpdateExpression": "SET #state = :state, #target = :target, created_at = :created, "
            "updated_at = :updated, doc = :doc",
            "ConditionExpression": "attribute_exists(plan_id) AND #state = :expected",
            "ExpressionAttributeNames": {"#state": "state", "#target": "target"},
            "ExpressionAttributeValues": {
                ":state": item["state"], ":target": item["target"], ":created": item["created_at"],
                ":updated": item["updated_at"], ":doc": item["doc"], ":expected": {"S": expected_state},
            },
        }  # fmt: skip
        if lease is not None:  # (until, now): only if no other executor's lease is still running
            update["UpdateExpression"] += ", lease_until = :lease_until"
            update["ConditionExpression"] += " AND (attribute_not_exists(lease_until) OR lease_until <= :lease_now)"
            update["ExpressionAttributeValues"].update({":lease_until": {"S": lease[0]}, ":lease_now": {"S": lease[1]}})
        elif plan.status != expected_state:
            update["UpdateExpression"] += " REMOVE lease_until"  # a transition ends the lease
        self.remember(plan)
        if record is not None and now is not None and self._pending is None:
            with self.deferred():  # one transaction for this update and its record
                self._conditional_put(plan, expected_state, record, now, lease=lease)
            return
        previous = self._marks.get(plan.id)
        self._marks[plan.id] = _mark(plan)  # the records of this write (and after it) log the plan as written
        try:
            self._write_update(plan, expected_state, update, record, now)
        except Exception:
            if previous is None:
                self._marks.pop(plan.id, None)
            else:
                self._marks[plan.id] = previous
            raise

    def _write_update(self, plan: Plan, expected_state: str, update: dict[str, Any], record: Record | None,
                      now: datetime | None) -> None:  # fmt: skip
        pending = self._pending
        if record is not None and now is not None and pending is not None:
            self.append(plan.id, record[0], record[1], now)
        if pending:
            held = pending[: TRANSACTION_ITEMS - 1 - len({e.plan_id for e, _ in pending})]
            if len(held) == len(pending):
                try:
                    actions: list[Any] = [{"Update": update}, *self._writes_for(held)]
                    self.dynamodb.transact_write_items(TransactItems=actions)
                except self.dynamodb.exceptions.TransactionCanceledException as exc:
                    reasons = exc.response.get("CancellationReasons") or []
                    if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                        if record is not None:
                            pending.pop()  # the state moved on: the step it describes did not happen (others stay held)
                        current = self.get(plan.id)
                        raise StateConflict(plan.id, expected_state, current.status if current else None) from None
                    # A record lost a race for its seq: the update alone, then the records after the chain's end.
                    held_now = list(pending)
                    pending.clear()
                    self._put_update(update, plan, expected_state)
                    self._reappend(held_now)
                    return
                except Exception:
                    if record is not None:
                        pending.pop()  # the state change failed: its record must not be written at the block's end
                    raise
                self._written(held)
                pending.clear()
                return
        self._put_update(update, plan, expected_state)

    def _put_update(self, update: dict[str, Any], plan: Plan, expected_state: str) -> None:
        try:
            self.dynamodb.update_item(**update)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            current = self.get(plan.id)
            raise StateConflict(plan.id, expected_state, current.status if current else None) from None

    def by_state(self, state: str, *, since: str | None = None) -> list[Plan]:
        """Plans in `state` (the by_state index), optionally only those updated at or after `since` (ISO). An item
        that cannot be read as a plan is left out (and logged): one bad item never stops the others."""
        plans, unreadable = self.query_state(state, since=since)
        _log_unreadable(unreadable)
        return plans

    def query_state(self, state: str, *, since: str | None = None) -> tuple[list[Plan], list[UnreadableItem]]:
        """`by_state`, and the items in that state that cannot be read as plans."""
        kwargs: dict[str, Any] = {
            "TableName": self.plans_table,
            "IndexName": "by_state",
            "KeyConditionExpression": "#state = :state",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {":state": {"S": state}},
        }
        if since:
            kwargs["KeyConditionExpression"] += " AND updated_at >= :since"
            kwargs["ExpressionAttributeValues"][":since"] = {"S": since}
        return self._plans(kwargs, query=True)

    def all_plans(self) -> list[Plan]:
        """Every readable plan, oldest first (`scan_plans` also names the items that cannot be read)."""
        plans, unreadable = self.scan_plans()
        _log_unreadable(unreadable)
        return plans

    def scan_plans(self) -> tuple[list[Plan], list[UnreadableItem]]:
        """Every plan, oldest first, and every plans-table item that should be a plan but cannot be read as one."""
        plans, unreadable = self._plans({"TableName": self.plans_table}, query=False)
        return sorted(plans, key=lambda plan: plan.created_at), unreadable

    def _plans(self, kwargs: dict[str, Any], *, query: bool) -> tuple[list[Plan], list[UnreadableItem]]:
        plans: list[Plan] = []
        unreadable: list[UnreadableItem] = []
        while True:
            page = self.dynamodb.query(**kwargs) if query else self.dynamodb.scan(**kwargs)
            # Control flags (kill switch, breaker), claims and head anchors share the table without a "doc".
            for item in page.get("Items", []):
                if "doc" not in item:
                    continue
                plan, problem = _plan_of(item)
                if plan is not None:
                    plans.append(plan)
                else:
                    unreadable.append(UnreadableItem(key=str(item.get("plan_id", {}).get("S", "?")),
                                                     problem=problem or "unreadable"))  # fmt: skip
            if "LastEvaluatedKey" not in page:
                return plans, unreadable
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _item(plan: Plan) -> dict[str, Any]:
        return {
            "plan_id": {"S": plan.id},
            "state": {"S": plan.status},
            "target": {"S": plan.target},
            "created_at": {"S": plan.created_at},
            "updated_at": {"S": plan.updated_at},
            "doc": {"S": storable(plan).model_dump_json()},  # never a non-finite number: it would not read back
            **({"approval_hash": {"S": plan.approval_hash}} if plan.approval_hash else {}),
        }

    # -- one open plan per target ----------------------------------------------------------------
    def holder(self, target: str) -> str | None:
        """The plan that last claimed `target` (it may have finished since: check its state)."""
        item = self.item(OPEN_PREFIX + target)
        return item["holder"]["S"] if item else None

    # -- raw items, read together ------------------------------------------------------------------
    def item(self, key: str) -> dict[str, Any] | None:
        """The plans-table item under `key` (a plan, a control flag, a claim), read consistently; a value
        `prefetch` read for this key is used once instead of a new read."""
        if key in self._prefetched:
            return self._prefetched.pop(key)
        found = self.dynamodb.get_item(TableName=self.plans_table, Key={"plan_id": {"S": key}}, ConsistentRead=True)
        return found.get("Item")

    def prefetch(self, keys: Sequence[str]) -> None:
        """Read the items under `keys` in one BatchGetItem (consistent), for the next `item`/`get`/`holder` call on
        each key, once. A use case that needs several items (its plan, the target's claim, the controls) pays one
        round trip instead of one per item. `forget_prefetched` drops what was not used."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
            self.plans_table: {"Keys": [{"plan_id": {"S": key}} for key in wanted], "ConsistentRead": True}
        }
        for _ in range(5):  # unprocessed keys (throttling) are read again; what is left is read one by one later
            response = self.dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.plans_table, []):
                found[item["plan_id"]["S"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        unread = {k["plan_id"]["S"] for k in request.get(self.plans_table, {}).get("Keys", [])} if request else set()
        for key in wanted:
            if key not in unread:
                self._prefetched[key] = found.get(key)

    def forget_prefetched(self) -> None:
        self._prefetched.clear()

    def claim(self, target: str, plan_id: str, stale_holder: str | None) -> bool:
        """Claim `target` for `plan_id`: only if nobody holds it, or it is still held by `stale_holder` (a plan
        the caller saw finished). One conditional write: of two concurrent triages, one wins."""
        try:
            self.dynamodb.put_item(**self._claim_put(target, plan_id, stale_holder))
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _claim_put(self, target: str, plan_id: str, stale_holder: str | None) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.plans_table,
            "Item": {"plan_id": {"S": OPEN_PREFIX + target}, "holder": {"S": plan_id}},
            "ConditionExpression": "attribute_not_exists(plan_id)",
        }
        if stale_holder:
            put["ConditionExpression"] += " OR holder = :stale"
            put["ExpressionAttributeValues"] = {":stale": {"S": stale_holder}}
        return put

    def count_attached(self, plan_id: str) -> int:
        """Count one more alarm attached to an open plan; returns the new count (one atomic ADD)."""
        response = self.dynamodb.update_item(
            TableName=self.plans_table, Key={"plan_id": {"S": plan_id}}, UpdateExpression="ADD attached :one",
            ConditionExpression="attribute_exists(plan_id)", ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )  # fmt: skip
        return int(response["Attributes"]["attached"]["N"])

    # -- events ---------------------------------------------------------------------------------
    def append(self, plan_id: str, kind: str, data: dict[str, Any], now: datetime) -> LogEvent:
        """Append an event to the plan's chain, after its head anchor; never overwrites (a lost race retries on the
        next seq).

        The event carries the plan's context (alarm ARN, state timestamp, Slack ts) when this ledger has seen
        the plan (every use case reads or writes its plan before logging), the plan as this ledger last wrote it
        (state, content hash), and moves the chain's head anchor. Inside `deferred()`, the record is written with
        the others of the block, at its end."""
        return self._append(plan_id, kind, data, now, self._marks.get(plan_id))

    def _append(self, plan_id: str, kind: str, data: dict[str, Any], now: datetime, mark: Mark | None) -> LogEvent:
        if self._pending is not None:
            last = self._pending_last(plan_id)
            [(event, item)] = self._chain(plan_id, [(kind, data)], now, after=last, mark=mark)
            self._pending.append((event, item))
            return event
        # The head this ledger last wrote saves a read; if another writer appended since, the write is refused and
        # the next attempt starts from the anchor read back.
        head, first_seq = self._known_head(plan_id), None
        for _ in range(APPEND_ATTEMPTS):
            chunk = self._chain(plan_id, [(kind, data)], now, after=head, first_seq=first_seq, mark=mark)
            if self._put_records(chunk):
                self._written(chunk)
                return chunk[0][0]
            self._last.pop(plan_id, None)
            self._empty.discard(plan_id)
            fresh = self.head(plan_id)
            # The anchor did not move: the seq after it is taken by a record the anchor does not cover (written
            # outside Medic's appends). Skip such records rather than adopt them or stop logging.
            first_seq = self._last_seq(plan_id) + 1 if fresh == head else None
            head = fresh
        raise StateConflict(plan_id, "a free event sequence number", f"{APPEND_ATTEMPTS} lost races")

    def _put_records(self, chunk: list[tuple[LogEvent, dict[str, Any]]]) -> bool:
        """Write records and move their chains' anchors in one TransactWriteItems; False when a record's seq was
        taken or an anchor had moved (another writer appended first, or the seq is squatted): nothing was written."""
        try:
            self.dynamodb.transact_write_items(TransactItems=self._writes_for(chunk))  # type: ignore[arg-type]
        except self.dynamodb.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if not any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
                raise
            return False
        return True

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Write the records appended inside the block together when it ends (also when it raises): one
        TransactWriteItems for the records and their chains' head anchors, instead of two writes per record. If
        another writer appended to one of the chains meanwhile, the transaction is refused as a whole and the
        records are appended one by one after the chain's real end (same content, next free seq)."""
        if self._pending is not None:  # nested: the outer block writes
            yield
            return
        self._pending = []
        try:
            yield
        finally:
            pending, self._pending = self._pending, None
            self._flush(pending)

    def _flush(self, pending: list[tuple[LogEvent, dict[str, Any]]]) -> None:
        chunk: list[tuple[LogEvent, dict[str, Any]]] = []
        for entry in pending:
            plans = {e.plan_id for e, _ in chunk} | {entry[0].plan_id}
            if len(chunk) + 1 + len(plans) > TRANSACTION_ITEMS:
                self._write_chunk(chunk)
                chunk = []
            chunk.append(entry)
        if chunk:
            self._write_chunk(chunk)

    def _write_chunk(self, chunk: list[tuple[LogEvent, dict[str, Any]]]) -> None:
        if self._put_records(chunk):
            self._written(chunk)
        else:
            self._reappend(chunk)

    def _writes_for(self, chunk: list[tuple[LogEvent, dict[str, Any]]]) -> list[dict[str, Any]]:
        by_plan: dict[str, list[tuple[LogEvent, dict[str, Any]]]] = {}
        for event, item in chunk:
            by_plan.setdefault(event.plan_id, []).append((event, item))
        return [write for chain in by_plan.values() for write in self._chain_writes(chain)]

    def _written(self, chunk: list[tuple[LogEvent, dict[str, Any]]]) -> None:
        for event, _ in chunk:
            self._last[event.plan_id] = Head(event.seq, event.hash)
            self._empty.discard(event.plan_id)

    def _reappend(self, chunk: list[tuple[LogEvent, dict[str, Any]]]) -> None:
        """Records whose write lost a race: appended again after the chain's real end (same content, next seq)."""
        for event, _ in chunk:
            self._last.pop(event.plan_id, None)
            self._empty.discard(event.plan_id)
        for event, _ in chunk:
            mark = (event.plan_state, event.plan_content) if event.plan_content else None
            self._append(event.plan_id, event.kind, event.data, _at(event.at), mark)

    def _pending_last(self, plan_id: str) -> Head | None:
        assert self._pending is not None
        mine = [event for event, _ in self._pending if event.plan_id == plan_id]
        if mine:
            return Head(mine[-1].seq, mine[-1].hash)
        last = self._known_head(plan_id)
        if last is not None:
            self._last[plan_id] = last
        return last

    def _known_head(self, plan_id: str) -> Head | None:
        """The chain's head as this ledger knows it (no read when it wrote it, or created the chain)."""
        if plan_id in self._last:
            return self._last[plan_id]
        if plan_id in self._empty:
            return None
        return self.head(plan_id)

    def head(self, plan_id: str) -> Head | None:
        """The chain's head anchor: the seq and hash of the last record the writers committed (None: no chain)."""
        found = self.dynamodb.get_item(TableName=self.plans_table, Key={"plan_id": {"S": HEAD_PREFIX + plan_id}},
                                       ConsistentRead=True).get("Item")  # fmt: skip
        if not found or "head_seq" not in found:
            return None
        return Head(int(found["head_seq"]["N"]), found.get("head_hash", {}).get("S", ""))

    def _chain(self, plan_id: str, records: Sequence[tuple[str, dict[str, Any]]], now: datetime,
               after: Head | None, *, first_seq: int | None = None,
               mark: Mark | None = None) -> list[tuple[LogEvent, dict[str, Any]]]:  # fmt: skip
        """The records linked after `after` (None: the chain's start), with their items for the events table. The
        first gets seq `first_seq` when given (a skip over records the anchor does not cover), else the next one."""
        context = self._context.get(plan_id, {})
        state, content = mark or ("", "")
        out: list[tuple[LogEvent, dict[str, Any]]] = []
        prev_seq, prev_hash = after if after else (0, GENESIS)
        seq = first_seq if first_seq is not None and first_seq > prev_seq + 1 else prev_seq + 1
        at = iso(now)
        for kind, data in records:
            clean = finite_json(data)
            skip = prev_seq if seq != prev_seq + 1 else None
            event = LogEvent(
                plan_id=plan_id, seq=seq, at=at, kind=kind, data=clean, prev_hash=prev_hash, context=context,
                prev_seq=skip, plan_state=state, plan_content=content,
                hash=event_hash(plan_id, seq, at, kind, clean, prev_hash, context, prev_seq=skip, plan_state=state,
                                plan_content=content),
            )  # fmt: skip
            item = {
                "plan_id": {"S": plan_id},
                "seq": {"N": str(seq)},
                "at": {"S": at},
                "kind": {"S": kind},
                "data": {"S": json.dumps(clean, sort_keys=True)},
                "prev_hash": {"S": prev_hash},
                "hash": {"S": event.hash},
            }
            if context:
                item["context"] = {"S": json.dumps(context, sort_keys=True)}
            if skip is not None:
                item["prev_seq"] = {"N": str(skip)}
            if content:
                item["plan_state"] = {"S": state}
                item["plan_content"] = {"S": content}
            out.append((event, item))
            prev_seq, prev_hash = seq, event.hash
            seq += 1
        return out

    def _chain_writes(self, chain: Sequence[tuple[LogEvent, dict[str, Any]]]) -> list[dict[str, Any]]:
        """TransactWriteItems actions: each record put only if its seq is free, then the head anchor moved from the
        head the records follow to the last one, only if it is still there (compare and swap: a chain grows from
        its anchor, never from a record the anchor does not cover)."""
        writes: list[dict[str, Any]] = [
            {"Put": {"TableName": self.events_table, "Item": item, "ConditionExpression": "attribute_not_exists(seq)"}}
            for _, item in chain
        ]
        first, last = chain[0][0], chain[-1][0]
        values: dict[str, Any] = {":seq": {"N": str(last.seq)}, ":hash": {"S": last.hash}, ":at": {"S": last.at}}
        if first.predecessor == 0:
            condition = "attribute_not_exists(head_seq)"
        else:
            condition = "head_seq = :after_seq AND head_hash = :after_hash"
            values.update({":after_seq": {"N": str(first.predecessor)}, ":after_hash": {"S": first.prev_hash}})
        writes.append({"Update": {
            "TableName": self.plans_table,
            "Key": {"plan_id": {"S": HEAD_PREFIX + first.plan_id}},
            "UpdateExpression": "SET head_seq = :seq, head_hash = :hash, head_at = :at",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }})  # fmt: skip
        return writes

    def remember(self, plan: Plan) -> None:
        """Keep the plan's context for the events logged about it from now on."""
        context = {"alarm_arn": plan.alarm_arn, "state_timestamp": plan.state_timestamp}
        if plan.slack.ts:
            context["slack_ts"] = plan.slack.ts
        self._context[plan.id] = {k: v for k, v in context.items() if v}

    def events(self, plan_id: str) -> list[LogEvent]:
        """The chain's records that can be read, by seq (`records` also names those that cannot)."""
        return self.records(plan_id)[0]

    def records(self, plan_id: str) -> tuple[list[LogEvent], list[UnreadableRecord]]:
        """Every record of the chain, by seq: those read, and those that cannot be (never a reason to stop)."""
        events: list[LogEvent] = []
        unreadable: list[UnreadableRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self.events_table,
            "KeyConditionExpression": "plan_id = :plan",
            "ExpressionAttributeValues": {":plan": {"S": plan_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                event = _event(item)
                if isinstance(event, LogEvent):
                    events.append(event)
                else:
                    unreadable.append(event)
            if "LastEvaluatedKey" not in page:
                return events, unreadable
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def verify_chain(self, plan_id: str) -> int | None:
        """The seq of the first record whose hash or link is wrong (or missing), or None when the chain holds."""
        return self.verify_report(plan_id).first_bad_seq

    def verify_report(self, plan_id: str) -> ChainReport:
        """Check the chain against its head anchor, and its plan item against what the chain logged; name the first
        problem (`medic.ledger.chain.check_chain`)."""
        events, unreadable = self.records(plan_id)
        plan, problem = self.plan_or_problem(plan_id)
        return check_chain(plan_id, events, self.head(plan_id), unreadable=unreadable, plan=plan,
                           plan_exists=plan is not None or problem is not None, plan_problem=problem)  # fmt: skip

    def chain_ids(self) -> list[str]:
        """Every chain in the log (plans, rejected inputs, control flags), from the head anchors."""
        return sorted(self.heads())

    def heads(self) -> dict[str, tuple[Head, str]]:
        """Every chain's head anchor: chain id → (head, when it last moved: "" for anchors older than that)."""
        found: dict[str, tuple[Head, str]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.plans_table, "ConsistentRead": True, "FilterExpression": "begins_with(plan_id, :head)",
            "ExpressionAttributeValues": {":head": {"S": HEAD_PREFIX}},
        }  # fmt: skip
        while True:
            page = self.dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                key = item["plan_id"]["S"]
                if key.startswith(HEAD_PREFIX) and "head_seq" in item:
                    head = Head(int(item["head_seq"]["N"]), item.get("head_hash", {}).get("S", ""))
                    found[key[len(HEAD_PREFIX) :]] = (head, item.get("head_at", {}).get("S", ""))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _last_seq(self, plan_id: str) -> int:
        """The highest seq the events table holds for the chain (0: none), whatever the anchor says."""
        page = self.dynamodb.query(
            TableName=self.events_table, KeyConditionExpression="plan_id = :plan",
            ExpressionAttributeValues={":plan": {"S": plan_id}}, ProjectionExpression="seq", ScanIndexForward=False,
            Limit=1, ConsistentRead=True,
        )  # fmt: skip
        items = page.get("Items", [])
        return int(items[0]["seq"]["N"]) if items else 0


def _mark(plan: Plan) -> Mark:
    return plan.status, plan_content_hash(plan)


def _plan_of(item: dict[str, Any]) -> tuple[Plan | None, str | None]:
    """The plan in a plans-table item, or why it cannot be read."""
    try:
        return Plan.model_validate_json(item["doc"]["S"]), None
    except (KeyError, TypeError) as exc:
        return None, f"no plan document ({exc})"
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(document)"
        return None, f"{where}: {first['msg']} ({exc.error_count()} problem{'s' if exc.error_count() != 1 else ''})"


def _log_unreadable(unreadable: list[UnreadableItem]) -> None:
    if unreadable:
        from medic.log import get_logger

        for item in unreadable:
            get_logger(component="ledger", plan_id=item.key).warning("unreadable_plan", problem=item.problem)


def _event(item: dict[str, Any]) -> LogEvent | UnreadableRecord:
    """A record of the events table, or what makes it unreadable."""
    plan_id = str(item.get("plan_id", {}).get("S", "?"))
    seq: int | None = None
    try:
        seq = int(item["seq"]["N"])
        return LogEvent(
            plan_id=plan_id, seq=seq, at=item["at"]["S"], kind=item["kind"]["S"], data=json.loads(item["data"]["S"]),
            prev_hash=item["prev_hash"]["S"], hash=item["hash"]["S"],
            context=json.loads(item["context"]["S"]) if "context" in item else {},
            prev_seq=int(item["prev_seq"]["N"]) if "prev_seq" in item else None,
            plan_state=item.get("plan_state", {}).get("S", ""), plan_content=item.get("plan_content", {}).get("S", ""),
        )  # fmt: skip
    except KeyError as exc:
        return UnreadableRecord(plan_id=plan_id, seq=seq, problem=f"no {exc.args[0]!r} attribute of the expected type")
    except (ValueError, TypeError) as exc:  # JSON that is not JSON, a seq that is not a number, a field of a wrong type
        return UnreadableRecord(plan_id=plan_id, seq=seq, problem=str(exc).splitlines()[0][:300])


def _at(text: str) -> datetime:
    from medic.clock import parse_iso

    return parse_iso(text)
