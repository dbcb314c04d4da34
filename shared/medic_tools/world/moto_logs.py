"""CloudWatch Logs Insights `filter` and `stats` for moto 5.2.5's StartQuery and GetQueryResults.

moto's query engine knows `fields`, `sort` and `limit` over @timestamp, @message, @logStream, @log and @ptr, and
silently ignores every other command and field. `install()` routes each query that has a `filter` or `stats`
command, names another field or sorts by another field to the engine below (moto's own still answers the others,
unchanged), adds `statistics` to every GetQueryResults and lets StartQuery name its log groups by
`logGroupIdentifiers`. What it supports, each with the AWS documentation it follows (CloudWatch Logs user guide,
"CloudWatch Logs Insights language query syntax", unless said otherwise; the parser is
`medic_tools.world.moto_logs_query`):

* Commands separated by `|`, applied in order: `fields` (field names, or arithmetic `as alias`), `filter`,
  `stats`, `sort` (`sort [by] field [asc|desc], ...`; descending unless `asc`, as moto's engine does) and
  `limit N`. Events enter the pipeline newest first. At most 10,000 rows are returned (the default of StartQuery's
  `limit`, CloudWatch Logs API reference).
* Fields ("Supported logs and discovered fields"): the system fields @message, @timestamp, @ingestionTime,
  @logStream (the event's log stream), @log (`account-id:log-group-name`) and @ptr, and the fields discovered in
  the message (`medic_tools.world.moto_logs_fields`): Lambda's Text REPORT lines (@type, @requestId, @duration,
  @billedDuration, @memorySize, @maxMemoryUsed, @initDuration) and JSON events, flattened with dots
  (`record.metrics.durationMs` in Lambda's JSON format). A field name with other characters than letters, digits,
  `_`, `.` and a leading @ is written between backticks.
* `filter`: comparisons `= != < <= > >=` (`==` too) between fields, arithmetic and string or number literals
  (numerically when both sides are numbers, else as strings), `ispresent(field)`, `not`, `and`, `or` and
  parentheses. A comparison with an absent field is false. `like` and `=~` ("filter by substrings or regular
  expressions"): with a quoted string, the field contains it; with `/regex/`, the regex matches somewhere in the
  field (`/^.../` anchors it); both case-sensitive, `(?i)` in the regex makes it case-insensitive. `not like`
  negates. E.g. `filter @logStream like "/checkout["` keeps one function's streams in a shared log group (their
  names carry the function name, see `moto_lambda_logging.log_stream_name`).
* `stats`: `count(*)`, `count(expr)` (events where it has a value), `sum`, `avg`, `min`, `max` and `pct(expr, N)`
  (alias `percentile`; nearest rank: the value at rank ceil(N/100 × n) of the sorted values — Logs Insights
  documents its percentiles as approximate), each optionally `as alias` (else the expression as written names
  it), several separated by commas, arithmetic inside and between aggregations (`sum(@x / 1000) / count(*)`),
  and an optional `by field, ...` grouping (not `bin()`). Grouping fields come first in each row. An
  aggregation without values (avg of an absent field) has no value and its field is left out of the row (a
  ResultField carries a value); no matching event means no row (our reading of AWS; not documented).
* Results are rows of `{"field", "value"}` with every value a string (numbers without a trailing ".0";
  @timestamp and @ingestionTime as "YYYY-MM-DD HH:MM:SS.mmm" UTC, as the console shows them; moto's engine keeps
  epoch milliseconds); rows of a query without `stats` hold the `fields` named (@timestamp and @message when none
  are) and @ptr.
* `statistics` (QueryStatistics, CloudWatch Logs API reference): recordsScanned = events in the time range,
  bytesScanned = their UTF-8 message bytes (AWS also counts its own overhead), recordsMatched = events left by
  the filters before the first `stats` (all scanned events for moto's engine, which ignores filters).
* `#` starts a comment that runs to the end of its line.
* A query this engine cannot parse fails StartQuery with MalformedQueryException and its queryCompileError
  location ("The query string is not valid", StartQuery API reference). Commands and functions outside this
  subset (`parse`, `display`, `in`, `bin()`, string functions, ...) are valid on AWS but refused here the same way,
  rather than answered wrongly.
* StartQuery (API reference): the log groups are `logGroupName`, `logGroupNames` or `logGroupIdentifiers` (names
  or ARNs `arn:aws:logs:REGION:ACCOUNT:log-group:NAME`, "Don't include an * at the end"), "exactly one of" them,
  at most 50 groups; several groups are queried as one stream of events. Anything else is an
  InvalidParameterException; a missing group stays moto's ResourceNotFoundException.

Filter patterns (FilterLogEvents and the like), JSON ones included, are `medic_tools.world.moto_logs_filter`'s,
installed
from here.

No knobs: queries live on moto's Logs backend, which every reset rebuilds.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

from moto.core.utils import utcnow
from moto.logs.exceptions import InvalidParameterException
from moto.logs.models import LogGroup, LogQuery
from moto.logs.responses import LogsResponse

from medic_tools.world import moto_ext, moto_logs_filter
from medic_tools.world.moto_logs_fields import discovered_fields
from medic_tools.world.moto_logs_query import MalformedQuery, parse_query
from medic_tools.world.moto_logs_syntax import (
    Aggregate,
    Arithmetic,
    Command,
    Condition,
    Expr,
    Field,
    Fields,
    Filter,
    Like,
    Logical,
    Negate,
    Not,
    Number,
    Present,
    Sort,
    Stats,
    Text,
)

__all__ = ["MalformedQuery", "QueryOutcome", "discovered_fields", "install", "nearest_rank", "parse_query", "run_query"]

MAX_RESULT_ROWS: Final = 10_000
MAX_LOG_GROUPS: Final = 50
_TIME_FIELDS: Final = frozenset({"@timestamp", "@ingestionTime"})
_DEFAULT_FIELDS: Final = ("@timestamp", "@message")
_COMPARE: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

_installed = False

Value = float | str | None
Record = dict[str, Value]


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


def _as_number(value: Value) -> float | None:
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _arithmetic(op: str, left: Value, right: Value) -> Value:
    a, b = _as_number(left), _as_number(right)
    if a is None or b is None:
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        return None
    return a / b if op == "/" else math.fmod(a, b)


def _evaluate(expr: Expr, record: Record, aggregate: Callable[[Aggregate], Value]) -> Value:
    if isinstance(expr, Number | Text):
        return expr.value
    if isinstance(expr, Field):
        return record.get(expr.name)
    if isinstance(expr, Negate):
        operand = _as_number(_evaluate(expr.operand, record, aggregate))
        return None if operand is None else -operand
    if isinstance(expr, Arithmetic):
        return _arithmetic(expr.op, _evaluate(expr.left, record, aggregate), _evaluate(expr.right, record, aggregate))
    return aggregate(expr)


def _no_aggregate(expr: Aggregate) -> Value:
    raise AssertionError(f"aggregation outside stats: {expr}")  # the parser refuses it


def _compare(op: str, left: Value, right: Value) -> bool:
    if left is None or right is None:
        return False
    a, b = _as_number(left), _as_number(right)
    if a is not None and b is not None:
        return bool(_COMPARE[op](a, b))
    return bool(_COMPARE[op](str(left), str(right)))


def _matches(condition: Like, record: Record) -> bool:
    value = _evaluate(condition.operand, record, _no_aggregate)
    if value is None:
        return condition.negated
    text = _text("", value)
    if condition.regex is not None:
        found = condition.regex.search(text) is not None
    else:
        found = str(condition.substring) in text
    return found != condition.negated


def _holds(condition: Condition, record: Record) -> bool:
    if isinstance(condition, Like):
        return _matches(condition, record)
    if isinstance(condition, Present):
        return record.get(condition.field) is not None
    if isinstance(condition, Not):
        return not _holds(condition.operand, record)
    if isinstance(condition, Logical):
        if condition.op == "and":
            return _holds(condition.left, record) and _holds(condition.right, record)
        return _holds(condition.left, record) or _holds(condition.right, record)
    return _compare(
        condition.op,
        _evaluate(condition.left, record, _no_aggregate),
        _evaluate(condition.right, record, _no_aggregate),
    )


def nearest_rank(values: Sequence[float], percentile: float) -> float:
    """The value at rank ceil(percentile/100 × n) of the sorted values (rank 1 at least)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percentile * len(ordered) / 100)) - 1]


