"""The remediation log in DynamoDB: plans (current state, conditional transitions) and their
append-only, hash-chained audit events.

Two tables so that IAM can tell them apart: the plans table is updated only by conditional writes
on the expected state; the events table only ever receives `PutItem` with `attribute_not_exists`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, Field

from medic.clock import iso
from medic.errors import LeaseHeld, StateConflict
from medic.plan import INITIAL_STATES, Plan, can_transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GENESIS = "0" * 64
APPEND_ATTEMPTS = 8
Record = tuple[str, dict[str, Any]]
"""A record to append: its kind and its data."""
TRANSACTION_ITEMS = 100
"""DynamoDB's limit of actions in one TransactWriteItems (the 4 MB limit is far: an event is capped by the callers)."""


class LogEvent(BaseModel):
    """One audit record: what happened to a plan, when, chained to the record before it.

    `context` ties the record to the incident: the alarm ARN, its state timestamp and the Slack message ts.
    """

    plan_id: str
    seq: int
    at: str
    kind: str
    data: dict[str, Any]
    prev_hash: str
    hash: str
    context: dict[str, str] = Field(default_factory=dict)


class ChainReport(BaseModel):
    """The result of checking one plan's chain: intact, or the first broken record and why."""

    plan_id: str
    events: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str = ""


def event_hash(
    plan_id: str, seq: int, at: str, kind: str, data: dict[str, Any], prev_hash: str,
    context: dict[str, str] | None = None,
) -> str:  # fmt: skip
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
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


