"""The remediation log in DynamoDB: plans (current state, conditional transitions) and their
append-only, hash-chained audit events.

Two tables so that IAM can tell them apart: the plans table is updated only by conditional writes
on the expected state; the events table only ever receives `PutItem` with `attribute_not_exists`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from medic.clock import iso
from medic.errors import StateConflict
from medic.plan import INITIAL_STATES, Plan, can_transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GENESIS = "0" * 64
APPEND_ATTEMPTS = 8


class LogEvent(BaseModel):
    """One audit record: what happened to a plan, when, chained to the record before it."""

    plan_id: str
    seq: int
    at: str
    kind: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


def event_hash(plan_id: str, seq: int, at: str, kind: str, data: dict[str, Any], prev_hash: str) -> str:
    canonical = json.dumps(
        {"plan_id": plan_id, "seq": seq, "at": at, "kind": kind, "data": data, "prev_hash": prev_hash},
        sort_keys=True, separators=(",", ":"), default=str,
    )  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()


class Ledger:
    """Reads and writes plans and their events. Inject the DynamoDB client and table names."""

    def __init__(self, dynamodb: DynamoDBClient, plans_table: str, events_table: str) -> None:
        self.dynamodb = dynamodb
        self.plans_table = plans_table
        self.events_table = events_table

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
        return True

    def get(self, plan_id: str) -> Plan | None:
        item = self.dynamodb.get_item(TableName=self.plans_table, Key={"plan_id": {"S": plan_id}}, ConsistentRead=True)
        found = item.get("Item")
        return Plan.model_validate_json(found["doc"]["S"]) if found else None

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
        try:
            self.dynamodb.put_item(
                TableName=self.plans_table,
                Item=self._item(plan),
                ConditionExpression="#state = :expected",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":expected": {"S": expected_state}},
            )
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
        }

    # -- events ---------------------------------------------------------------------------------
    def append(self, plan_id: str, kind: str, data: dict[str, Any], now: datetime) -> LogEvent:
        """Append an event to the plan's chain; never overwrites (a lost race retries on the next seq)."""
        for _ in range(APPEND_ATTEMPTS):
            last = self._last_event(plan_id)
            seq = last.seq + 1 if last else 1
            prev_hash = last.hash if last else GENESIS
            at = iso(now)
            clean = json.loads(json.dumps(data, default=str))
            event = LogEvent(
                plan_id=plan_id, seq=seq, at=at, kind=kind, data=clean, prev_hash=prev_hash,
                hash=event_hash(plan_id, seq, at, kind, clean, prev_hash),
            )  # fmt: skip
            try:
                self.dynamodb.put_item(
                    TableName=self.events_table,
                    Item={
                        "plan_id": {"S": plan_id},
                        "seq": {"N": str(seq)},
                        "at": {"S": at},
                        "kind": {"S": kind},
                        "data": {"S": json.dumps(clean, sort_keys=True)},
                        "prev_hash": {"S": prev_hash},
                        "hash": {"S": event.hash},
                    },
                    ConditionExpression="attribute_not_exists(seq)",
                )
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                continue
            return event
        raise StateConflict(plan_id, "a free event sequence number", f"{APPEND_ATTEMPTS} lost races")

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
        """The seq of the first record whose hash or link is wrong, or None when the chain holds."""
        previous = GENESIS
        for expected_seq, event in enumerate(self.events(plan_id), start=1):
            recomputed = event_hash(event.plan_id, event.seq, event.at, event.kind, event.data, event.prev_hash)
            if event.seq != expected_seq or event.prev_hash != previous or event.hash != recomputed:
                return event.seq
            previous = event.hash
        return None

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
        )  # fmt: skip
