"""REPORT lines: what the function's invocations took, read where the function writes its logs.

Lambda writes one report per invocation: a text line (``REPORT RequestId: … Duration: … Init Duration: …``) in the
Text log format, a ``platform.report`` record in the JSON log format ("Lambda JSON log format", developer guide), to
``/aws/lambda/<name>`` or to the custom log group of its ``LoggingConfig``. A custom group may be shared by several
functions: Lambda names the streams there ``YYYY/MM/DD/<function_name>[<version>][<environment id>]`` ("Configuring
CloudWatch log groups"), so a query keeps the function's own streams. The ``Duration`` of a report is the handler's
run time; a cold start's ``Init Duration`` is reported apart from it.

Logs Insights answers with three queries run at once (everything, the warm invocations only, the invocations above
the alarm's threshold); when it is unavailable (permission, quota, timeout) a bounded ``FilterLogEvents`` reads at
most ``REPORT_FALLBACK_MAX_LINES`` reports and the same numbers are computed here. `report_facts` turns the answer
into the facts (cold starts, warm and cold durations, memory used, the slow invocations' cold share).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from medic.aws import AwsClients, error_code
from medic.facts.model import Facts
from medic.facts.series import window, window_start

#: Bounds of the fallback when Logs Insights is unavailable: FilterLogEvents, at most this many REPORT lines.
REPORT_FALLBACK_MAX_LINES: Final = 2000
INSIGHTS_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class LogFields:
    """How Logs Insights names a report's fields in one log format, and the unit of its memory fields (in bytes)."""

    is_report: str
    duration: str
    init: str
    memory_used: str
    memory_size: str
    memory_unit_bytes: float


#: Text: Lambda's discovered fields of REPORT lines (memory in bytes). JSON: the record's own fields, flattened.
FIELDS: Final[dict[str, LogFields]] = {
    "Text": LogFields('@type = "REPORT"', "@duration", "@initDuration", "@maxMemoryUsed", "@memorySize", 1.0),
    "JSON": LogFields(
        'type = "platform.report"',
        "record.metrics.durationMs",
        "record.metrics.initDurationMs",
        "record.metrics.maxMemoryUsedMB",
        "record.metrics.memorySizeMB",
        1_000_000.0,
    ),
}


def default_log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


@dataclass(frozen=True)
class ReportQueries:
    """The Logs Insights queries of one function's reports in one log group and format."""

    overall: str
    warm: str
    slow: str | None  # None: no threshold to compare with

    @classmethod
    def build(cls, function_name: str, log_group: str, log_format: str, threshold: float | None) -> ReportQueries:
        fields = FIELDS.get(log_format, FIELDS["Text"])
        where = fields.is_report
        if log_group != default_log_group(function_name):
            where += f' and @logStream like "/{function_name}["'  # a shared group: this function's streams only
        overall = (
            f"filter {where} | stats count(*) as invocations, count({fields.init}) as cold, "
            f"avg({fields.init}) as init_avg, pct({fields.duration}, 99) as p99, avg({fields.duration}) as avg, "
            f"max({fields.memory_used}) as memory_used, max({fields.memory_size}) as memory_size"
        )
        warm = (
            f"filter {where} and not ispresent({fields.init}) | stats avg({fields.duration}) as warm_avg, "
            f"pct({fields.duration}, 99) as warm_p99"
        )
        slow = None
        if threshold is not None and math.isfinite(threshold):
            slow = (
                f"filter {where} and {fields.duration} > {threshold:g} | stats count(*) as slow, "
                f"count({fields.init}) as slow_cold"
            )
        return cls(overall, warm, slow)


#: The queries for a function logging as Text to its default group (documented; tests run them on the world).
REPORT_QUERY: Final = ReportQueries.build("f", default_log_group("f"), "Text", None).overall
WARM_QUERY: Final = ReportQueries.build("f", default_log_group("f"), "Text", None).warm


class ReportLine(BaseModel):
    """One invocation's report (either log format): the handler's Duration and, for a cold start, Init Duration."""

    model_config = ConfigDict(defer_build=True)  # only the p99 latency facts parse reports

    duration_ms: float
    memory_size_mb: float
    max_memory_used_mb: float
    init_duration_ms: float | None = None


_REPORT = re.compile(
    r"^REPORT RequestId: \S+\s+Duration: (?P<duration>[\d.]+) ms\s+Billed Duration: [\d.]+ ms\s+"
    r"Memory Size: (?P<size>\d+) MB\s+Max Memory Used: (?P<used>\d+) MB(?:\s+Init Duration: (?P<init>[\d.]+) ms)?"
)


