"""The plans table's items read as they are (consistently, several in one round trip with `prefetch`), and the two
kinds of item that are not plans: the claims that keep one open plan per target (`open#<target>`) and the control
flags (`control#…`: kill switch, circuit breaker; what they mean is `medic.safety`'s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medic.ledger.keys import OPEN_PREFIX

if TYPE_CHECKING:
    import threading

    from mypy_boto3_dynamodb import DynamoDBClient


class ClaimLost(Exception):
    """Another open plan holds the target this plan tried to claim (nothing was written)."""

    def __init__(self, target: str) -> None:
        super().__init__(f"another open plan holds {target}")
        self.target = target


@dataclass(frozen=True)
class Control:
    """A control flag as stored in the plans table."""

    enabled: bool
    by: str = ""
    at: str = ""
    reason: str = ""


class TableItems:
    """Reads items, claims targets, reads and writes control flags. A part of `Ledger`, which sets up the client, the
    table and the thread-local state declared here."""

    dynamodb: DynamoDBClient
    plans_table: str
    _local: threading.local  # per thread: what `prefetch` read

    @property
    def _prefetched(self) -> dict[str, dict[str, Any] | None]:
        found: dict[str, dict[str, Any] | None] | None = getattr(self._local, "prefetched", None)
        if found is None:
            found = self._local.prefetched = {}
        return found

    # -- raw items, read together ----------------------------------------------------------------
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

    # -- one open plan per target ----------------------------------------------------------------
    def holder(self, target: str) -> str | None:
        """The plan that last claimed `target` (it may have finished since: check its state)."""
        item = self.item(OPEN_PREFIX + target)
        return item["holder"]["S"] if item else None

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

    # -- control flags -----------------------------------------------------------------------------
    def control(self, key: str) -> Control:
        """The control flag under `key` (off when it was never set)."""
        item = self.item(key)
        if not item:
            return Control(enabled=False)
        return Control(
            enabled=item.get("enabled", {}).get("BOOL", False),
            by=item.get("by", {}).get("S", ""),
            at=item.get("at", {}).get("S", ""),
            reason=item.get("reason", {}).get("S", ""),
        )

    def put_control(self, key: str, control: Control) -> None:
        """Write the control flag under `key` as it is now (logging who set it is the caller's part:
        `medic.safety.SafetyControls.set_control`)."""
        self.dynamodb.put_item(
            TableName=self.plans_table,
            Item={
                "plan_id": {"S": key},
                "enabled": {"BOOL": control.enabled},
                "by": {"S": control.by},
                "at": {"S": control.at},
                "reason": {"S": control.reason},
            },
        )
