"""DynamoDB transactions as AWS documents them: atomic and isolated, at the cost of the items they touch.

moto 5.2.5's `transact_write_items` applies the actions one by one and, to undo them when one fails, first
deep-copies every table the transaction names. Two consequences for a world served by a threaded server:

* a single-item write served by another thread during that copy breaks it ("dictionary changed size during
  iteration"): the client sees a 500 where DynamoDB would have served both requests;
* each transaction costs time proportional to the size of its tables, not of its items, so a log that grows
  makes every later transaction slower: a benchmark would measure moto, not the code under test.

DynamoDB's documented behaviour (API reference, TransactWriteItems; developer guide, "Isolation levels for DynamoDB
transactions"): the actions succeed or fail together; the conditions are evaluated before any write; a
transaction is serializable with the single-item writes (PutItem, UpdateItem, DeleteItem) on its items; no two
actions may target the same item; at most 100 actions. `install()` replaces the method with one that holds a
backend-wide write lock (also taken by the single-item writes, so nothing interleaves), evaluates every condition
first, and writes only when all of them hold: nothing to undo, nothing to copy. A failed transaction raises
`TransactionCanceledException` with one cancellation reason per action, in order (`None` for the actions that
would have succeeded), as AWS reports them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

MAX_ACTIONS = 100
_OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")

#: Held by every item write and by every transaction, in every account and region (one server, one lock).
_WRITE_LOCK = threading.RLock()
_installed = False


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    return wrapper


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]  # type: ignore[no-any-return]
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """All conditions first, then all writes, under the write lock (see the module's docstring)."""
    if len(transact_items) > MAX_ACTIONS:
        raise TooManyTransactionsException()
    with _WRITE_LOCK:
        targets: set[tuple[str, str]] = set()
        actions: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        reasons: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException()
            op_type, op = next(iter(entry.items()))
            if op_type not in _OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            old: dict[str, Any] | None = None
            try:
                key = _key_of(self, op_type, op)
                target = (str(op["TableName"]), str(dict(sorted(key.items()))))
                if target in targets:
                    raise MultipleTransactionsException()
                targets.add(target)
                current = self.get_item(op["TableName"], key)
                condition = op.get("ConditionExpression")
                if condition is not None:
                    check = get_filter_expression(
                        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                    )
                    if not check.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            old = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=old)
                actions.append((op_type, op, key))
                reasons.append((None, None, None))
            except MultipleTransactionsException:
                raise
            except ConditionalCheckFailed as failed:
                reasons.append(("ConditionalCheckFailed", str(failed.message), old))  # type: ignore[arg-type]
            except Exception as error:  # noqa: BLE001 - AWS reports any other failure as that action's reason
                reasons.append((type(error).__name__, str(error), None))  # type: ignore[arg-type]
        if any(code is not None for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)
        for op_type, op, key in actions:  # every condition held: write (the lock keeps them true meanwhile)
            names: Any = op.get("ExpressionAttributeNames")
            values: Any = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(
                    op["TableName"], op["Item"], expression_attribute_names=names, expression_attribute_values=values
                )
            elif op_type == "Delete":
                self.delete_item(
                    op["TableName"], key, expression_attribute_names=names, expression_attribute_values=values
                )
            elif op_type == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )


def install() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with _WRITE_LOCK:
        if _installed:
            return
        for name in ("put_item", "update_item", "delete_item"):
            setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _installed = True
