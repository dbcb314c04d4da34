"""CloudWatch Logs Insights `filter` and `stats` for moto 5.2.5's StartQuery and GetQueryResults.

moto's query engine knows `fields`, `sort` and `limit` and silently ignores every other command. `install()`
routes each query that has a `filter` or `stats` command to the engine below (moto's own still answers the
others, unchanged) and adds `statistics` to every GetQueryResults. What it supports, each with the AWS
documentation it follows (CloudWatch Logs user guide, "CloudWatch Logs Insights language query syntax", unless
said otherwise):

* Commands separated by `|`, applied in order: `fields` (field names, or arithmetic `as alias`), `filter`,
  `stats`, `sort` (`sort [by] field [asc|desc], ...`; descending unless `asc`, as moto's engine does) and
  `limit N`. Events enter the pipeline newest first. At most 10,000 rows are returned (the default of StartQuery's
  `limit`, CloudWatch Logs API reference).
* Discovered fields ("Supported logs and discovered fields"): the system fields @message, @timestamp,
  @ingestionTime, @logStream, @log (`account-id:log-group-name`) and @ptr, and for Lambda REPORT lines (messages
  starting with "REPORT RequestId:") @type = "REPORT", @requestId, @duration and @billedDuration (ms),
  @memorySize and @maxMemoryUsed (bytes: "Memory Size: 1024 MB" → 1024000000, which is why AWS's sample queries
  divide by 1000/1000 to get MB, Lambda operator guide "Useful Insights queries") and @initDuration (ms, on
  cold-start lines only).
* `filter`: comparisons `= != < <= > >=` (`==` too) between fields, arithmetic and string or number literals
  (numerically when both sides are numbers, else as strings), `ispresent(field)`, `not`, `and`, `or` and
  parentheses. A comparison with an absent field is false.
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
  subset (`parse`, `display`, `like`, `bin()`, ...) are valid on AWS but refused here the same way, rather than
  answered wrongly.

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
from typing import Any, Final, NoReturn

from moto.core.exceptions import JsonRESTError
from moto.core.utils import utcnow
from moto.logs.models import LogGroup, LogQuery

from medic.world import moto_ext

MAX_RESULT_ROWS: Final = 10_000
_BYTES_PER_MB: Final = 1_000_000
_REPORT_PREFIX: Final = "REPORT RequestId:"
#: REPORT line label → (discovered field, multiplier to Logs Insights' unit).
_REPORT_PARTS: Final = {
    "Duration": ("@duration", 1),
    "Billed Duration": ("@billedDuration", 1),
    "Memory Size": ("@memorySize", _BYTES_PER_MB),
    "Max Memory Used": ("@maxMemoryUsed", _BYTES_PER_MB),
    "Init Duration": ("@initDuration", 1),
}
_TIME_FIELDS: Final = frozenset({"@timestamp", "@ingestionTime"})
_DEFAULT_FIELDS: Final = ("@timestamp", "@message")
_AGGREGATIONS: Final = frozenset({"count", "sum", "avg", "min", "max", "pct", "percentile"})
_COMPARISONS: Final = frozenset({"=", "==", "!=", "<", "<=", ">", ">="})
_ARITHMETIC: Final = frozenset({"+", "-", "*", "/", "%"})
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


class MalformedQuery(JsonRESTError):
    """MalformedQueryException (400), with the queryCompileError AWS adds to it."""

    code = 400

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__("MalformedQueryException", message)
        self.description = json.dumps(
            {
                "__type": "MalformedQueryException",
                "message": message,
                "queryCompileError": {
                    "location": {"startCharOffset": start, "endCharOffset": end},
                    "message": message,
                },
            }
        )


# ---------------------------------------------------------------------------------------------------------------
# Discovered fields


def discovered_fields(message: str) -> dict[str, float | str]:
    """The fields Logs Insights discovers in a Lambda REPORT line ({} for any other message).

    >>> discovered_fields("REPORT RequestId: r1\\tDuration: 1.50 ms\\tMemory Size: 128 MB")
    {'@type': 'REPORT', '@requestId': 'r1', '@duration': 1.5, '@memorySize': 128000000.0}
    """
    if not message.startswith(_REPORT_PREFIX):
        return {}
    parts = message.rstrip().split("\t")
    fields: dict[str, float | str] = {"@type": "REPORT", "@requestId": parts[0].removeprefix(_REPORT_PREFIX).strip()}
    for part in parts[1:]:
        label, _, rest = part.partition(":")
        spec = _REPORT_PARTS.get(label.strip())
        if spec is None:
            continue
        name, multiplier = spec
        try:
            fields[name] = float(rest.split()[0]) * multiplier
        except (IndexError, ValueError):
            continue
    return fields


# ---------------------------------------------------------------------------------------------------------------
# The query language: tokens, syntax tree, parser


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "str", "num", "op", "end"
    text: str
    start: int
    end: int
    value: float | str = ""


_TOKENS = re.compile(
    r"""(?P<space>\s+|\#[^\n]*)
    |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<quoted>`[^`]*`)
    |(?P<num>\d+(?:\.\d+)?)
    |(?P<name>@?[A-Za-z_][\w.]*)
    |(?P<op>!=|<=|>=|==|[=<>()*,/+\-%|])""",
    re.VERBOSE,
)


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        match = _TOKENS.match(source, position)
        if match is None:
            raise MalformedQuery(f"unexpected character {source[position]!r}", position, position)
        kind, text = match.lastgroup or "", match.group()
        if kind == "str":
            tokens.append(_Token("str", text, match.start(), match.end(), re.sub(r"\\(.)", r"\1", text[1:-1])))
        elif kind == "quoted":
            tokens.append(_Token("name", text, match.start(), match.end(), text[1:-1]))
        elif kind == "num":
            tokens.append(_Token("num", text, match.start(), match.end(), float(text)))
        elif kind != "space":
            tokens.append(_Token(kind, text, match.start(), match.end(), text))
        position = match.end()
    tokens.append(_Token("end", "", len(source), len(source)))
    return tokens


@dataclass(frozen=True)
class _Number:
    value: float


@dataclass(frozen=True)
class _Text:
    value: str


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Arithmetic:
    op: str
    left: _Expr
    right: _Expr


@dataclass(frozen=True)
class _Negate:
    operand: _Expr


@dataclass(frozen=True)
class _Aggregate:
    function: str
    argument: _Expr | None  # None: count(*)
    percentile: float | None = None


_Expr = _Number | _Text | _Field | _Arithmetic | _Negate | _Aggregate


@dataclass(frozen=True)
class _Compare:
    op: str
    left: _Expr
    right: _Expr


@dataclass(frozen=True)
class _Present:
    field: str


@dataclass(frozen=True)
class _Not:
    operand: _Condition


@dataclass(frozen=True)
class _Logical:
    op: str  # "and" | "or"
    left: _Condition
    right: _Condition


_Condition = _Compare | _Present | _Not | _Logical


@dataclass(frozen=True)
class _Fields:
    items: tuple[tuple[str, _Expr], ...]


@dataclass(frozen=True)
class _Filter:
    condition: _Condition


@dataclass(frozen=True)
class _Stats:
    items: tuple[tuple[str, _Expr], ...]
    by: tuple[str, ...]


@dataclass(frozen=True)
class _Sort:
    keys: tuple[tuple[str, bool], ...]  # (field, descending)


@dataclass(frozen=True)
class _Limit:
    count: int


_Command = _Fields | _Filter | _Stats | _Sort | _Limit


class _Parser:
    """Recursive descent over one query's tokens."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.position = 0

    # -- tokens
    def peek(self) -> _Token:
        return self.tokens[self.position]

    def take(self) -> _Token:
        token = self.tokens[self.position]
        if token.kind != "end":
            self.position += 1
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token.kind in ("op", "name") and token.text.lower() in texts

    def expect(self, text: str) -> _Token:
        if not self.at(text):
            self.fail(f"expected {text!r}")
        return self.take()

    def fail(self, problem: str, token: _Token | None = None) -> NoReturn:
        token = token or self.peek()
        found = f"{token.text!r}" if token.kind != "end" else "the end of the query"
        raise MalformedQuery(f"{problem}, found {found} at offset {token.start}", token.start, token.end)

    def text_between(self, first: int, last: int) -> str:
        return self.source[self.tokens[first].start : self.tokens[last].end]

    # -- commands
    def query(self) -> list[_Command]:
        commands = [self.command()]
        while self.at("|"):
            self.take()
            commands.append(self.command())
        if self.peek().kind != "end":
            self.fail("expected '|' or the end of the query")
        return commands

    def command(self) -> _Command:
        token = self.take()
        word = token.text.lower() if token.kind == "name" else ""
        if word == "fields":
            return _Fields(tuple(self.items(aggregations=False, stop=("|",))))
        if word == "filter":
            return _Filter(self.condition())
        if word == "stats":
            items = self.items(aggregations=True, stop=("|", "by"))
            by: list[str] = []
            if self.at("by"):
                self.take()
                by.append(self.group_field())
                while self.at(","):
                    self.take()
                    by.append(self.group_field())
            return _Stats(tuple(items), tuple(by))
        if word == "sort":
            if self.at("by"):
                self.take()
            keys = [self.sort_key()]
            while self.at(","):
                self.take()
                keys.append(self.sort_key())
            return _Sort(tuple(keys))
        if word == "limit":
            count = self.take()
            if count.kind != "num" or not float(count.value).is_integer() or float(count.value) < 1:
                self.fail("limit needs a positive whole number", count)
            return _Limit(int(float(count.value)))
        self.fail("expected a command this engine supports (fields, filter, stats, sort, limit)", token)

    def items(self, *, aggregations: bool, stop: tuple[str, ...]) -> list[tuple[str, _Expr]]:
        items = [self.item(aggregations=aggregations)]
        while self.at(","):
            self.take()
            items.append(self.item(aggregations=aggregations))
        if not (self.peek().kind == "end" or self.at(*stop)):
            self.fail("expected ',' or the next command")
        return items

    def item(self, *, aggregations: bool) -> tuple[str, _Expr]:
        first = self.position
        expr = self.arithmetic(aggregations=aggregations)
        name = expr.name if isinstance(expr, _Field) else self.text_between(first, self.position - 1)
        if aggregations and not _has_aggregate(expr):
            self.fail("a stats expression needs an aggregation function", self.tokens[first])
        if self.at("as"):
            self.take()
            name = self.field_name()
        return name, expr

    def field_name(self) -> str:
        token = self.take()
        if token.kind != "name":
            self.fail("expected a field name", token)
        return str(token.value)

    def group_field(self) -> str:
        token = self.peek()
        if token.kind == "name" and self.tokens[self.position + 1].text == "(":
            self.fail(f"grouping by the function {token.text!r} is not supported by this engine", token)
        return self.field_name()

    def sort_key(self) -> tuple[str, bool]:
        name = self.field_name()
        if self.at("asc", "desc"):
            return name, self.take().text.lower() == "desc"
        return name, True

    # -- expressions
    def arithmetic(self, *, aggregations: bool) -> _Expr:
        expr = self.term(aggregations=aggregations)
        while self.at("+", "-"):
            op = self.take().text
            expr = _Arithmetic(op, expr, self.term(aggregations=aggregations))
        return expr

    def term(self, *, aggregations: bool) -> _Expr:
        expr = self.unary(aggregations=aggregations)
        while self.at("*", "/", "%"):
            op = self.take().text
            expr = _Arithmetic(op, expr, self.unary(aggregations=aggregations))
        return expr

    def unary(self, *, aggregations: bool) -> _Expr:
        if self.at("-"):
            self.take()
            return _Negate(self.unary(aggregations=aggregations))
        return self.primary(aggregations=aggregations)

    def primary(self, *, aggregations: bool) -> _Expr:
        token = self.take()
        if token.kind == "num":
            return _Number(float(token.value))
        if token.kind == "str":
            return _Text(str(token.value))
        if token.kind == "op" and token.text == "(":
            expr = self.arithmetic(aggregations=aggregations)
            self.expect(")")
            return expr
        if token.kind == "name" and self.at("("):
            return self.aggregate(token, allowed=aggregations)
        if token.kind == "name":
            if aggregations:
                self.fail("a stats expression may use fields only inside aggregation functions", token)
            return _Field(str(token.value))
        self.fail("expected a field, a number or a string", token)

    def aggregate(self, function: _Token, *, allowed: bool) -> _Aggregate:
        name = function.text.lower()
        if name not in _AGGREGATIONS:
            self.fail(f"the function {function.text!r} is not supported by this engine", function)
        if not allowed:
            self.fail(f"the aggregation {function.text!r} is allowed only in stats", function)
        self.expect("(")
        if name == "count" and self.at("*"):
            self.take()
            self.expect(")")
            return _Aggregate("count", None)
        argument = self.arithmetic(aggregations=False)
        percentile = None
        if name in ("pct", "percentile"):
            self.expect(",")
            token = self.take()
            if token.kind != "num" or not 0 <= float(token.value) <= 100:
                self.fail("a percentile must be a number from 0 to 100", token)
            percentile = float(token.value)
        self.expect(")")
        return _Aggregate("pct" if name == "percentile" else name, argument, percentile)

    # -- conditions
    def condition(self) -> _Condition:
        left = self.conjunction()
        while self.at("or"):
            self.take()
            left = _Logical("or", left, self.conjunction())
        return left

    def conjunction(self) -> _Condition:
        left = self.negation()
        while self.at("and"):
            self.take()
            left = _Logical("and", left, self.negation())
        return left

    def negation(self) -> _Condition:
        if self.at("not"):
            self.take()
            return _Not(self.negation())
        return self.atom()

    def atom(self) -> _Condition:
        if self.at("ispresent"):
            self.take()
            self.expect("(")
            name = self.field_name()
            self.expect(")")
            return _Present(name)
        if self.at("("):
            saved = self.position
            try:
                self.take()
                inner = self.condition()
                self.expect(")")
                if not self.at(*_COMPARISONS, *_ARITHMETIC):
                    return inner
            except MalformedQuery:
                pass
            self.position = saved  # "(" opened arithmetic, as in (@a + @b) > 5
        left = self.arithmetic(aggregations=False)
        token = self.peek()
        if self.at("like", "in"):
            self.fail(f"the operator {token.text!r} is not supported by this engine", token)
        if not self.at(*_COMPARISONS):
            self.fail("expected a comparison (= != < <= > >=)", token)
        op = self.take().text
        return _Compare("=" if op == "==" else op, left, self.arithmetic(aggregations=False))


def _has_aggregate(expr: _Expr) -> bool:
    if isinstance(expr, _Aggregate):
        return True
    if isinstance(expr, _Arithmetic):
        return _has_aggregate(expr.left) or _has_aggregate(expr.right)
    if isinstance(expr, _Negate):
        return _has_aggregate(expr.operand)
    return False


def _command_words(query: str) -> set[str]:
    """The first word of each `|`-separated command (quotes respected), lowercased."""
    words: set[str] = set()
    segment: list[str] = []
    quote = ""
    for char in query + "|":
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'`":
            quote = char
        elif char == "|":
            text = "".join(segment).split(maxsplit=1)
            if text:
                words.add(text[0].lower())
            segment = []
            continue
        segment.append(char)
    return words