OPEN_PREFIX = "open#"
"""The plans-table item `open#<target>` names the plan holding the target's one open incident (storms attach)."""
HEAD_PREFIX = "head#"
"""The plans-table item `head#<plan id>` anchors the last seq and hash of a plan's chain: deleting the last event
from the (append-only) events table is then detected too. It lives in the other table, which IAM separates."""


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
        self._last: dict[str, LogEvent] = _Recent()
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
        plan holds the target, nothing is written and `ClaimLost` is raised."""
        if plan.status not in INITIAL_STATES:
            raise ValueError(f"a plan cannot start in {plan.status}")
        put = {"TableName": self.plans_table, "Item": self._item(plan),
               "ConditionExpression": "attribute_not_exists(plan_id)"}  # fmt: skip
        if claim is not None and (not events or now is None):
            if not self.claim(claim[0], plan.id, claim[1]):
                raise ClaimLost(claim[0])
            claim = None
        if not events or now is None:
            try:
                self.dynamodb.put_item(**put)  # type: ignore[arg-type]
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                return False
            self.remember(plan)
            self._empty.add(plan.id)
            return True
        self.remember(plan)
        chain = self._chain(plan.id, events, now, after=None)
        claiming = [{"Put": self._claim_put(claim[0], plan.id, claim[1])}] if claim else []
        actions: list[dict[str, Any]] = [{"Put": put}, *claiming, *self._chain_writes(plan.id, chain)]
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
            # The plan was free but its chain was not (records left by an earlier crash): create, then append.
            if not self.create(plan, claim=claim):
                return False
            self._empty.discard(plan.id)
            for kind, data in events:
                self.append(plan.id, kind, data, now)
            return True
        self._last[plan.id] = chain[-1][0]
        return True

    def get(self, plan_id: str) -> Plan | None:
        found = self.item(plan_id)
        if not found or "doc" not in found:
            return None
        plan = Plan.model_validate_json(found["doc"]["S"])
        self.remember(plan)
        self._stored_hash[plan_id] = found["approval_hash"]["S"] if "approval_hash" in found else None
        return plan

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
        """Plans in `state` (the by_state index), optionally only those updated at or after `since` (ISO)."""
        plans: list[Plan] = []
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
        while True:
            page = self.dynamodb.query(**kwargs)
            plans.extend(Plan.model_validate_json(item["doc"]["S"]) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return plans
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def all_plans(self) -> list[Plan]:
        plans: list[Plan] = []
        kwargs: dict[str, Any] = {"TableName": self.plans_table}
        while True:
            page = self.dynamodb.scan(**kwargs)
            # Control flags (kill switch, breaker) share the table under "control#…" keys: not plans.
            plans.extend(Plan.model_validate_json(item["doc"]["S"]) for item in page.get("Items", []) if "doc" in item)
            if "LastEvaluatedKey" not in page:
                return sorted(plans, key=lambda plan: plan.created_at)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @staticmethod
    def _item(plan: Plan) -> dict[str, Any]:
        return {
            "plan_id": {"S": plan.id},
            "state": {"S": plan.status},
            "target": {"S": plan.target},
            "created_at": {"S": plan.created_at},
            "updated_at": {"S": plan.updated_at},
            "doc": {"S": plan.model_dump_json()},
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
        """Append an event to the plan's chain; never overwrites (a lost race retries on the next seq).

        The event carries the plan's context (alarm ARN, state timestamp, Slack ts) when this ledger has seen
        the plan (every use case reads or writes its plan before logging), and moves the chain's head anchor.
        Inside `deferred()`, the record is written with the others of the block, at its end."""
        if self._pending is not None:
            last = self._pending_last(plan_id)
            [(event, item)] = self._chain(plan_id, [(kind, data)], now, after=last)
            self._pending.append((event, item))
            return event
        for attempt in range(APPEND_ATTEMPTS):
            # The last record this ledger wrote for the plan saves a read; if another writer appended since,
            # the conditional put fails and the next attempt reads the chain's real end.
            last = self._known_last(plan_id) if attempt == 0 else self._last_event(plan_id)
            chunk = self._chain(plan_id, [(kind, data)], now, after=last)
            if not self._put_records(chunk):
                self._empty.discard(plan_id)
                continue
            self._written(chunk)
            return chunk[0][0]
        raise StateConflict(plan_id, "a free event sequence number", f"{APPEND_ATTEMPTS} lost races")

    def _put_records(self, chunk: list[tuple[LogEvent, dict[str, Any]]]) -> bool:
        """Write records and move their chains' anchors in one TransactWriteItems; False if a record's seq was taken
        (another writer appended first: nothing was written). An anchor already past a record (the chain's end was
        deleted) does not stop the record: it is written alone, and `verify_report` names the gap."""
        actions = self._writes_for(chunk)
        try:
            self.dynamodb.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
        except self.dynamodb.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            failed = [i for i, reason in enumerate(reasons) if reason.get("Code") not in (None, "None")]
            if not failed:
                raise
            if any("Put" in actions[i] for i in failed):
                return False
            try:
                for _, item in chunk:
                    self.dynamodb.put_item(
                        TableName=self.events_table, Item=item, ConditionExpression="attribute_not_exists(seq)"
                    )
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
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
        return [write for plan_id, chain in by_plan.items() for write in self._chain_writes(plan_id, chain)]

    def _written(self, chunk: list[tuple[LogEvent, dict[str, Any]]]) -> None:
        for event, _ in chunk:
            self._last[event.plan_id] = event
            self._empty.discard(event.plan_id)

    def _reappend(self, chunk: list[tuple[LogEvent, dict[str, Any]]]) -> None:
        """Records whose write lost a race: appended again after the chain's real end (same content, next seq)."""
        for event, _ in chunk:
            self._last.pop(event.plan_id, None)
            self._empty.discard(event.plan_id)
        for event, _ in chunk:
            self.append(event.plan_id, event.kind, event.data, _at(event.at))

    def _pending_last(self, plan_id: str) -> LogEvent | None:
        assert self._pending is not None
        mine = [event for event, _ in self._pending if event.plan_id == plan_id]
        if mine:
            return mine[-1]
        last = self._known_last(plan_id)
        if last is not None:
            self._last[plan_id] = last
        return last

    def _known_last(self, plan_id: str) -> LogEvent | None:
        """The chain's last record as this ledger knows it (no read when it wrote it, or created the chain)."""
        if plan_id in self._last:
            return self._last[plan_id]
        if plan_id in self._empty:
            return None
        return self._last_event(plan_id)

    def _chain(self, plan_id: str, records: Sequence[tuple[str, dict[str, Any]]], now: datetime,
               after: LogEvent | None) -> list[tuple[LogEvent, dict[str, Any]]]:  # fmt: skip
        """The records linked after `after` (None: the chain's start), with their items for the events table."""
        context = self._context.get(plan_id, {})
        out: list[tuple[LogEvent, dict[str, Any]]] = []
        seq, prev_hash = (after.seq, after.hash) if after else (0, GENESIS)
        at = iso(now)
        for kind, data in records:
            seq += 1
            clean = json.loads(json.dumps(data, default=str))
            event = LogEvent(
                plan_id=plan_id, seq=seq, at=at, kind=kind, data=clean, prev_hash=prev_hash, context=context,
                hash=event_hash(plan_id, seq, at, kind, clean, prev_hash, context),
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
            out.append((event, item))
            prev_hash = event.hash
        return out

    def _chain_writes(self, plan_id: str, chain: Sequence[tuple[LogEvent, dict[str, Any]]]) -> list[dict[str, Any]]:
        """TransactWriteItems actions: each record put only if its seq is free, then the head anchor moved to the
        last one (only forward)."""
        writes: list[dict[str, Any]] = [
            {"Put": {"TableName": self.events_table, "Item": item, "ConditionExpression": "attribute_not_exists(seq)"}}
            for _, item in chain
        ]
        last = chain[-1][0]
        writes.append({"Update": {
            "TableName": self.plans_table,
            "Key": {"plan_id": {"S": HEAD_PREFIX + plan_id}},
            "UpdateExpression": "SET head_seq = :seq, head_hash = :hash",
            "ConditionExpression": "attribute_not_exists(head_seq) OR head_seq < :seq",
            "ExpressionAttributeValues": {":seq": {"N": str(last.seq)}, ":hash": {"S": last.hash}},
        }})  # fmt: skip
        return writes

    def remember(self, plan: Plan) -> None:
        """Keep the plan's context for the events logged about it from now on."""
        context = {"alarm_arn": plan.alarm_arn, "state_timestamp": plan.state_timestamp}
        if plan.slack.ts:
            context["slack_ts"] = plan.slack.ts
        self._context[plan.id] = {k: v for k, v in context.items() if v}

    def events(self, plan_id: str) -> list[LogEvent]:
        events: list[LogEvent] = []
        kwargs: dict[str, Any] = {
            "TableName": self.events_table,
            "KeyConditionExpression": "plan_id = :plan",
            "ExpressionAttributeValues": {":plan": {"S": plan_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.query(**kwargs)
            events.extend(self._event(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return events
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def verify_chain(self, plan_id: str) -> int | None:
        """The seq of the first record whose hash or link is wrong (or missing), or None when the chain holds."""
        return self.verify_report(plan_id).first_bad_seq

    def verify_report(self, plan_id: str) -> ChainReport:
        """Recompute the chain and compare its end with the head anchor; name the first broken record."""
        events = self.events(plan_id)
        previous = GENESIS
        for expected_seq, event in enumerate(events, start=1):
            recomputed = event_hash(event.plan_id, event.seq, event.at, event.kind, event.data, event.prev_hash,
                                    event.context)  # fmt: skip
            if event.seq != expected_seq:
                problem = f"record #{expected_seq} is missing (the next one is #{event.seq})"
                return ChainReport(plan_id=plan_id, events=len(events), ok=False, first_bad_seq=expected_seq,
                                   problem=problem)  # fmt: skip
            if event.prev_hash != previous:
                return ChainReport(plan_id=plan_id, events=len(events), ok=False, first_bad_seq=event.seq,
                                   problem=f"record #{event.seq} does not link to the record before it")  # fmt: skip
            if event.hash != recomputed:
                problem = f"record #{event.seq} was modified (its hash does not match its content)"
                return ChainReport(plan_id=plan_id, events=len(events), ok=False, first_bad_seq=event.seq,
                                   problem=problem)  # fmt: skip
            previous = event.hash
        head = self.dynamodb.get_item(TableName=self.plans_table, Key={"plan_id": {"S": HEAD_PREFIX + plan_id}},
                                      ConsistentRead=True).get("Item")  # fmt: skip
        if head:
            head_seq = int(head["head_seq"]["N"])
            if head_seq > len(events):
                return ChainReport(plan_id=plan_id, events=len(events), ok=False, first_bad_seq=len(events) + 1,
                                   problem=f"records #{len(events) + 1}..#{head_seq} are missing (the head anchor "
                                           f"says the chain ends at #{head_seq})")  # fmt: skip
            if head_seq == len(events) and head["head_hash"]["S"] != previous:
                return ChainReport(plan_id=plan_id, events=len(events), ok=False, first_bad_seq=head_seq,
                                   problem=f"record #{head_seq} does not match the head anchor")  # fmt: skip
        elif events:
            return ChainReport(plan_id=plan_id, events=len(events), ok=False, first_bad_seq=len(events),
                               problem="the chain's head anchor is missing")  # fmt: skip
        elif self.get(plan_id) is not None:  # every plan logs at least its alarm: none at all means deleted
            return ChainReport(plan_id=plan_id, events=0, ok=False, first_bad_seq=1,
                               problem="every record and the head anchor are missing")  # fmt: skip
        return ChainReport(plan_id=plan_id, events=len(events), ok=True)

    def chain_ids(self) -> list[str]:
        """Every chain in the log (plans, rejected inputs, control flags), from the head anchors."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {"TableName": self.plans_table, "ProjectionExpression": "plan_id"}
        while True:
            page = self.dynamodb.scan(**kwargs)
            ids += [i["plan_id"]["S"][len(HEAD_PREFIX):] for i in page.get("Items", [])
                    if i["plan_id"]["S"].startswith(HEAD_PREFIX)]  # fmt: skip
            if "LastEvaluatedKey" not in page:
                return sorted(ids)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _last_event(self, plan_id: str) -> LogEvent | None:
        page = self.dynamodb.query(
            TableName=self.events_table,
            KeyConditionExpression="plan_id = :plan",
            ExpressionAttributeValues={":plan": {"S": plan_id}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        return self._event(items[0]) if items else None

    @staticmethod
    def _event(item: dict[str, Any]) -> LogEvent:
        return LogEvent(
            plan_id=item["plan_id"]["S"], seq=int(item["seq"]["N"]), at=item["at"]["S"], kind=item["kind"]["S"],
            data=json.loads(item["data"]["S"]), prev_hash=item["prev_hash"]["S"], hash=item["hash"]["S"],
            context=json.loads(item["context"]["S"]) if "context" in item else {},
        )  # fmt: skip


def _at(text: str) -> datetime:
    from medic.clock import parse_iso

    return parse_iso(text)
