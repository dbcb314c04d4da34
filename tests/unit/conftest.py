"""Fixtures shared by the unit tests: an in-process DynamoDB (moto's `mock_aws`) holding Medic's two tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from moto import mock_aws

from medic.aws import AwsClients
from medic.ledger.store import Ledger
from medic_tools.world import moto_partiql

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

REGION = "us-east-1"
PLANS, EVENTS = "medic-plans", "medic-events"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDBClient]:
    """An empty in-process DynamoDB holding Medic's plans and events tables (as `build_medic_infra` makes them)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    moto_partiql.install()  # PartiQL SELECTs as DynamoDB serves them (moto's own misreads them)
    with mock_aws():
        ddb = AwsClients(region=REGION).dynamodb
        ddb.create_table(
            TableName=PLANS, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                  for n in ("plan_id", "state", "updated_at")],
            KeySchema=[{"AttributeName": "plan_id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {"IndexName": "by_state", "Projection": {"ProjectionType": "ALL"},
                 "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"},
                               {"AttributeName": "updated_at", "KeyType": "RANGE"}]},
            ],
        )  # fmt: skip
        ddb.create_table(
            TableName=EVENTS, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "plan_id", "AttributeType": "S"},
                                  {"AttributeName": "seq", "AttributeType": "N"}],
            KeySchema=[{"AttributeName": "plan_id", "KeyType": "HASH"},
                       {"AttributeName": "seq", "KeyType": "RANGE"}],
        )  # fmt: skip
        yield ddb


@pytest.fixture
def ledger(dynamodb: DynamoDBClient) -> Ledger:
    return Ledger(dynamodb, PLANS, EVENTS)