def _aggregate(expr: Aggregate, records: Sequence[Record]) -> Value:
    if expr.argument is None:
        return float(len(records))
    argument = expr.argument
    values = [_evaluate(argument, record, _no_aggregate) for record in records]
    if expr.function == "count":
        return float(sum(1 for v in values if v is not None))
    numbers = [n for n in map(_as_number, values) if n is not None]
    if not numbers:
        return None
    if expr.function == "sum":
        return math.fsum(numbers)
    if expr.function == "avg":
        return math.fsum(numbers) / len(numbers)
    if expr.function == "min":
        return min(numbers)
    if expr.function == "max":
        return max(numbers)
    assert expr.percentile is not None
    return nearest_rank(numbers, expr.percentile)


def _stats(command: Stats, records: Sequence[Record]) -> list[Record]:
    groups: dict[tuple[Value, ...], list[Record]] = {}
    for record in records:
        groups.setdefault(tuple(record.get(name) for name in command.by), []).append(record)
    rows: list[Record] = []
    for key, members in groups.items():
        row: Record = {name: value for name, value in zip(command.by, key, strict=True) if value is not None}
        for name, expr in command.items:
            value = _evaluate(expr, {}, partial(_aggregate, records=members))
            if value is not None:
                row[name] = value
        rows.append(row)
    return rows