def parse_query(query: str) -> list[_Command] | None:
    """The commands of a query this engine answers; None when it has no `filter` or `stats` (moto's engine does)."""
    if not _command_words(query) & {"filter", "stats"}:
        return None
    return _Parser(query).query()


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


def _evaluate(expr: _Expr, record: Record, aggregate: Callable[[_Aggregate], Value]) -> Value:
    if isinstance(expr, _Number | _Text):
        return expr.value
    if isinstance(expr, _Field):
        return record.get(expr.name)
    if isinstance(expr, _Negate):
        operand = _as_number(_evaluate(expr.operand, record, aggregate))
        return None if operand is None else -operand
    if isinstance(expr, _Arithmetic):
        return _arithmetic(expr.op, _evaluate(expr.left, record, aggregate), _evaluate(expr.right, record, aggregate))
    return aggregate(expr)


def _no_aggregate(expr: _Aggregate) -> Value:
    raise AssertionError(f"aggregation outside stats: {expr}")  # the parser refuses it


def _compare(op: str, left: Value, right: Value) -> bool:
    if left is None or right is None:
        return False
    a, b = _as_number(left), _as_number(right)
    if a is not None and b is not None:
        return bool(_COMPARE[op](a, b))
    return bool(_COMPARE[op](str(left), str(right)))


