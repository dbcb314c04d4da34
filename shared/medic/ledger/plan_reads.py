"""Reading plans back from the plans table: by state (the `by_state` index: one state by Query, several states by
one PartiQL SELECT) or all (a Scan); an item that cannot be read as a plan is named, never fatal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from medic.plan import Plan

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class UnreadableItem(BaseModel):
    """A plans-table item Medic cannot read back as a plan: its key and why."""

    key: str
    problem: str


class PlanReads:
    """The reads of many plans at once. A part of `Ledger`, which sets up the client and the tables."""

    dynamodb: DynamoDBClient
    plans_table: str

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

    def by_states(self, states: Sequence[str], *, since: str | None = None) -> list[Plan]:
        """Plans in any of `states`, optionally only those updated at or after `since` (ISO), in one request: a PartiQL
        SELECT on the by_state index whose WHERE names the index's partition key with IN, which DynamoDB runs as a
        query of each state's partition, never a scan (developer guide, "PartiQL select statements"). Unreadable items
        are left out and logged, as by `by_state`."""
        marks = ", ".join("?" for _ in states)  # the values go as parameters; the table name is Medic's setting
        statement = f'SELECT * FROM "{self.plans_table}"."by_state" WHERE "state" IN [{marks}]'  # noqa: S608
        parameters: list[dict[str, str]] = [{"S": state} for state in states]
        if since:
            statement += ' AND "updated_at" >= ?'
            parameters.append({"S": since})
        plans, unreadable = self._pages(
            lambda token: self.dynamodb.execute_statement(
                Statement=statement, Parameters=parameters, **({"NextToken": token} if token else {})
            ),
            "NextToken",
        )
        _log_unreadable(unreadable)
        return plans

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
        def read(start: Any) -> Any:
            args = {**kwargs, **({"ExclusiveStartKey": start} if start else {})}
            return self.dynamodb.query(**args) if query else self.dynamodb.scan(**args)

        return self._pages(read, "LastEvaluatedKey")

    @staticmethod
    def _pages(read: Callable[[Any], Any], more: str) -> tuple[list[Plan], list[UnreadableItem]]:
        """The plans of every page `read(token)` returns, following `more` (the page's continuation) to the last."""
        plans: list[Plan] = []
        unreadable: list[UnreadableItem] = []
        token = None
        while True:
            page = read(token)
            # Control flags (kill switch, breaker), claims and head anchors share the table without a "doc".
            for item in page.get("Items", []):
                if "doc" not in item:
                    continue
                plan, problem = plan_of(item)
                if plan is not None:
                    plans.append(plan)
                else:
                    unreadable.append(
                        UnreadableItem(key=str(item.get("plan_id", {}).get("S", "?")), problem=problem or "unreadable")
                    )
            token = page.get(more)
            if not token:
                return plans, unreadable


def plan_of(item: dict[str, Any]) -> tuple[Plan | None, str | None]:
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