def _sorted(records: list[Record], keys: Sequence[tuple[str, bool]]) -> list[Record]:
    for name, descending in reversed(keys):
        present = [r for r in records if r.get(name) is not None]
        absent = [r for r in records if r.get(name) is None]
        numeric = all(_as_number(r[name]) is not None for r in present)

        def key(record: Record, name: str = name, numeric: bool = numeric) -> Any:
            return _as_number(record[name]) if numeric else str(record[name])

        records = sorted(present, key=key, reverse=descending) + absent
    return records


@dataclass(frozen=True)
class QueryOutcome:
    """What GetQueryResults reports for one query: the rows (field → string value) and its statistics."""

    rows: list[dict[str, str]]
    statistics: dict[str, float]


def _events(log_groups: Sequence[LogGroup], start_time: int, end_time: int) -> Iterator[Record]:
    # StartQuery's times are epoch seconds, events' milliseconds; both ends inclusive, as moto's engine has them.
    for group in log_groups:
        for stream in group.streams.values():
            for event in stream.events:
                if start_time and event.timestamp < start_time * 1000:
                    continue
                if end_time and event.timestamp > end_time * 1000:
                    continue
                record: Record = {
                    "@timestamp": float(event.timestamp),
                    "@ingestionTime": float(event.ingestion_time),
                    "@message": event.message,
                    "@logStream": stream.log_stream_name,
                    "@log": f"{group.account_id}:{group.name}",
                    "@ptr": str(event.event_id),
                }
                record.update(discovered_fields(event.message))
                yield record


def _statistics(records: Sequence[Record], matched: int) -> dict[str, float]:
    return {
        "recordsMatched": float(matched),
        "recordsScanned": float(len(records)),
        "bytesScanned": float(sum(len(str(r["@message"]).encode()) for r in records)),
    }


def _text(name: str, value: Value) -> str:
    if isinstance(value, float):
        if name in _TIME_FIELDS:
            return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return str(value)


