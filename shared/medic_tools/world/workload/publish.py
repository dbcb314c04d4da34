"""Writing what the model emitted into the world, through the AWS APIs as AWS documents them (boto3 over HTTP).

* PutMetricData: at most 1,000 MetricData members per request and 1 MB of payload (CloudWatch API reference,
  PutMetricData); we send 200 a request (Duration members carry up to 150 values each).
* Logs: the log group (created if missing, as Lambda does on the first invocation), one stream per environment,
  PutLogEvents with events in chronological order, at most 10,000 events and 1 MB a request (CloudWatch Logs API
  reference, PutLogEvents).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from medic_tools.world.workload.emit import Datum
from medic_tools.world.workload.reports import ReportLine

METRICS_PER_REQUEST = 200
EVENTS_PER_REQUEST = 5_000


def put_series(cloudwatch: Any, data: Sequence[Datum], start: datetime) -> int:
    """Put every datum (grouped by namespace); returns the number of requests made."""
    by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for datum in data:
        by_namespace[datum.namespace].append(datum.put_request(start))
    requests = 0
    for namespace, members in by_namespace.items():
        for offset in range(0, len(members), METRICS_PER_REQUEST):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=members[offset : offset + METRICS_PER_REQUEST])
            requests += 1
    return requests


def put_report_lines(logs: Any, lines: Sequence[ReportLine]) -> int:
    """Write the REPORT lines into their groups and streams; returns the number of streams written."""
    by_stream: dict[tuple[str, str], list[ReportLine]] = defaultdict(list)
    for line in lines:
        by_stream[(line.log_group, line.stream)].append(line)
    groups = {group for group, _ in by_stream}
    existing: set[str] = set()
    for group in sorted(groups):
        found = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        if any(g["logGroupName"] == group for g in found):
            existing.add(group)
        else:
            logs.create_log_group(logGroupName=group)
    for (group, stream), events in sorted(by_stream.items()):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        ordered = sorted(events, key=lambda line: line.timestamp_ms)
        for offset in range(0, len(ordered), EVENTS_PER_REQUEST):
            chunk = ordered[offset : offset + EVENTS_PER_REQUEST]
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": line.timestamp_ms, "message": line.message} for line in chunk],
            )
    return len(by_stream)
