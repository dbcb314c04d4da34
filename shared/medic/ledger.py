"""The remediation log in DynamoDB: plans (current state, conditional transitions) and their
append-only, hash-chained audit events.

Two tables so that IAM can tell them apart: the plans table is updated only by conditional writes
on the expected state; the events table only ever receives `PutItem` with `attribute_not_exists`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from medic.clock import iso
from medic.errors import StateConflict
from medic.plan import INITIAL_STATES, Plan, can_transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GENESIS = "0" * 64
APPEND_ATTEMPTS = 8


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


class Ledger:
    """Reads and writes plans and their events. Inject the DynamoDB client and table names."""

    def __init__(self, dynamodb: DynamoDBClient, plans_table: str, events_table: str) -> None:
        self.dynamodb = dynamodb
        self.plans_table = plans_table
        self.events_table = events_table
        self._context: dict[str, dict[str, str]] = {}
        self._last: dict[str, LogEvent] = {}

    # -- plans ----------------------------------------------------------------------------------
    def create(self, plan: Plan) -> bool:
        """Store a new plan; False if a plan with this id exists (a duplicate delivery)."""
        if plan.status not in INITIAL_STATES:
            raise ValueError(f"a plan cannot start in {plan.status}")
        try:
            self.dynamodb.put_item(
                TableName=self.plans_table,
                Item=self._item(plan),
                ConditionExpression="attribute_not_exists(plan_id)",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        self.remember(plan)
        return True

    def get(self, plan_id: str) -> Plan | None:
        item = self.dynamodb.get_item(TableName=self.plans_table, Key={"plan_id": {"S": plan_id}}, ConsistentRead=True)
        found = item.get("Item")
        if not found or "doc" not in found:
            return None
        plan = Plan.model_validate_json(found["doc"]["S"])
        self.remember(plan)
        return plan

    def transition(self, plan: Plan, new_state: str, now: datetime, **changes: Any) -> Plan:
        """Move `plan` to `new_state` if (and only if) it is still in its current state."""
        expected = plan.status
        if not can_transition(expected, new_state):
            raise StateConflict(plan.id, f"a state that may become {new_state}", expected)
        updated = plan.model_copy(update={**changes, "status": new_state, "updated_at": iso(now)})
        self._conditional_put(updated, expected)
        return updated

    def save(self, plan: Plan, now: datetime, **changes: Any) -> Plan:
        """Update a plan's details without changing its state (still conditional on that state)."""
        updated = plan.model_copy(update={**changes, "updated_at": iso(now)})
        self._conditional_put(updated, plan.status)
        return updated

    def _conditional_put(self, plan: Plan, expected_state: str) -> None:
        """Rewrite an existing plan's item only if it is still in `expected_state` (UpdateItem: it can never
        create a plan, so the roles that decide and verify need no PutItem on the plans table)."""
        item = self._item(plan)
        try:
            self.dynamodb.update_item(
                TableName=self.plans_table,
                Key={"plan_id": item["plan_id"]},
                UpdateExpression="SET #state = :state, #target = :target, created_at = :created, "
                "updated_at = :updated, doc = :doc",
                ConditionExpression="attribute_exists(plan_id) AND #state = :expected",
                ExpressionAttributeNames={"#state": "state", "#target": "target"},
                ExpressionAttributeValues={
                    ":state": item["state"], ":target": item["target"], ":created": item["created_at"],
                    ":updated": item["updated_at"], ":doc": item["doc"], ":expected": {"S": expected_state},
                },
            )  # fmt: skip
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            current = self.get(plan.id)
            raise StateConflict(plan.id, expected_state, current.status if current else None) from None
        self.remember(plan)

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
        }

    # -- one open plan per target ----------------------------------------------------------------
    def holder(self, target: str) -> str | None:
        """The plan that last claimed `target` (it may have finished since: check its state)."""
        item = self.dynamodb.get_item(TableName=self.plans_table, Key={"plan_id": {"S": OPEN_PREFIX + target}},
                                      ConsistentRead=True).get("Item")  # fmt: skip
        return item["holder"]["S"] if item else None

    def claim(self, target: str, plan_id: str, stale_holder: str | None) -> bool:
        """Claim `target` for `plan_id`: only if nobody holds it, or it is still held by `stale_holder` (a plan
        the caller saw finished). One conditional write: of two concurrent triages, one wins."""
        kwargs: dict[str, Any] = {
            "TableName": self.plans_table,
            "Item": {"plan_id": {"S": OPEN_PREFIX + target}, "holder": {"S": plan_id}},
            "ConditionExpression": "attribute_not_exists(plan_id)",
        }
        if stale_holder:
            kwargs["ConditionExpression"] += " OR holder = :stale"
            kwargs["ExpressionAttributeValues"] = {":stale": {"S": stale_holder}}
        try:
            self.dynamodb.put_item(**kwargs)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

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
        the plan (every use case reads or writes its plan before logging), and moves the chain's head anchor."""
        context = self._context.get(plan_id, {})
        for attempt in range(APPEND_ATTEMPTS):
            # The last record this ledger wrote for the plan saves a read; if another writer appended since,
            # the conditional put fails and the next attempt reads the chain's real end.
            cached = self._last.get(plan_id) if attempt == 0 else None
            last = cached or self._last_event(plan_id)
            seq = last.seq + 1 if last else 1
            prev_hash = last.hash if last else GENESIS
            at = iso(now)
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
            try:
                self.dynamodb.put_item(
                    TableName=self.events_table, Item=item, ConditionExpression="attribute_not_exists(seq)"
                )
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                continue
            self._anchor(plan_id, seq, event.hash)
            self._last[plan_id] = event
            return event
        raise StateConflict(plan_id, "a free event sequence number", f"{APPEND_ATTEMPTS} lost races")

    def _anchor(self, plan_id: str, seq: int, digest: str) -> None:
        """Move the head anchor forward (never back: a slower writer of an earlier seq does not rewind it)."""
        with contextlib.suppress(self.dynamodb.exceptions.ConditionalCheckFailedException):
            self.dynamodb.update_item(
                TableName=self.plans_table,
                Key={"plan_id": {"S": HEAD_PREFIX + plan_id}},
                UpdateExpression="SET head_seq = :seq, head_hash = :hash",
                ConditionExpression="attribute_not_exists(head_seq) OR head_seq < :seq",
                ExpressionAttributeValues={":seq": {"N": str(seq)}, ":hash": {"S": digest}},
            )

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