def _holds(condition: _Condition, record: Record) -> bool:
    if isinstance(condition, _Present):
        return record.get(condition.field) is not None
    if isinstance(condition, _Not):
        return not _holds(condition.operand, record)
    if isinstance(condition, _Logical):
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


def _aggregate(expr: _Aggregate, records: Sequence[Record]) -> Value:
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


def _stats(command: _Stats, records: Sequence[Record]) -> list[Record]:
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
    commands: Sequence[_Command], log_groups: Sequence[LogGroup], start_time: int, end_time: int
) -> QueryOutcome:
    """Run parsed commands over the events of log_groups in [start_time, end_time] (epoch seconds)."""
    scanned = sorted(_events(log_groups, start_time, end_time), key=lambda r: r["@timestamp"] or 0.0, reverse=True)
    records = list(scanned)
    matched = len(records)
    projection: list[str] = []
    aggregated = False
    for command in commands:
        if isinstance(command, _Fields):
            for name, expr in command.items:
                if not isinstance(expr, _Field) or expr.name != name:
                    for record in records:
                        record[name] = _evaluate(expr, record, _no_aggregate)
                if name not in projection:
                    projection.append(name)
        elif isinstance(command, _Filter):
            records = [r for r in records if _holds(command.condition, r)]
            if not aggregated:
                matched = len(records)
        elif isinstance(command, _Stats):
            records = _stats(command, records)
            aggregated = True
        elif isinstance(command, _Sort):
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


def install() -> None:
    """Patch moto's Logs Insights engine in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    with moto_ext._LOCK:
        if _installed:
            return
        LogQuery.__init__ = _log_query_init  # type: ignore[method-assign]
        LogQuery.to_result_json = _to_result_json  # type: ignore[method-assign]
        _installed = True
