"""The world's DynamoDB transactions, over HTTP: all or nothing, isolated from concurrent item writes (as AWS
documents TransactWriteItems), without copying whole tables (medic_tools.world.moto_dynamodb)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from medic_tools.world.server import EmbeddedAWS

TABLE = "items"


@pytest.fixture
def ddb(aws: EmbeddedAWS) -> Any:
    client = aws.client("dynamodb")
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )  # fmt: skip
    return client


def put(pk: str, **extra: str) -> dict[str, Any]:
    item = {"pk": {"S": pk}, **{k: {"S": v} for k, v in extra.items()}}
    return {"Put": {"TableName": TABLE, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def keys(ddb: Any) -> set[str]:
    return {item["pk"]["S"] for item in ddb.scan(TableName=TABLE)["Items"]}


def test_a_transaction_whose_one_condition_fails_writes_nothing(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "taken"}, "v": {"S": "old"}})

    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(TransactItems=[
            put("a"), put("b"), put("taken", v="new"),
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "counter"}}, "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "1"}}}},
        ])  # fmt: skip

    error = refused.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in error["CancellationReasons"]] == ["None", "None", "ConditionalCheckFailed", "None"]
    assert keys(ddb) == {"taken"}
    assert ddb.get_item(TableName=TABLE, Key={"pk": {"S": "taken"}})["Item"]["v"]["S"] == "old"


def test_a_transaction_whose_conditions_hold_writes_every_item(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "head"}, "seq": {"N": "1"}})

    ddb.transact_write_items(TransactItems=[
        put("e2"), put("e3"),
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "head"}}, "UpdateExpression": "SET seq = :s",
                    "ConditionExpression": "seq < :s", "ExpressionAttributeValues": {":s": {"N": "3"}}}},
    ])  # fmt: skip

    assert keys(ddb) == {"head", "e2", "e3"}
    assert ddb.get_item(TableName=TABLE, Key={"pk": {"S": "head"}})["Item"]["seq"]["N"] == "3"


def test_two_actions_on_one_item_are_refused(ddb: Any) -> None:
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(TransactItems=[put("same"), put("same")])

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert keys(ddb) == set()


def test_transactions_and_item_writes_from_many_threads_all_land(ddb: Any) -> None:
    def writer(n: int) -> None:
        for i in range(10):
            ddb.transact_write_items(TransactItems=[put(f"t{n}-{i}-a"), put(f"t{n}-{i}-b")])
            ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"p{n}-{i}"}})

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(writer, range(6)))  # a 500 from the server would raise here

    assert len(keys(ddb)) == 6 * 10 * 3


def test_of_two_racing_transactions_on_one_item_exactly_one_wins(ddb: Any) -> None:
    def attempt(n: int) -> bool:
        try:
            ddb.transact_write_items(TransactItems=[put("contended", by=str(n)), put(f"side-{n}")])
        except ClientError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(attempt, range(16)))

    assert won.count(True) == 1
    winner = won.index(True)
    assert keys(ddb) == {"contended", f"side-{winner}"}
