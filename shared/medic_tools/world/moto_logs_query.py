"""The Logs Insights query language, as far as the embedded world answers it: tokens and parser (the syntax tree is
`medic_tools.world.moto_logs_syntax`).

`parse_query(query)` gives a query's commands, or None when moto's own engine answers it right (neither `filter`
nor `stats`, only the fields moto's engine fills in, sorted by @timestamp if at all). A query with `filter` or
`stats` that this parser cannot read raises `MalformedQuery`, StartQuery's MalformedQueryException with its
queryCompileError location. What the language holds, and how the commands run, is described in
`medic_tools.world.moto_logs`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final, NoReturn

from moto.core.exceptions import JsonRESTError

from medic_tools.world.moto_logs_syntax import (
    Aggregate,
    Arithmetic,
    Command,
    Compare,
    Condition,
    Expr,
    Field,
    Fields,
    Filter,
    Like,
    Limit,
    Logical,
    Negate,
    Not,
    Number,
    Present,
    Sort,
    Stats,
    Text,
)

AGGREGATIONS: Final = frozenset({"count", "sum", "avg", "min", "max", "pct", "percentile"})
COMPARISONS: Final = frozenset({"=", "==", "!=", "<", "<=", ">", ">="})
ARITHMETIC: Final = frozenset({"+", "-", "*", "/", "%"})


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


@dataclass(frozen=True)
class Token:
    kind: str  # "name", "str", "num", "regex", "op", "end"
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
    |(?P<op>=~|!=|<=|>=|==|[=<>()*,/+\-%|])""",
    re.VERBOSE,
)


def _after_match_operator(tokens: list[Token]) -> bool:
    """Whether a `/` here opens a regular expression (it follows `like` or `=~`) rather than a division."""
    if not tokens:
        return False
    last = tokens[-1]
    return (last.kind == "name" and last.text.lower() == "like") or (last.kind == "op" and last.text == "=~")


def _regex_literal(source: str, start: int) -> Token:
    """The `/.../` literal that starts at `start` (a `\\/` inside is a slash of the pattern)."""
    position = start + 1
    while position < len(source) and source[position] != "/":
        position += 2 if source[position] == "\\" else 1
    if position >= len(source):
        raise MalformedQuery("unterminated regular expression", start, len(source))
    pattern = source[start + 1 : position].replace("\\/", "/")
    return Token("regex", source[start : position + 1], start, position + 1, pattern)


def _tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        if source[position] == "/" and _after_match_operator(tokens):
            tokens.append(_regex_literal(source, position))
            position = tokens[-1].end
            continue
        match = _TOKENS.match(source, position)
        if match is None:
            raise MalformedQuery(f"unexpected character {source[position]!r}", position, position)
        kind, text = match.lastgroup or "", match.group()
        if kind == "str":
            tokens.append(Token("str", text, match.start(), match.end(), re.sub(r"\\(.)", r"\1", text[1:-1])))
        elif kind == "quoted":
            tokens.append(Token("name", text, match.start(), match.end(), text[1:-1]))
        elif kind == "num":
            tokens.append(Token("num", text, match.start(), match.end(), float(text)))
        elif kind != "space":
            tokens.append(Token(kind, text, match.start(), match.end(), text))
        position = match.end()
    tokens.append(Token("end", "", len(source), len(source)))
    return tokens


def compile_regex(pattern: str) -> re.Pattern[str]:
    """A Logs Insights regular expression as a Python one: `(?i)` anywhere makes it case-insensitive, and named
    groups are written `(?<name>...)`."""
    flags = re.IGNORECASE if "(?i)" in pattern else 0
    return re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern.replace("(?i)", "")), flags)


