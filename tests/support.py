"""Helpers every test folder imports (`from support import ...`; pyproject.toml puts tests/ on the path): what Slack
and Lambda's SQS event source mapping send, built one way for every test."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature: "v0=" + HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>") in hex.

    Over the raw bytes of the body, whatever they are (slack_sdk's own signer takes UTF-8 text only)."""
    mac = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return f"v0={mac.hexdigest()}"


def slack_signed_headers(secret: str, body: bytes, *, age_s: int = 0) -> dict[str, str]:
    """The two headers Slack signs a request with, for a request sent `age_s` seconds ago (negative: from the
    future): `x-slack-request-timestamp` (Unix seconds) and `x-slack-signature`."""
    timestamp = str(int(time.time()) - age_s)
    return {"x-slack-request-timestamp": timestamp, "x-slack-signature": slack_signature(secret, timestamp, body)}


def sqs_record(message: Mapping[str, Any], *, receipt_handle: bool = False) -> dict[str, Any]:
    """A message received from SQS (`ReceiveMessage`'s `Messages` item) as a record of the Lambda SQS event the
    event source mapping hands the function; with its receipt handle if asked."""
    record: dict[str, Any] = {"messageId": message["MessageId"]}
    if receipt_handle:
        record["receiptHandle"] = message["ReceiptHandle"]
    return record | {"body": message["Body"], "eventSource": "aws:sqs"}


def sqs_event(*records: Mapping[str, Any]) -> dict[str, Any]:
    """The Lambda SQS event of `records` (see `sqs_record`): {"Records": [...]}."""
    return {"Records": list(records)}
