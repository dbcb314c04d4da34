"""Logs Insights over Lambda's JSON log format, shared log groups and several groups, over HTTP with boto3."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from medic_tools.world import moto_logs_fields
from medic_tools.world.moto_lambda_logging import log_stream_name
from medic_tools.world.server import EmbeddedAWS

SHARED = "/shared/app"
TEXT_GROUP = "/aws/lambda/legacy"
ARN = "arn:aws:logs:us-east-1:123456789012:log-group:"


def report_record(request: str, duration: float, used_mb: int, init_ms: float | None = None) -> str:
    """A `platform.report` record as Lambda writes it in the JSON log format."""
    metrics: dict[str, float] = {
        "durationMs": duration,
        "billedDurationMs": float(int(duration) + 1),
        "memorySizeMB": 1024,
        "maxMemoryUsedMB": used_mb,
    }
    if init_ms is not None:
        metrics["initDurationMs"] = init_ms
    record = {"requestId": request, "metrics": metrics, "status": "success"}
    return json.dumps({"time": "2026-01-05T12:00:00.000Z", "type": "platform.report", "record": record})


def start_record(request: str) -> str:
    return json.dumps({"time": "2026-01-05T12:00:00.000Z", "type": "platform.start", "record": {"requestId": request}})


def app_log(request: str, message: str) -> str:
    return json.dumps({"timestamp": "2026-01-05T12:00:00Z", "level": "INFO", "requestId": request, "message": message})


def stream(function: str, environment: str) -> str:
    return log_stream_name(function, "3", environment, datetime.now(UTC).date(), log_group=SHARED)


#: checkout: 10 invocations of 100..1000 ms, the first 2 cold, in two environments; orders: 4 of 5000 ms.
CHECKOUT = [report_record(f"c{i}", 100.0 * (i + 1), 200 + i, 900.0 if i < 2 else None) for i in range(10)]
ORDERS = [report_record(f"o{i}", 5000.0, 300) for i in range(4)]


@pytest.fixture
def insights(aws: EmbeddedAWS) -> Callable[..., dict[str, Any]]:
    """A shared JSON log group for checkout and orders and a Text group; returns a runner of StartQuery's results."""
    logs = aws.client("logs")
    base = int(time.time() * 1000) - 10_000
    batches = {
        (SHARED, stream("checkout", "aaaa")): [start_record("c0"), app_log("c0", "Timeout calling db"), *CHECKOUT[:5]],
        (SHARED, stream("checkout", "bbbb")): CHECKOUT[5:],
        (SHARED, stream("orders", "cccc")): ORDERS,
        (TEXT_GROUP, "2026/01/05/[$LATEST]dddd"): [
            "REPORT RequestId: t1\tDuration: 20.00 ms\tBilled Duration: 21 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 60 MB\t"
        ],
    }
    for group in {group for group, _ in batches}:
        logs.create_log_group(logGroupName=group)
    for (group, name), messages in batches.items():
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=name,
            logEvents=[{"timestamp": base + 10 * i, "message": m} for i, m in enumerate(messages)],
        )

    def run(query: str, **groups: Any) -> dict[str, Any]:
        now = int(time.time())
        query_id = logs.start_query(
            startTime=now - 3600, endTime=now + 60, queryString=query, **(groups or {"logGroupName": SHARED})
        )["queryId"]
        return dict(logs.get_query_results(queryId=query_id))

    return run


def rows(result: dict[str, Any]) -> list[list[tuple[str, str]]]:
    return [[(cell["field"], cell["value"]) for cell in row] for row in result["results"]]