class _Parser:
    """Recursive descent over one query's tokens."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.position = 0

    # -- tokens
    def peek(self) -> Token:
        return self.tokens[self.position]

    def take(self) -> Token:
        token = self.tokens[self.position]
        if token.kind != "end":
            self.position += 1
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        return token.kind in ("op", "name") and token.text.lower() in texts

    def expect(self, text: str) -> Token:
        if not self.at(text):
            self.fail(f"expected {text!r}")
        return self.take()

    def fail(self, problem: str, token: Token | None = None) -> NoReturn:
        token = token or self.peek()
        found = f"{token.text!r}" if token.kind != "end" else "the end of the query"
        raise MalformedQuery(f"{problem}, found {found} at offset {token.start}", token.start, token.end)

    def text_between(self, first: int, last: int) -> str:
        return self.source[self.tokens[first].start : self.tokens[last].end]

    # -- commands
    def query(self) -> list[Command]:
        commands = [self.command()]
        while self.at("|"):
            self.take()
            commands.append(self.command())
        if self.peek().kind != "end":
            self.fail("expected '|' or the end of the query")
        return commands

    def command(self) -> Command:
        token = self.take()
        word = token.text.lower() if token.kind == "name" else ""
        if word == "fields":
            return Fields(tuple(self.items(aggregations=False, stop=("|",))))
        if word == "filter":
            return Filter(self.condition())
        if word == "stats":
            items = self.items(aggregations=True, stop=("|", "by"))
            by: list[str] = []
            if self.at("by"):
                self.take()
                by.append(self.group_field())
                while self.at(","):
                    self.take()
                    by.append(self.group_field())
            return Stats(tuple(items), tuple(by))
        if word == "sort":
            if self.at("by"):
                self.take()
            keys = [self.sort_key()]
            while self.at(","):
                self.take()
                keys.append(self.sort_key())
            return Sort(tuple(keys))
        if word == "limit":
            count = self.take()
            if count.kind != "num" or not float(count.value).is_integer() or float(count.value) < 1:
                self.fail("limit needs a positive whole number", count)
            return Limit(int(float(count.value)))
        self.fail("expected a command this engine supports (fields, filter, stats, sort, limit)", token)

    def items(self, *, aggregations: bool, stop: tuple[str, ...]) -> list[tuple[str, Expr]]:
        items = [self.item(aggregations=aggregations)]
        while self.at(","):
            self.take()
            items.append(self.item(aggregations=aggregations))
        if not (self.peek().kind == "end" or self.at(*stop)):
            self.fail("expected ',' or the next command")
        return items

    def item(self, *, aggregations: bool) -> tuple[str, Expr]:
        first = self.position
        expr = self.arithmetic(aggregations=aggregations)
        name = expr.name if isinstance(expr, Field) else self.text_between(first, self.position - 1)
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
    def arithmetic(self, *, aggregations: bool) -> Expr:
        expr = self.term(aggregations=aggregations)
        while self.at("+", "-"):
            op = self.take().text
            expr = Arithmetic(op, expr, self.term(aggregations=aggregations))
        return expr

    def term(self, *, aggregations: bool) -> Expr:
        expr = self.unary(aggregations=aggregations)
        while self.at("*", "/", "%"):
            op = self.take().text
            expr = Arithmetic(op, expr, self.unary(aggregations=aggregations))
        return expr

    def unary(self, *, aggregations: bool) -> Expr:
        if self.at("-"):
            self.take()
            return Negate(self.unary(aggregations=aggregations))
        return self.primary(aggregations=aggregations)

    def primary(self, *, aggregations: bool) -> Expr:
        token = self.take()
        if token.kind == "num":
            return Number(float(token.value))
        if token.kind == "str":
            return Text(str(token.value))
        if token.kind == "op" and token.text == "(":
            expr = self.arithmetic(aggregations=aggregations)
            self.expect(")")
            return expr
        if token.kind == "name" and self.at("("):
            return self.aggregate(token, allowed=aggregations)
        if token.kind == "name":
            if aggregations:
                self.fail("a stats expression may use fields only inside aggregation functions", token)
            return Field(str(token.value))
        self.fail("expected a field, a number or a string", token)

    def aggregate(self, function: Token, *, allowed: bool) -> Aggregate:
        name = function.text.lower()
        if name not in AGGREGATIONS:
            self.fail(f"the function {function.text!r} is not supported by this engine", function)
        if not allowed:
            self.fail(f"the aggregation {function.text!r} is allowed only in stats", function)
        self.expect("(")
        if name == "count" and self.at("*"):
            self.take()
            self.expect(")")
            return Aggregate("count", None)
        argument = self.arithmetic(aggregations=False)
        percentile = None
        if name in ("pct", "percentile"):
            self.expect(",")
            token = self.take()
            if token.kind != "num" or not 0 <= float(token.value) <= 100:
                self.fail("a percentile must be a number from 0 to 100", token)
            percentile = float(token.value)
        self.expect(")")
        return Aggregate("pct" if name == "percentile" else name, argument, percentile)

    # -- conditions
    def condition(self) -> Condition:
        left = self.conjunction()
        while self.at("or"):
            self.take()
            left = Logical("or", left, self.conjunction())
        return left

    def conjunction(self) -> Condition:
        left = self.negation()
        while self.at("and"):
            self.take()
            left = Logical("and", left, self.negation())
        return left

    def negation(self) -> Condition:
        if self.at("not"):
            self.take()
            return Not(self.negation())
        return self.atom()

    def atom(self) -> Condition:
        if self.at("ispresent"):
            self.take()
            self.expect("(")
            name = self.field_name()
            self.expect(")")
            return Present(name)
        if self.at("("):
            saved = self.position
            try:
                self.take()
                inner = self.condition()
                self.expect(")")
                if not self.at(*COMPARISONS, *ARITHMETIC):
                    return inner
            except MalformedQuery:
                pass
            self.position = saved  # "(" opened arithmetic, as in (@a + @b) > 5
        left = self.arithmetic(aggregations=False)
        token = self.peek()
        negated = self.at("not") and self.tokens[self.position + 1].text.lower() == "like"
        if negated:
            self.take()
        if self.at("like", "=~"):
            self.take()
            return self.like(left, negated)
        if self.at("in"):
            self.fail(f"the operator {token.text!r} is not supported by this engine", token)
        if not self.at(*COMPARISONS):
            self.fail("expected a comparison (= != < <= > >=)", token)
        op = self.take().text
        return Compare("=" if op == "==" else op, left, self.arithmetic(aggregations=False))

    def like(self, operand: Expr, negated: bool) -> Like:
        pattern = self.take()
        if pattern.kind == "str":
            return Like(operand, str(pattern.value), None, negated)
        if pattern.kind != "regex":
            self.fail("expected a quoted string or a /regular expression/ after 'like'", pattern)
        try:
            return Like(operand, None, compile_regex(str(pattern.value)), negated)
        except re.error as error:
            self.fail(f"invalid regular expression ({error})", pattern)


def _has_aggregate(expr: Expr) -> bool:
    if isinstance(expr, Aggregate):
        return True
    if isinstance(expr, Arithmetic):
        return _has_aggregate(expr.left) or _has_aggregate(expr.right)
    if isinstance(expr, Negate):
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


#: The fields moto's own engine fills in (it sorts by @timestamp only).
_MOTO_FIELDS: Final = frozenset({"@timestamp", "@message", "@logStream", "@log", "@ptr"})


def _moto_answers(commands: list[Command]) -> bool:
    """Whether moto's engine answers these commands right: only its fields, sorted by @timestamp if at all."""
    for command in commands:
        if isinstance(command, Fields) and any(
            not isinstance(expr, Field) or expr.name not in _MOTO_FIELDS for _, expr in command.items
        ):
            return False
        if isinstance(command, Sort) and any(name != "@timestamp" for name, _ in command.keys):
            return False
    return True


def parse_query(query: str) -> list[Command] | None:
    """The commands of a query this engine answers; None for one moto's engine answers (no `filter` or `stats`,
    only the fields moto knows, sorted by @timestamp if at all, or one this parser cannot read)."""
    if _command_words(query) & {"filter", "stats"}:
        return _Parser(query).query()
    try:
        commands = _Parser(query).query()
    except MalformedQuery:
        return None
    return None if _moto_answers(commands) else commands
