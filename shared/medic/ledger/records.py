"""The records of the remediation log: each chain of hash-linked records in the events table, and its head anchor
in the plans table.

An append links a record after its chain's head anchor and moves the anchor in the same TransactWriteItems (compare
and swap), so a chain grows from its anchor, never from whatever the events table holds last: a record the anchor
does not cover (put there outside Medic's appends) is skipped, never adopted, and `Ledger.verify_report` names it
(`medic.ledger.chain` holds the records' format and the check). `deferred()` holds the records appended inside a
block and writes them together at its end. Reading gives back every record, the readable and the unreadable.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from medic.clock import iso
from medic.errors import StateConflict
from medic.finite import finite_json
from medic.ledger.chain import GENESIS, Head, LogEvent, UnreadableRecord, event_hash
from medic.ledger.keys import HEAD_PREFIX

if TYPE_CHECKING:
    import threading

    from mypy_boto3_dynamodb import DynamoDBClient

APPEND_ATTEMPTS = 8
Record = tuple[str, dict[str, Any]]
"""A record to append: its kind and its data."""
TRANSACTION_ITEMS = 100
"""DynamoDB's limit of actions in one TransactWriteItems (the 4 MB limit is far: an event is capped by the callers)."""
Mark = tuple[str, str]
"""The plan as a record logs it: (state, content hash)."""


class RecordChains:
    """Appends to the chains and reads them back. A part of `Ledger`, which sets up the client, the tables and the
    per-plan caches declared here."""

    dynamodb: DynamoDBClient
    plans_table: str
    events_table: str
    _context: dict[str, dict[str, str]]  # each plan's context, logged on its records (`Plans.remember`)
    _last: dict[str, Head]  # each chain's head as this ledger last wrote or read it
    _marks: dict[str, Mark]  # each plan as this ledger last wrote it: logged on its records
    _empty: set[str]  # chains this ledger just created with their plan: nothing to read back
    _local: threading.local  # per thread: what `deferred` holds

    @property
    def _pending(self) -> list[tuple[LogEvent, dict[str, Any]]] | None:
        return getattr(self._local, "pending", None)

    @_pending.setter
    def _pending(self, value: list[tuple[LogEvent, dict[str, Any]]] | None) -> None:
        self._local.pending = value

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
        found = self.dynamodb.get_item(
            TableName=self.plans_table, Key={"plan_id": {"S": HEAD_PREFIX + plan_id}}, ConsistentRead=True
        ).get("Item")
        if not found or "head_seq" not in found:
            return None
        return Head(int(found["head_seq"]["N"]), found.get("head_hash", {}).get("S", ""))

    def _chain(
        self,
        plan_id: str,
        records: Sequence[tuple[str, dict[str, Any]]],
        now: datetime,
        after: Head | None,
        *,
        first_seq: int | None = None,
        mark: Mark | None = None,
    ) -> list[tuple[LogEvent, dict[str, Any]]]:
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
                plan_id=plan_id,
                seq=seq,
                at=at,
                kind=kind,
                data=clean,
                prev_hash=prev_hash,
                context=context,
                prev_seq=skip,
                plan_state=state,
                plan_content=content,
                hash=event_hash(
                    plan_id,
                    seq,
                    at,
                    kind,
                    clean,
                    prev_hash,
                    context,
                    prev_seq=skip,
                    plan_state=state,
                    plan_content=content,
                ),
            )
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
        writes.append(
            {
                "Update": {
                    "TableName": self.plans_table,
                    "Key": {"plan_id": {"S": HEAD_PREFIX + first.plan_id}},
                    "UpdateExpression": "SET head_seq = :seq, head_hash = :hash, head_at = :at",
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            }
        )
        return writes

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

    def chain_ids(self) -> list[str]:
        """Every chain in the log (plans, rejected inputs, control flags), from the head anchors."""
        return sorted(self.heads())

    def heads(self) -> dict[str, tuple[Head, str]]:
        """Every chain's head anchor: chain id → (head, when it last moved: "" for anchors older than that)."""
        found: dict[str, tuple[Head, str]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.plans_table,
            "ConsistentRead": True,
            "FilterExpression": "begins_with(plan_id, :head)",
            "ExpressionAttributeValues": {":head": {"S": HEAD_PREFIX}},
        }
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
            TableName=self.events_table,
            KeyConditionExpression="plan_id = :plan",
            ExpressionAttributeValues={":plan": {"S": plan_id}},
            ProjectionExpression="seq",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        return int(items[0]["seq"]["N"]) if items else 0


def _event(item: dict[str, Any]) -> LogEvent | UnreadableRecord:
    """A record of the events table, or what makes it unreadable."""
    plan_id = str(item.get("plan_id", {}).get("S", "?"))
    seq: int | None = None
    try:
        seq = int(item["seq"]["N"])
        return LogEvent(
            plan_id=plan_id,
            seq=seq,
            at=item["at"]["S"],
            kind=item["kind"]["S"],
            data=json.loads(item["data"]["S"]),
            prev_hash=item["prev_hash"]["S"],
            hash=item["hash"]["S"],
            context=json.loads(item["context"]["S"]) if "context" in item else {},
            prev_seq=int(item["prev_seq"]["N"]) if "prev_seq" in item else None,
            plan_state=item.get("plan_state", {}).get("S", ""),
            plan_content=item.get("plan_content", {}).get("S", ""),
        )
    except KeyError as exc:
        return UnreadableRecord(plan_id=plan_id, seq=seq, problem=f"no {exc.args[0]!r} attribute of the expected type")
    except (ValueError, TypeError) as exc:  # JSON that is not JSON, a seq that is not a number, a field of a wrong type
        return UnreadableRecord(plan_id=plan_id, seq=seq, problem=str(exc).splitlines()[0][:300])


def _at(text: str) -> datetime:
    from medic.clock import parse_iso

    return parse_iso(text)