def test_one_function_s_json_reports_in_a_shared_group(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights(
        'filter type = "platform.report" and @logStream like "/checkout[" '
        "| stats count(*) as invocations, count(record.metrics.initDurationMs) as cold, "
        "pct(record.metrics.durationMs, 99) as p99, avg(record.metrics.initDurationMs) as init_avg, "
        "max(record.metrics.maxMemoryUsedMB) as used_mb, max(record.metrics.memorySizeMB) as size_mb"
    )

    assert rows(result) == [
        [
            ("invocations", "10"),
            ("cold", "2"),
            ("p99", "1000"),
            ("init_avg", "900"),
            ("used_mb", "209"),
            ("size_mb", "1024"),
        ]
    ]
    assert result["statistics"]["recordsMatched"] == 10.0


def test_json_records_have_no_lambda_text_fields(insights: Callable[..., dict[str, Any]]) -> None:
    text_fields = insights('filter @type = "REPORT" or ispresent(@duration) | stats count(*) as n')
    by_type = insights("stats count(*) as n by type")

    assert text_fields["results"] == []
    assert sorted(rows(by_type)) == [
        [("n", "1")],  # the application's log line has no `type`: its group has no value to show
        [("type", "platform.report"), ("n", "14")],
        [("type", "platform.start"), ("n", "1")],
    ]


@pytest.mark.parametrize(
    ("condition", "matched"),
    [
        ('@logStream like "checkout"', 12),
        ("@logStream like /checkout\\[3\\]/", 12),
        ("@logStream =~ /^\\d{4}\\/\\d{2}\\/\\d{2}\\/orders\\[/", 4),
        ('@logStream not like "checkout"', 4),
        ("not @logStream like /orders/", 12),
        ("message like /timeout/", 0),
        ("message like /(?i)timeout/", 1),
        ('message like "Timeout" and level = "INFO"', 1),
        ("record.metrics.durationMs >= 900 and @logStream like /checkout/", 2),
        ("record.requestId like /^o[0-9]$/", 4),
    ],
)
def test_like_with_strings_and_regexes(insights: Callable[..., dict[str, Any]], condition: str, matched: int) -> None:
    result = insights(f"filter {condition} | stats count(*) as n")

    assert result["statistics"]["recordsMatched"] == float(matched)


def test_a_fields_query_over_json_fields_is_answered(insights: Callable[..., dict[str, Any]]) -> None:
    query = "fields record.requestId, record.metrics.durationMs | sort record.metrics.durationMs asc | limit 2"

    result = insights(query)

    assert [row[:2] for row in rows(result)] == [
        [("record.requestId", "c0"), ("record.metrics.durationMs", "100")],
        [("record.requestId", "c1"), ("record.metrics.durationMs", "200")],
    ]


def test_several_log_groups_by_name(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights(
        "filter ispresent(@duration) or ispresent(record.metrics.durationMs) | stats count(*) as n by @log",
        logGroupNames=[SHARED, TEXT_GROUP],
    )

    assert sorted(rows(result)) == [
        [("@log", f"123456789012:{TEXT_GROUP}"), ("n", "1")],
        [("@log", f"123456789012:{SHARED}"), ("n", "14")],
    ]


def test_log_group_identifiers_take_names_and_arns(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights(
        "filter ispresent(@message) | stats count(*) as n", logGroupIdentifiers=[ARN + SHARED, TEXT_GROUP]
    )

    assert rows(result) == [[("n", "17")]]  # 16 events in the shared group, 1 in the Text one


@pytest.mark.parametrize(
    "groups",
    [
        {"logGroupName": SHARED, "logGroupIdentifiers": [SHARED]},
        {"logGroupIdentifiers": [ARN + SHARED + ":*"]},
        {"logGroupNames": [SHARED] * 51},
    ],
)
def test_start_query_takes_exactly_one_way_of_naming_groups(
    insights: Callable[..., dict[str, Any]], groups: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as info:
        insights("stats count(*)", **groups)

    assert info.value.response["Error"]["Code"] == "InvalidParameterException"


def test_json_events_flatten_with_dots() -> None:
    message = json.dumps({"a": {"b": [1, {"c": "x"}]}, "ok": True, "none": None, "@example.com": 2, "n": {"@inner": 3}})

    assert moto_logs_fields.discovered_fields(message) == {
        "a.b.0": 1.0,
        "a.b.1.c": "x",
        "ok": "true",
        "@@example.com": 2.0,
        "n.@inner": 3.0,
    }
    assert moto_logs_fields.discovered_fields("[1, 2]") == {}
    assert moto_logs_fields.discovered_fields("{not json") == {}


def test_json_discovery_stops_at_200_fields() -> None:
    fields = moto_logs_fields.discovered_fields(json.dumps({f"k{i}": i for i in range(250)}))

    assert list(fields) == [f"k{i}" for i in range(200)]
