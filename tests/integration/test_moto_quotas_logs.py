"""The world's Service Quotas (Lambda concurrency) and Logs Insights `filter`/`stats`, over HTTP with boto3."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from medic.facts import REPORT_QUERY, WARM_QUERY
from medic_tools.world import moto_ext, moto_logs, moto_quotas
from medic_tools.world.server import EmbeddedAWS

ACCOUNT = "123456789012"
REGION = "us-east-1"
LAMBDA = {"ServiceCode": "lambda", "QuotaCode": "L-B99A9384"}
QUOTA_ARN = f"arn:aws:servicequotas:{REGION}:{ACCOUNT}:lambda/L-B99A9384"


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    """(error code, HTTP status, message) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


# ---------------------------------------------------------------------------------------------------------------
# Service Quotas


def test_the_lambda_quota_is_the_world_s_concurrency_limit(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")

    assert quotas.get_service_quota(**LAMBDA)["Quota"] == {
        "ServiceCode": "lambda",
        "ServiceName": "AWS Lambda",
        "QuotaArn": QUOTA_ARN,
        "QuotaCode": "L-B99A9384",
        "QuotaName": "Concurrent executions",
        "Value": 1000.0,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
        "QuotaAppliedAtLevel": "ACCOUNT",
    }
    moto_ext.set_account_concurrency_limit(2500)
    assert quotas.get_service_quota(**LAMBDA)["Quota"]["Value"] == 2500.0
    assert aws.client("lambda").get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 2500


def test_the_default_quota_ignores_increases(aws: EmbeddedAWS) -> None:
    moto_ext.set_account_concurrency_limit(2500)

    quota = aws.client("service-quotas").get_aws_default_service_quota(**LAMBDA)["Quota"]

    assert (quota["Value"], quota["QuotaName"], quota["Adjustable"]) == (1000.0, "Concurrent executions", True)
    assert quota["QuotaArn"] == f"arn:aws:servicequotas:{REGION}::lambda/L-B99A9384"


def test_moto_s_vpc_quotas_still_answer(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")

    applied = quotas.get_service_quota(ServiceCode="vpc", QuotaCode="L-29B6F2EB")["Quota"]
    default = quotas.get_aws_default_service_quota(ServiceCode="vpc", QuotaCode="L-29B6F2EB")["Quota"]

    assert (applied["QuotaName"], applied["Value"]) == ("Interface VPC endpoints per VPC", 50.0)
    assert default == applied
    assert error_of(lambda: quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A"))[:2] == (
        "NoSuchResourceException",
        400,
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda q: q.get_service_quota(ServiceCode="lambda", QuotaCode="L-00000000"),
        lambda q: q.get_aws_default_service_quota(ServiceCode="lambda", QuotaCode="L-00000000"),
        lambda q: q.request_service_quota_increase(ServiceCode="lambda", QuotaCode="L-00000000", DesiredValue=2000),
        lambda q: q.request_service_quota_increase(ServiceCode="nope", QuotaCode="L-B99A9384", DesiredValue=2000),
        lambda q: q.list_requested_service_quota_change_history_by_quota(ServiceCode="lambda", QuotaCode="L-0"),
    ],
    ids=["get", "default", "request-quota", "request-service", "history"],
)
def test_an_unknown_quota_does_not_exist(aws: EmbeddedAWS, call: Callable[[Any], Any]) -> None:
    code, status, _ = error_of(lambda: call(aws.client("service-quotas")))

    assert (code, status) == ("NoSuchResourceException", 400)


def test_a_request_is_pending_and_can_be_read_back(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")
    before = time.time()

    requested = quotas.request_service_quota_increase(**LAMBDA, DesiredValue=3000)["RequestedQuota"]

    created = requested.pop("Created")
    last_updated = requested.pop("LastUpdated")
    request_id = requested.pop("Id")
    assert requested == {
        "CaseId": "",
        "ServiceCode": "lambda",
        "ServiceName": "AWS Lambda",
        "QuotaCode": "L-B99A9384",
        "QuotaName": "Concurrent executions",
        "DesiredValue": 3000.0,
        "Status": "PENDING",
        "Requester": f"arn:aws:iam::{ACCOUNT}:root",
        "QuotaArn": QUOTA_ARN,
        "GlobalQuota": False,
        "Unit": "None",
        "QuotaRequestedAtLevel": "ACCOUNT",
    }
    assert isinstance(created, datetime) and created == last_updated
    assert before - 1 <= created.timestamp() <= time.time() + 1
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    read = quotas.get_requested_service_quota_change(RequestId=request_id)["RequestedQuota"]
    assert (read["Id"], read["Status"], read["DesiredValue"]) == (request_id, "PENDING", 3000.0)
    history = quotas.list_requested_service_quota_change_history_by_quota(**LAMBDA)
    assert [r["Id"] for r in history["RequestedQuotas"]] == [request_id]
    assert "NextToken" not in history
    # A request is not an increase: the applied value stays until AWS approves it.
    assert quotas.get_service_quota(**LAMBDA)["Quota"]["Value"] == 1000.0


@pytest.mark.parametrize("desired", [1000, 999.5, 0])
def test_a_request_must_ask_for_more_than_the_applied_value(aws: EmbeddedAWS, desired: float) -> None:
    quotas = aws.client("service-quotas")

    code, status, message = error_of(lambda: quotas.request_service_quota_increase(**LAMBDA, DesiredValue=desired))

    assert (code, status) == ("IllegalArgumentException", 400)
    assert "applied value 1000" in message
    assert quotas.list_requested_service_quota_change_history_by_quota(**LAMBDA)["RequestedQuotas"] == []


@pytest.mark.parametrize("open_status", ["PENDING", "CASE_OPENED"])
def test_only_one_request_per_quota_may_be_open(aws: EmbeddedAWS, open_status: str) -> None:
    quotas = aws.client("service-quotas")
    first = quotas.request_service_quota_increase(**LAMBDA, DesiredValue=2000)["RequestedQuota"]["Id"]
    if open_status != "PENDING":
        moto_quotas.resolve_quota_request(first, open_status)

    code, status, _ = error_of(lambda: quotas.request_service_quota_increase(**LAMBDA, DesiredValue=4000))

    assert (code, status) == ("ResourceAlreadyExistsException", 400)
    history = quotas.list_requested_service_quota_change_history_by_quota(**LAMBDA)["RequestedQuotas"]
    assert [(r["Id"], r["Status"]) for r in history] == [(first, open_status)]


def test_a_closed_request_makes_room_for_a_new_one(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")
    first = quotas.request_service_quota_increase(**LAMBDA, DesiredValue=2000)["RequestedQuota"]["Id"]
    moto_quotas.resolve_quota_request(first, "DENIED")

    second = quotas.request_service_quota_increase(**LAMBDA, DesiredValue=1500)["RequestedQuota"]["Id"]

    history = quotas.list_requested_service_quota_change_history_by_quota(**LAMBDA)["RequestedQuotas"]
    assert [(r["Id"], r["Status"], r["DesiredValue"]) for r in history] == [
        (first, "DENIED", 2000.0),
        (second, "PENDING", 1500.0),
    ]
    pending = quotas.list_requested_service_quota_change_history_by_quota(**LAMBDA, Status="PENDING")
    assert [r["Id"] for r in pending["RequestedQuotas"]] == [second]
    page = quotas.list_requested_service_quota_change_history_by_quota(**LAMBDA, MaxResults=1)
    assert [r["Id"] for r in page["RequestedQuotas"]] == [first]
    rest = quotas.list_requested_service_quota_change_history_by_quota(**LAMBDA, NextToken=page["NextToken"])
    assert [r["Id"] for r in rest["RequestedQuotas"]] == [second]
    assert quotas.get_service_quota(**LAMBDA)["Quota"]["Value"] == 1000.0  # DENIED changed nothing


def test_requests_are_per_region(aws: EmbeddedAWS) -> None:
    aws.client("service-quotas").request_service_quota_increase(**LAMBDA, DesiredValue=2000)
    west = aws.client("service-quotas", region="us-west-2")

    west.request_service_quota_increase(**LAMBDA, DesiredValue=3000)

    history = west.list_requested_service_quota_change_history_by_quota(**LAMBDA)["RequestedQuotas"]
    assert [(r["DesiredValue"], r["QuotaArn"]) for r in history] == [
        (3000.0, f"arn:aws:servicequotas:us-west-2:{ACCOUNT}:lambda/L-B99A9384")
    ]


def test_an_unknown_request_id_does_not_exist(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")

    assert error_of(lambda: quotas.get_requested_service_quota_change(RequestId="c0ffee00c0ffee00"))[:2] == (
        "NoSuchResourceException",
        400,
    )
    with pytest.raises(ValueError, match="no quota increase request"):
        moto_quotas.resolve_quota_request("c0ffee00c0ffee00")


def test_an_approved_request_raises_the_lambda_limit(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")
    request = quotas.request_service_quota_increase(**LAMBDA, DesiredValue=3000)["RequestedQuota"]

    moto_quotas.resolve_quota_request(request["Id"])

    read = quotas.get_requested_service_quota_change(RequestId=request["Id"])["RequestedQuota"]
    assert read["Status"] == "APPROVED"
    assert read["LastUpdated"] >= read["Created"]
    assert quotas.get_service_quota(**LAMBDA)["Quota"]["Value"] == 3000.0
    limits = aws.client("lambda").get_account_settings()["AccountLimit"]
    assert (limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]) == (3000, 3000)
    with pytest.raises(ValueError, match="already APPROVED"):
        moto_quotas.resolve_quota_request(request["Id"], "DENIED")


def test_an_approval_never_lowers_the_limit(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")
    request_id = quotas.request_service_quota_increase(**LAMBDA, DesiredValue=3000)["RequestedQuota"]["Id"]
    moto_ext.set_account_concurrency_limit(5000)

    moto_quotas.resolve_quota_request(request_id, "APPROVED")

    assert quotas.get_service_quota(**LAMBDA)["Quota"]["Value"] == 5000.0


def test_a_support_case_keeps_the_request_open_and_gets_a_case_id(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")
    request_id = quotas.request_service_quota_increase(**LAMBDA, DesiredValue=3000)["RequestedQuota"]["Id"]

    moto_quotas.resolve_quota_request(request_id, "CASE_OPENED")
    opened = quotas.get_requested_service_quota_change(RequestId=request_id)["RequestedQuota"]
    moto_quotas.resolve_quota_request(request_id, "CASE_CLOSED")
    closed = quotas.get_requested_service_quota_change(RequestId=request_id)["RequestedQuota"]

    assert opened["Status"] == "CASE_OPENED" and opened["CaseId"].isdigit() and len(opened["CaseId"]) == 10
    assert (closed["Status"], closed["CaseId"]) == ("CASE_CLOSED", opened["CaseId"])
    assert quotas.get_service_quota(**LAMBDA)["Quota"]["Value"] == 1000.0


def test_the_knob_refuses_a_status_it_cannot_set(aws: EmbeddedAWS) -> None:
    request_id = aws.client("service-quotas").request_service_quota_increase(**LAMBDA, DesiredValue=3000)
    with pytest.raises(ValueError, match="status must be one of"):
        moto_quotas.resolve_quota_request(request_id["RequestedQuota"]["Id"], "PENDING")


def test_a_reset_forgets_the_requests(aws: EmbeddedAWS) -> None:
    quotas = aws.client("service-quotas")
    request_id = quotas.request_service_quota_increase(**LAMBDA, DesiredValue=3000)["RequestedQuota"]["Id"]
    moto_quotas.resolve_quota_request(request_id)

    aws.reset()

    assert error_of(lambda: quotas.get_requested_service_quota_change(RequestId=request_id))[0] == (
        "NoSuchResourceException"
    )
    assert quotas.list_requested_service_quota_change_history_by_quota(**LAMBDA)["RequestedQuotas"] == []
    assert quotas.get_service_quota(**LAMBDA)["Quota"]["Value"] == 1000.0
    with pytest.raises(ValueError, match="no quota increase request"):
        moto_quotas.resolve_quota_request(request_id)


# ---------------------------------------------------------------------------------------------------------------
# Logs Insights

GROUP = "/aws/lambda/checkout"


def report(index: int, duration_ms: float, used_mb: int, init_ms: float | None = None) -> str:
    """A Lambda REPORT line as the runtime writes it (tab-separated)."""
    init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
    return (
        f"REPORT RequestId: {index:08d}-0000-4000-8000-000000000000\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: 1024 MB\tMax Memory Used: {used_mb} MB{init}\t"
    )


#: Ten invocations, the first two cold: durations 100, 200, ..., 1000 ms; memory used 500..509 MB.
MESSAGES = [report(i, 100.0 * (i + 1), 500 + i, 1800.0 + 100 * i if i < 2 else None) for i in range(10)] + [
    "START RequestId: 00000000-0000-4000-8000-000000000000 Version: $LATEST",
    "hello from the handler",
]


@pytest.fixture
def insights(aws: EmbeddedAWS) -> Callable[..., dict[str, Any]]:
    """Put MESSAGES (one per 10 ms, ending 10 s ago) in GROUP; return a runner of a query's GetQueryResults."""
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="2026/11/22/[$LATEST]abc")
    base = int(time.time() * 1000) - 10_000
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="2026/11/22/[$LATEST]abc",
        logEvents=[{"timestamp": base + 10 * i, "message": m} for i, m in enumerate(MESSAGES)],
    )

    def run(query: str, *, start: int | None = None, end: int | None = None) -> dict[str, Any]:
        now = int(time.time())
        query_id = logs.start_query(
            logGroupName=GROUP,
            startTime=now - 3600 if start is None else start,
            endTime=now + 60 if end is None else end,
            queryString=query,
        )["queryId"]
        return dict(logs.get_query_results(queryId=query_id))

    return run


def rows(result: dict[str, Any]) -> list[list[tuple[str, str]]]:
    return [[(cell["field"], cell["value"]) for cell in row] for row in result["results"]]


ALL_BYTES = float(sum(len(m.encode()) for m in MESSAGES))


def test_medic_s_report_query_gets_lambda_s_numbers(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights(REPORT_QUERY)

    assert result["status"] == "Complete"
    assert rows(result) == [
        [
            ("invocations", "10"),
            ("cold", "2"),
            ("init_avg", "1850"),
            ("p99", "1000"),
            ("avg", "550"),
            ("memory_used", "509000000"),
            ("memory_size", "1024000000"),
        ]
    ]
    assert result["statistics"] == {"recordsMatched": 10.0, "recordsScanned": 12.0, "bytesScanned": ALL_BYTES}


def test_medic_s_warm_query_leaves_cold_starts_out(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights(WARM_QUERY)

    # Warm invocations: 300, 400, ..., 1000 ms; nearest rank of p99 over 8 values is the 8th.
    assert rows(result) == [[("warm_avg", "650"), ("warm_p99", "1000")]]
    assert result["statistics"]["recordsMatched"] == 8.0


def test_stats_aggregations_name_themselves_and_take_arithmetic(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights(
        'filter @type = "REPORT" | stats count(*), count(@initDuration), sum(@billedDuration), min(@duration), '
        "avg(@maxMemoryUsed / 1000 / 1000) as used_mb, pct(@duration, 50) as p50, percentile(@duration, 90), "
        "max(@duration) - min(@duration) as spread, sum(@duration) / count(*) as mean"
    )

    assert rows(result) == [
        [
            ("count(*)", "10"),
            ("count(@initDuration)", "2"),
            ("sum(@billedDuration)", "5510"),
            ("min(@duration)", "100"),
            ("used_mb", "504.5"),
            ("p50", "500"),
            ("percentile(@duration, 90)", "900"),
            ("spread", "900"),
            ("mean", "550"),
        ]
    ]


def test_stats_by_a_field_then_sort_and_limit(insights: Callable[..., dict[str, Any]]) -> None:
    grouped = insights("filter ispresent(@type) | stats count(*) as n, max(@duration) as slowest by @type")
    cold_first = insights(
        'filter @type = "REPORT" | stats avg(@initDuration) as init by @requestId | sort init desc | limit 3'
    )

    assert rows(grouped) == [[("@type", "REPORT"), ("n", "10"), ("slowest", "1000")]]
    # Warm invocations have no @initDuration: their `init` has no value, is left out and sorts last.
    assert rows(cold_first) == [
        [("@requestId", "00000001-0000-4000-8000-000000000000"), ("init", "1900")],
        [("@requestId", "00000000-0000-4000-8000-000000000000"), ("init", "1800")],
        [("@requestId", "00000009-0000-4000-8000-000000000000")],
    ]


def test_comments_run_to_the_end_of_their_line(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights(
        "# cold starts only\n"
        "filter ispresent(@initDuration) # not the warm ones | stats count(*)\n"
        "| stats count(*) as n"
    )

    assert rows(result) == [[("n", "2")]]


def test_stats_without_a_matching_event_returns_no_row(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights('filter @type = "INIT_REPORT" | stats count(*) as n')

    assert result["results"] == []
    assert result["statistics"] == {"recordsMatched": 0.0, "recordsScanned": 12.0, "bytesScanned": ALL_BYTES}


@pytest.mark.parametrize(
    ("condition", "matched"),
    [
        ("@duration = 300", 1),
        ("@duration == 300", 1),
        ("@duration != 300", 9),
        ("@duration < 300", 2),
        ("@duration <= 300", 3),
        ("@duration > 300", 7),
        ("@duration >= 300", 8),
        ('@type = "REPORT"', 10),
        ("@type = 'REPORT'", 10),
        ('@type != "REPORT"', 0),  # absent on START and handler lines: a comparison with nothing is false
        ("ispresent(@initDuration)", 2),
        ("not ispresent(@initDuration)", 10),
        ("@duration > 200 and @duration < 600", 3),
        ("@duration < 200 or @duration > 900", 2),
        ("not (@duration < 200 or @duration > 900) and ispresent(@duration)", 8),
        ("(@duration + 100) / 2 >= 500", 2),
        ("@maxMemoryUsed / 1000000 = 505", 1),
        ('@message = "hello from the handler"', 1),
    ],
)
def test_filter_conditions(insights: Callable[..., dict[str, Any]], condition: str, matched: int) -> None:
    result = insights(f"filter {condition} | stats count(*) as n")

    assert result["statistics"]["recordsMatched"] == float(matched)
    assert rows(result) == ([[("n", str(matched))]] if matched else [])


def test_a_filter_without_stats_shows_the_fields_named(insights: Callable[..., dict[str, Any]]) -> None:
    named = insights("filter @duration >= 900 | fields @requestId, @duration / 1000 as seconds | sort @duration asc")
    unnamed = insights('filter @message = "hello from the handler"')

    assert [row[:2] for row in rows(named)] == [
        [("@requestId", "00000008-0000-4000-8000-000000000000"), ("seconds", "0.9")],
        [("@requestId", "00000009-0000-4000-8000-000000000000"), ("seconds", "1")],
    ]
    assert [row[2][0] for row in rows(named)] == ["@ptr", "@ptr"]
    (row,) = rows(unnamed)
    assert [field for field, _ in row] == ["@timestamp", "@message", "@ptr"]
    assert row[1] == ("@message", "hello from the handler")
    assert datetime.strptime(row[0][1], "%Y-%m-%d %H:%M:%S.%f").year >= 2024


def test_a_query_without_filter_or_stats_is_moto_s(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights("fields @timestamp, @message | limit 2")

    assert [[field for field, _ in row] for row in rows(result)] == [["@ptr", "@timestamp", "@message"]] * 2
    assert [row[2][1] for row in rows(result)] == [MESSAGES[-1], MESSAGES[-2]]  # newest first
    assert result["statistics"] == {"recordsMatched": 12.0, "recordsScanned": 12.0, "bytesScanned": ALL_BYTES}


def test_a_query_over_discovered_fields_without_filter_is_answered(insights: Callable[..., dict[str, Any]]) -> None:
    result = insights("fields @requestId, @duration | sort @duration desc | limit 2")

    assert [row[:2] for row in rows(result)] == [
        [("@requestId", "00000009-0000-4000-8000-000000000000"), ("@duration", "1000")],
        [("@requestId", "00000008-0000-4000-8000-000000000000"), ("@duration", "900")],
    ]


def test_only_events_in_the_time_range_are_scanned(insights: Callable[..., dict[str, Any]]) -> None:
    now = int(time.time())

    result = insights("stats count(*) as n", start=now - 7200, end=now - 3600)

    assert result["results"] == []
    assert result["statistics"] == {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}


@pytest.mark.parametrize(
    ("query", "offset"),
    [
        ("filter @duration >", 18),
        ("stats @duration", 6),
        ("stats count(*) as", 17),
        ("stats median(@duration)", 6),
        ("stats pct(@duration, 101)", 21),
        ("filter @message like 5", 21),
        ("filter @message like /timeout", 21),
        ("filter @message like /(/", 21),
        ("filter @duration in [1, 2]", 20),
        ("filter @type = 'REPORT' | parse @message '* *' as a, b", 26),
        ("filter @type = 'REPORT' | limit many", 32),
        ("filter @type = 'REPORT' | stats count(*) by bin(5m)", 44),
        ("filter @type = 'REPORT' ) | stats count(*)", 24),
    ],
)
def test_a_query_the_engine_cannot_parse_is_malformed(aws: EmbeddedAWS, query: str, offset: int) -> None:
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=GROUP)

    with pytest.raises(ClientError) as info:
        logs.start_query(logGroupName=GROUP, startTime=0, endTime=int(time.time()), queryString=query)

    error = info.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("MalformedQueryException", 400)
    assert error["queryCompileError"]["location"]["startCharOffset"] == offset
    assert error["queryCompileError"]["message"] == error["Error"]["Message"]


def test_a_missing_log_group_is_still_not_found(aws: EmbeddedAWS) -> None:
    logs = aws.client("logs")

    code, status, _ = error_of(
        lambda: logs.start_query(logGroupName="/aws/lambda/nope", startTime=0, endTime=1, queryString=REPORT_QUERY)
    )

    assert (code, status) == ("ResourceNotFoundException", 400)


def test_report_lines_discover_lambda_s_fields() -> None:
    cold = moto_logs.discovered_fields(report(7, 350.0, 512, 1800.0))
    warm = moto_logs.discovered_fields(report(8, 12.5, 90))

    assert cold == {
        "@type": "REPORT",
        "@requestId": "00000007-0000-4000-8000-000000000000",
        "@duration": 350.0,
        "@billedDuration": 351.0,
        "@memorySize": 1024_000_000.0,
        "@maxMemoryUsed": 512_000_000.0,
        "@initDuration": 1800.0,
    }
    assert "@initDuration" not in warm and warm["@duration"] == 12.5
    assert moto_logs.discovered_fields("START RequestId: x Version: $LATEST") == {}
