"""Filter patterns of FilterLogEvents in the embedded world, terms and JSON, over HTTP with boto3."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from medic_tools.world.server import EmbeddedAWS

GROUP = "/shared/app"
MESSAGES = [
    json.dumps({"type": "platform.start", "record": {"requestId": "r1", "version": "3"}}),
    json.dumps(
        {
            "type": "platform.report",
            "record": {
                "requestId": "r1",
                "metrics": {"durationMs": 812.5, "billedDurationMs": 813, "initDurationMs": 240.1},
                "status": "success",
                "tags": ["cold", "vpc"],
            },
        }
    ),
    json.dumps({"type": "platform.report", "record": {"requestId": "r2", "metrics": {"durationMs": 35.0}}}),
    json.dumps({"level": "ERROR", "message": "Timeout calling orders-db", "retry": True, "cause": None}),
    "REPORT RequestId: r3\tDuration: 20.00 ms\tBilled Duration: 21 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB",
    "[WARN] slow path taken",
    "[ERROR] [WARN] both",
]


@pytest.fixture
def matching(aws: EmbeddedAWS) -> Callable[[str], list[int]]:
    """Put MESSAGES in GROUP; return a function of a filter pattern giving the indexes of the messages it keeps."""
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    base = int(time.time() * 1000) - 10_000
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="s",
        logEvents=[{"timestamp": base + i, "message": m} for i, m in enumerate(MESSAGES)],
    )

    def run(pattern: str) -> list[int]:
        events = logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)["events"]
        return [MESSAGES.index(event["message"]) for event in events]

    return run


@pytest.mark.parametrize(
    ("pattern", "kept"),
    [
        ("", [0, 1, 2, 3, 4, 5, 6]),
        ('"REPORT RequestId"', [4]),
        ("WARN", [5, 6]),
        ("ERROR WARN", [6]),
        ("WARN -ERROR", [5]),
        ("?Timeout ?slow", [3, 5]),
        ('{ $.type = "platform.report" }', [1, 2]),
        ("{ $.type = platform.* }", [0, 1, 2]),
        ("{ $.type != platform.start }", [1, 2]),
        ("{ $.record.metrics.durationMs > 500 }", [1]),
        ("{ $.record.metrics.durationMs <= 35 }", [2]),
        ("{ $.record.metrics.billedDurationMs = 813 }", [1]),
        ("{ $.record.metrics.initDurationMs = * }", [1]),
        ('{ $.type = "platform.report" && $.record.metrics.initDurationMs NOT EXISTS }', [2]),
        ("{ $.record.tags[0] = cold }", [1]),
        ("{ $.record.metrics = 1 || $.record.metrics != 1 }", []),  # an object is no value node
        ("{ $.cause IS NULL }", [3]),
        ("{ $.retry IS TRUE }", [3]),
        ('{ ($.level = "ERROR" || $.record.requestId = r2) && $.type NOT EXISTS }', [3]),
        ('{ $.message = "*orders*" }', [3]),
    ],
)
def test_filter_patterns(matching: Callable[[str], list[int]], pattern: str, kept: list[int]) -> None:
    assert matching(pattern) == kept


@pytest.mark.parametrize("pattern", ["[ip, user, ...]", "{ $.type = }", "{ type = x }", "{ ($.a = 1 }"])
def test_a_pattern_the_world_cannot_read_is_refused(matching: Callable[[str], list[int]], pattern: str) -> None:
    with pytest.raises(ClientError) as info:
        matching(pattern)

    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
