"""The promotion items of the plans table (`promotion#<row>#<target>`, `medic.ledger.keys.PROMOTION_PREFIX`): where a
proposal to run one runbook row in mode auto on one target stands. Each write is conditional on the state it was read
in and carries the record that explains it on the promotion's own chain, in one TransactWriteItems.

The item's attribute is `promotion_state` (not `state`): it stays out of the plans' `by_state` index.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from medic.ledger.items import TableItems
from medic.ledger.keys import PROMOTION_PREFIX
from medic.ledger.records import Record, RecordChains

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: The states in which a scope may be proposed again (with new evidence).
CLOSED_STATES = ("DEMOTED", "REJECTED", "RESET")


class PromotionItems(TableItems, RecordChains):
    """Reads and writes the promotion items. A part of `Ledger`."""

    dynamodb: DynamoDBClient
    plans_table: str

    def promotion_item(self, key: str) -> dict[str, Any] | None:
        """The promotion item as stored, plain strings and sets (None: the scope was never proposed nor reset)."""
        found = self.item(key)  # read consistently, or what triage's first read (`prefetch`) carried
        return _plain(found) if found else None

    def promotion_items(self) -> list[dict[str, Any]]:
        """Every promotion item (a scan: the CLI's listing, never a use case's)."""
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.plans_table,
            "ConsistentRead": True,
            "FilterExpression": "begins_with(plan_id, :p)",
            "ExpressionAttributeValues": {":p": {"S": PROMOTION_PREFIX}},
        }
        while True:
            page = self.dynamodb.scan(**kwargs)
            found.extend(_plain(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda item: str(item["plan_id"]))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_promotion(
        self,
        key: str,
        state: str,
        attributes: dict[str, str],
        record: Record,
        now: datetime,
        *,
        expected: tuple[str, ...] | None = None,
    ) -> bool:
        """Write the promotion item in `state` with `attributes` (strings), and `record` on its chain, together; only
        if the item does not exist or is in one of the `expected` states (None: `CLOSED_STATES`). False when the
        condition failed (another writer moved it first)."""
        wanted = CLOSED_STATES if expected is None else expected
        names = {f":s{i}": {"S": s} for i, s in enumerate(wanted)}
        item = {"plan_id": {"S": key}, "promotion_state": {"S": state}, **{k: {"S": v} for k, v in attributes.items()}}
        put = {
            "TableName": self.plans_table,
            "Item": item,
            "ConditionExpression": f"attribute_not_exists(plan_id) OR promotion_state IN ({', '.join(names)})",
            "ExpressionAttributeValues": names,
        }
        return self._with_record(key, {"Put": put}, record, now)

    def move_promotion(
        self, key: str, expected: str, state: str, record: Record, now: datetime, **attributes: str
    ) -> bool:
        """Move the promotion item from `expected` to `state` (setting `attributes`), with `record` on its chain, in
        one write; False when it was no longer in `expected`."""
        values: dict[str, Any] = {":expected": {"S": expected}, ":state": {"S": state}}
        sets = ["promotion_state = :state"]
        for number, (name, value) in enumerate(sorted(attributes.items())):
            sets.append(f"{name} = :a{number}")
            values[f":a{number}"] = {"S": value}
        update = {
            "TableName": self.plans_table,
            "Key": {"plan_id": {"S": key}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "promotion_state = :expected",
            "ExpressionAttributeValues": values,
        }
        return self._with_record(key, {"Update": update}, record, now)

    def set_promotion_card(self, key: str, channel: str, ts: str) -> None:
        """Keep where the promotion's card was posted (what a click must come from)."""
        self.dynamodb.update_item(
            TableName=self.plans_table,
            Key={"plan_id": {"S": key}},
            UpdateExpression="SET slack_channel = :c, slack_ts = :t",
            ConditionExpression="attribute_exists(plan_id)",
            ExpressionAttributeValues={":c": {"S": channel}, ":t": {"S": ts}},
        )

    def add_promotion_approval(self, key: str, user: str, proposal_hash: str) -> frozenset[str] | None:
        """Add `user` to the proposal's approvals (still PROPOSED, still this proposal, the user not yet in it), in one
        conditional write; the approvals after it, or None when the condition failed."""
        try:
            response = self.dynamodb.update_item(
                TableName=self.plans_table,
                Key={"plan_id": {"S": key}},
                UpdateExpression="ADD approvals :users",
                ConditionExpression="promotion_state = :proposed AND proposal_hash = :hash "
                "AND NOT contains(approvals, :user)",
                ExpressionAttributeValues={
                    ":users": {"SS": [user]},
                    ":proposed": {"S": "PROPOSED"},
                    ":hash": {"S": proposal_hash},
                    ":user": {"S": user},
                },
                ReturnValues="UPDATED_NEW",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        return frozenset(response["Attributes"]["approvals"]["SS"])

    def _with_record(self, key: str, write: dict[str, Any], record: Record, now: datetime) -> bool:
        """`write` and `record` (appended to the chain `key`) in one TransactWriteItems. When only the chain lost a
        race (another append moved its head), the write is made alone and the record appended after the chain's end."""
        chain = self._chain(key, [record], now, after=self._known_head(key))
        try:
            self.dynamodb.transact_write_items(TransactItems=[write, *self._chain_writes(chain)])  # type: ignore[list-item]
        except self.dynamodb.exceptions.TransactionCanceledException as exc:
            codes = [reason.get("Code") for reason in exc.response.get("CancellationReasons") or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            if not any(code == "ConditionalCheckFailed" for code in codes):
                raise
            try:
                if "Put" in write:
                    self.dynamodb.put_item(**write["Put"])
                else:
                    self.dynamodb.update_item(**write["Update"])
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                return False
            self._last.pop(key, None)
            self.append(key, record[0], record[1], now)
            return True
        self._written(chain)
        return True


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain values: strings, and string sets as sorted lists."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            out[name] = value["S"]
        elif "SS" in value:
            out[name] = sorted(value["SS"])
        elif "N" in value:
            out[name] = value["N"]
    return out