def parse_report_line(message: str) -> ReportLine | None:
    """A report's numbers from a Text REPORT line or a JSON ``platform.report`` record; None for anything else."""
    text = message.strip()
    if text.startswith("{"):
        return _parse_json_report(text)
    match = _REPORT.match(text)
    if match is None:
        return None
    init = match.group("init")
    return ReportLine(
        duration_ms=float(match.group("duration")),
        memory_size_mb=float(match.group("size")),
        max_memory_used_mb=float(match.group("used")),
        init_duration_ms=float(init) if init else None,
    )


def _parse_json_report(text: str) -> ReportLine | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("type") != "platform.report":
        return None
    metrics = (record.get("record") or {}).get("metrics") or {}
    try:
        init = metrics.get("initDurationMs")
        return ReportLine(
            duration_ms=float(metrics["durationMs"]),
            memory_size_mb=float(metrics["memorySizeMB"]),
            max_memory_used_mb=float(metrics["maxMemoryUsedMB"]),
            init_duration_ms=float(init) if init is not None else None,
        )
    except (KeyError, TypeError, ValueError):
        return None


Stats = dict[str, float | None]


def summarize_report_lines(lines: list[ReportLine], threshold: float | None = None) -> tuple[Stats, Stats, Stats]:
    """The same numbers as the three queries (memory in bytes, as Logs Insights reports Text reports)."""
    if not lines:
        return {"invocations": 0.0}, {}, {}
    cold = [line for line in lines if line.init_duration_ms is not None]
    warm = [line.duration_ms for line in lines if line.init_duration_ms is None]
    durations = [line.duration_ms for line in lines]
    stats: Stats = {
        "invocations": float(len(lines)),
        "cold": float(len(cold)),
        "init_avg": sum(line.init_duration_ms or 0.0 for line in cold) / len(cold) if cold else None,
        "p99": nearest_rank(durations, 99),
        "avg": sum(durations) / len(durations),
        "memory_used": max(line.max_memory_used_mb for line in lines) * 1_000_000,
        "memory_size": max(line.memory_size_mb for line in lines) * 1_000_000,
    }
    warm_stats: Stats = {"warm_avg": sum(warm) / len(warm), "warm_p99": nearest_rank(warm, 99)} if warm else {}
    slow_stats: Stats = {}
    if threshold is not None:
        slow = [line for line in lines if line.duration_ms > threshold]
        slow_stats = {"slow": float(len(slow)), "slow_cold": float(sum(1 for line in slow if line.init_duration_ms))}
    return stats, warm_stats, slow_stats


def nearest_rank(values: list[float], percentile: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)]


class InsightsUnavailable(Exception):
    """Logs Insights could not answer (permission, quota, timeout): use the bounded fallback."""


@dataclass
class ReportReader:
    """Reads one function's reports over a window: Logs Insights first, a bounded FilterLogEvents when it fails."""

    clients: AwsClients
    sleep: Callable[[float], None] = time.sleep

    def read(
        self,
        function_name: str,
        log_group: str,
        log_format: str,
        start: datetime,
        end: datetime,
        threshold: float | None,
    ) -> tuple[Stats, Stats, Stats, str]:
        """(overall, warm, slow, how they were read)."""
        queries = ReportQueries.build(function_name, log_group, log_format, threshold)
        wanted = [queries.overall, queries.warm, *([queries.slow] if queries.slow else [])]
        try:
            with ThreadPoolExecutor(max_workers=len(wanted)) as pool:  # the queries run at once: one wait, not three
                futures = [pool.submit(self._insights, log_group, query, start, end) for query in wanted]
            answers = [future.result() for future in futures]
            overall, warm, slow = answers[0], answers[1], (answers[2] if queries.slow else {})
            how = f"logs:StartQuery (Logs Insights) {log_group}, {log_format} reports"
        except InsightsUnavailable as unavailable:
            lines = self._filter(function_name, log_group, log_format, start, end)
            overall, warm, slow = summarize_report_lines(lines, threshold)
            how = (
                f"logs:FilterLogEvents {log_group}, {log_format} reports, at most {REPORT_FALLBACK_MAX_LINES} "
                f"(Logs Insights unavailable: {unavailable})"
            )
        else:
            unit = FIELDS.get(log_format, FIELDS["Text"]).memory_unit_bytes
            for key in ("memory_used", "memory_size"):  # bytes, whatever the format
                if overall.get(key) is not None:
                    overall[key] = float(overall[key] or 0.0) * unit
        return overall, warm, slow, how

    def _insights(self, group: str, query: str, start: datetime, end: datetime) -> Stats:
        from botocore.exceptions import ClientError

        logs = self.clients.client("logs")
        try:
            query_id = logs.start_query(
                logGroupName=group, startTime=int(start.timestamp()), endTime=int(end.timestamp()), queryString=query
            )["queryId"]
            deadline = time.monotonic() + INSIGHTS_TIMEOUT_S
            while True:
                response = logs.get_query_results(queryId=query_id)
                if response.get("status") == "Complete":
                    break
                if response.get("status") in ("Failed", "Cancelled", "Timeout", "Unknown"):
                    raise InsightsUnavailable(f"query {response.get('status')}")
                if time.monotonic() > deadline:
                    raise InsightsUnavailable(f"no result within {INSIGHTS_TIMEOUT_S:.0f}s")
                self.sleep(0.5)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return {}
            raise InsightsUnavailable(error_code(exc)) from exc
        rows = response.get("results") or []
        fields = {str(cell.get("field")) for cell in rows[0]} if rows else set()
        wanted = set(re.findall(r" as (\w+)", query))
        if rows and not wanted <= fields:
            raise InsightsUnavailable(f"the answer lacks {', '.join(sorted(wanted - fields))}")
        values: Stats = {}
        for cell in rows[0] if rows else []:
            try:
                values[cell["field"]] = float(cell["value"])
            except (KeyError, TypeError, ValueError):
                values[str(cell.get("field"))] = None
        return values

    def _filter(
        self, function_name: str, group: str, log_format: str, start: datetime, end: datetime
    ) -> list[ReportLine]:
        from botocore.exceptions import ClientError

        logs = self.clients.client("logs")
        shared = group != default_log_group(function_name)
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "startTime": int(start.timestamp() * 1000),
            "endTime": int(end.timestamp() * 1000),
            "filterPattern": '"platform.report"' if log_format == "JSON" else '"REPORT RequestId"',
        }
        lines: list[ReportLine] = []
        try:
            while len(lines) < REPORT_FALLBACK_MAX_LINES:
                page = logs.filter_log_events(**kwargs)
                for event in page.get("events", []):
                    if shared and f"/{function_name}[" not in str(event.get("logStreamName", "")):
                        continue
                    if (line := parse_report_line(str(event.get("message", "")))) is not None:
                        lines.append(line)
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return []
            raise
        return lines[:REPORT_FALLBACK_MAX_LINES]