def run_query(
    commands: Sequence[Command], log_groups: Sequence[LogGroup], start_time: int, end_time: int
) -> QueryOutcome:
    """Run parsed commands over the events of log_groups in [start_time, end_time] (epoch seconds)."""
    scanned = sorted(_events(log_groups, start_time, end_time), key=lambda r: r["@timestamp"] or 0.0, reverse=True)
    records = list(scanned)
    matched = len(records)
    projection: list[str] = []
    aggregated = False
    for command in commands:
        if isinstance(command, Fields):
            for name, expr in command.items:
                if not isinstance(expr, Field) or expr.name != name:
                    for record in records:
                        record[name] = _evaluate(expr, record, _no_aggregate)
                if name not in projection:
                    projection.append(name)
        elif isinstance(command, Filter):
            records = [r for r in records if _holds(command.condition, r)]
            if not aggregated:
                matched = len(records)
        elif isinstance(command, Stats):
            records = _stats(command, records)
            aggregated = True
        elif isinstance(command, Sort):
            records = _sorted(records, command.keys)
        else:
            records = records[: command.count]
    records = records[:MAX_RESULT_ROWS]
    if aggregated:
        rows = [{name: _text(name, value) for name, value in r.items() if value is not None} for r in records]
    else:
        shown = [*(projection or _DEFAULT_FIELDS), "@ptr"]
        rows = [{name: _text(name, r[name]) for name in shown if r.get(name) is not None} for r in records]
    return QueryOutcome(rows=rows, statistics=_statistics(scanned, matched))


# ---------------------------------------------------------------------------------------------------------------
# Installation: moto's LogQuery runs its query when it is created

_original_log_query_init = LogQuery.__init__
_original_to_result_json = LogQuery.to_result_json


def _log_query_init(
    self: LogQuery, query_id: str, start_time: int, end_time: int, query: str, log_groups: list[LogGroup]
) -> None:
    commands = parse_query(query)
    if commands is None:
        _original_log_query_init(self, query_id, start_time, end_time, query, log_groups)
        scanned = list(_events(log_groups, start_time, end_time))
        self.__dict__["_medic_statistics"] = _statistics(scanned, len(scanned))
        return
    self.query_id = query_id
    self.start_time = start_time
    self.end_time = end_time
    self.query = query
    self.log_group_names = [group.name for group in log_groups]
    self.create_time = utcnow()
    self.status = "Running"
    outcome = run_query(commands, log_groups, start_time, end_time)
    self.results = outcome.rows
    self.__dict__["_medic_statistics"] = outcome.statistics
    self.status = "Complete"


def _to_result_json(self: LogQuery) -> dict[str, Any]:
    result: dict[str, Any] = _original_to_result_json(self)
    statistics = self.__dict__.get("_medic_statistics")
    if statistics is not None:
        result["statistics"] = statistics
    return result


_LOG_GROUP_ARN = re.compile(r"^arn:[\w-]+:logs:[\w-]*:\d*:log-group:(?P<name>[^:*]+)$")


def _group_name(identifier: str) -> str:
    if not identifier.startswith("arn:"):
        return identifier
    match = _LOG_GROUP_ARN.match(identifier)
    if match is None:
        raise InvalidParameterException(f"Invalid log group identifier: {identifier}")
    return match.group("name")


def _start_query(self: LogsResponse) -> str:
    sources = {name: self._get_param(name) for name in ("logGroupName", "logGroupNames", "logGroupIdentifiers")}
    given = [name for name, value in sources.items() if value]
    if len(given) != 1:
        raise InvalidParameterException(
            "A StartQuery operation must include exactly one of logGroupName, logGroupNames or logGroupIdentifiers"
        )
    groups = [sources["logGroupName"]] if given == ["logGroupName"] else list(sources[given[0]])
    if len(groups) > MAX_LOG_GROUPS:
        raise InvalidParameterException(
            constraint=f"Member must have length less than or equal to {MAX_LOG_GROUPS}",
            parameter=given[0],
            value=groups,
        )
    query_id = self.logs_backend.start_query(
        [_group_name(str(group)) for group in groups],
        self._get_int_param("startTime"),
        self._get_int_param("endTime"),
        self._get_param("queryString"),
    )
    return json.dumps({"queryId": query_id})


def install() -> None:
    """Patch moto's Logs Insights engine in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with moto_ext._LOCK:
        if _installed:
            return
        LogQuery.__init__ = _log_query_init  # type: ignore[method-assign]
        LogQuery.to_result_json = _to_result_json  # type: ignore[method-assign]
        LogsResponse.start_query = _start_query  # type: ignore[method-assign]
        moto_logs_filter.install()
        _installed = True
