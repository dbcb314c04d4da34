"""The world's PartiQL SELECTs, over HTTP, as DynamoDB documents ExecuteStatement (medic_tools.world.moto_partiql):
on a table or an index (`FROM "table"."index"`), IN and range conditions with parameters, a sparse index, the
documented errors, and pages that a reader must follow by NextToken (by item count and by size)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from medic_tools.world import moto_partiql
from medic_tools.world.server import EmbeddedAWS

TABLE = "plans"
#: (key, state, updated_at): what Medic's plans table holds, and one item outside the index (no state).
ROWS = [("p-1", "APPLIED", "2026-01-01"), ("p-2", "APPLIED", "2026-01-03"), ("p-3", "FAILED", "2026-01-02"),
        ("p-4", "PROPOSED", "2026-01-05"), ("p-5", "VERIFIED", "2026-01-04"),
        ("p-6", "ROLLED_BACK", "2025-12-01")]  # fmt: skip
BY_STATE = f'SELECT * FROM "{TABLE}"."by_state"'


@pytest.fixture
def ddb(aws: EmbeddedAWS) -> Any:
    client = aws.client("dynamodb")
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("plan_id", "state", "updated_at")],
        KeySchema=[{"AttributeName": "plan_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_state", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"},
                                               {"AttributeName": "updated_at", "KeyType": "RANGE"}]}],
    )  # fmt: skip
    for key, state, updated in ROWS:
        item = {"plan_id": {"S": key}, "state": {"S": state}, "updated_at": {"S": updated}, "doc": {"S": "{}"}}
        client.put_item(TableName=TABLE, Item=item)
    client.put_item(TableName=TABLE, Item={"plan_id": {"S": "control#kill-switch"}, "enabled": {"BOOL": True}})
    return client


def keys(response: dict[str, Any]) -> list[str]:
    return sorted(item["plan_id"]["S"] for item in response["Items"])


def S(value: str) -> dict[str, str]:  # DynamoDB's type letter
    return {"S": value}


def test_in_and_a_sort_key_range_on_an_index_match_one_query_per_state(ddb: Any) -> None:
    states, since = ["APPLIED", "VERIFIED", "FAILED"], "2026-01-02"
    response = ddb.execute_statement(
        Statement=f'{BY_STATE} WHERE "state" IN [?, ?, ?] AND "updated_at" >= ?',
        Parameters=[S(state) for state in states] + [S(since)],
    )
    queried = [
        item["plan_id"]["S"]
        for state in states
        for item in ddb.query(TableName=TABLE, IndexName="by_state",
                              KeyConditionExpression="#s = :s AND updated_at >= :since",
                              ExpressionAttributeNames={"#s": "state"},
                              ExpressionAttributeValues={":s": S(state), ":since": S(since)})["Items"]
    ]  # fmt: skip
    assert keys(response) == sorted(queried) == ["p-2", "p-3", "p-5"]
    assert "NextToken" not in response
    whole = next(item for item in response["Items"] if item["plan_id"]["S"] == "p-2")
    assert whole["doc"] == S("{}")  # ProjectionType ALL: the whole item


def test_literals_or_not_and_a_table_read_without_the_index(ddb: Any) -> None:
    both = ddb.execute_statement(Statement=f"""{BY_STATE} WHERE "state" = 'FAILED' OR "state" = 'ROLLED_BACK'""")
    assert keys(both) == ["p-3", "p-6"]
    since = "'2026-01-02'"
    recent = ddb.execute_statement(
        Statement=f"""{BY_STATE} WHERE "state" IN ['APPLIED'] AND NOT updated_at < {since}"""
    )
    assert keys(recent) == ["p-2"]
    table = ddb.execute_statement(Statement=f'SELECT plan_id FROM "{TABLE}" WHERE plan_id = ?', Parameters=[S("p-4")])
    assert table["Items"] == [{"plan_id": S("p-4")}]  # the projection list
    everything = ddb.execute_statement(Statement=f'SELECT * FROM "{TABLE}"')
    assert len(everything["Items"]) == len(ROWS) + 1  # the table holds the control flag the index leaves out
    assert keys(ddb.execute_statement(Statement=BY_STATE)) == sorted(key for key, _, _ in ROWS)


def test_a_limit_pages_through_nexttoken_and_a_page_may_be_empty(ddb: Any) -> None:
    statement = f'{BY_STATE} WHERE "state" IN [?, ?]'
    parameters, found, pages, token = [S("FAILED"), S("ROLLED_BACK")], [], 0, None
    while True:
        page = ddb.execute_statement(Statement=statement, Parameters=parameters, Limit=2,
                                     **({"NextToken": token} if token else {}))  # fmt: skip
        found += keys(page)
        pages += 1
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(found) == ["p-3", "p-6"]
    assert pages == 3  # six items evaluated two at a time: some pages hold nothing and still go on
    with pytest.raises(ClientError) as other:
        ddb.execute_statement(
            Statement=f"{BY_STATE} WHERE \"state\" = 'APPLIED'", NextToken=token or "bm90IGEgdG9rZW4="
        )
    assert other.value.response["Error"]["Code"] == "ValidationException"


def test_a_page_stops_after_about_a_megabyte(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_partiql, "MAX_PAGE_BYTES", 1)  # every page holds one item: as 1 MB does with big items
    first = ddb.execute_statement(
        Statement=f'{BY_STATE} WHERE "state" IN [?, ?]', Parameters=[S("APPLIED"), S("FAILED")]
    )
    assert len(first["Items"]) <= 1 and "NextToken" in first


@pytest.mark.parametrize(
    ("statement", "parameters", "code"),
    [
        (f'SELECT * FROM "{TABLE}"."by_target" WHERE "state" = ?', [S("APPLIED")], "ValidationException"),
        ('SELECT * FROM "nowhere" WHERE "state" = ?', [S("APPLIED")], "ResourceNotFoundException"),
        (f'{BY_STATE} WHERE "state" IN [?, ?]', [S("APPLIED")], "ValidationException"),
        (f'{BY_STATE} WHERE "state" = ?', [S("APPLIED"), S("FAILED")], "ValidationException"),
    ],
    ids=["unknown index", "unknown table", "too few parameters", "too many parameters"],
)
def test_documented_errors(ddb: Any, statement: str, parameters: list[Any], code: str) -> None:
    with pytest.raises(ClientError) as refused:
        ddb.execute_statement(Statement=statement, Parameters=parameters)
    assert refused.value.response["Error"]["Code"] == code


def test_values_of_another_type_never_compare(ddb: Any) -> None:
    assert ddb.execute_statement(Statement=f'{BY_STATE} WHERE "state" = ?', Parameters=[{"N": "1"}])["Items"] == []
    assert ddb.execute_statement(Statement=f"{BY_STATE} WHERE updated_at > 5")["Items"] == []


def test_other_statements_are_left_to_moto(ddb: Any) -> None:
    item = "{'plan_id': 'p-9', 'state': 'APPLIED', 'updated_at': '2026-02-01'}"
    ddb.execute_statement(Statement=f'INSERT INTO "{TABLE}" VALUE {item}')
    assert "p-9" in keys(ddb.execute_statement(Statement=f"{BY_STATE} WHERE \"state\" = 'APPLIED'"))