REPORT_FACTS: Final = (
    "report_lines",
    "cold_starts",
    "cold_start_ratio",
    "init_duration_avg_ms",
    "duration_p99_ms",
    "warm_duration_avg_ms",
    "warm_duration_p99_ms",
    "max_memory_used_mb",
    "memory_used_ratio",
    "cold_duration_avg_ms",
    "slow_invocations",
    "slow_cold_share",
)


def report_facts(clients: AwsClients, sleep: Callable[[float], None], facts: Facts, name: str, now: datetime) -> None:
    """The REPORT-line facts of the window, from the function's log group in its log format (`GetFunction`'s)."""
    group = facts.log_group or default_log_group(name)
    log_format = facts.log_format or "Text"
    stats, warm, slow, how = ReportReader(clients, sleep).read(
        name, group, log_format, window_start(now), now, facts.alarm_threshold
    )
    source = f"{how} [{window()}]"
    count = int(stats.get("invocations") or 0)
    facts.report_lines = count
    if count:
        facts.cold_starts = int(stats.get("cold") or 0)
        facts.cold_start_ratio = facts.cold_starts / count
        facts.init_duration_avg_ms = stats.get("init_avg") if facts.cold_starts else 0.0
        facts.duration_p99_ms = stats.get("p99")
        facts.warm_duration_avg_ms = warm.get("warm_avg")
        facts.warm_duration_p99_ms = warm.get("warm_p99")
        average = stats.get("avg")
        warm_count = count - facts.cold_starts
        if facts.cold_starts and average is not None:
            warm_total = (facts.warm_duration_avg_ms or 0.0) * warm_count
            facts.cold_duration_avg_ms = (average * count - warm_total) / facts.cold_starts
        used, size = stats.get("memory_used"), stats.get("memory_size")
        if used is not None:
            facts.max_memory_used_mb = used / 1_000_000  # bytes (decimal MB), as Logs Insights reports Text
            if size:
                facts.memory_used_ratio = used / size
        if slow:
            facts.slow_invocations = int(slow.get("slow") or 0)
            if facts.slow_invocations:
                facts.slow_cold_share = int(slow.get("slow_cold") or 0) / facts.slow_invocations
            else:
                facts.missing["slow_cold_share"] = f"no report above the alarm's threshold in {group}"
        elif facts.alarm_threshold is None:
            for fact in ("slow_invocations", "slow_cold_share"):
                facts.missing[fact] = "the alarm event gives no threshold to compare Duration with"
    else:
        for fact in REPORT_FACTS[1:]:
            facts.missing[fact] = f"no reports of {name} in {group} ({log_format} format) in the last {window()}"
    for fact in REPORT_FACTS:
        facts.sources[fact] = source
