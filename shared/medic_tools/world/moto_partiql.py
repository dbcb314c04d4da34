"""PartiQL SELECT (`ExecuteStatement`) on a table or an index, as DynamoDB documents it.

moto 5.2.5 hands PartiQL to py_partiql_parser 0.6.3, which misreads the statements Medic sends: the documented
`FROM "table"."index"` is "not found", `IN [?, ?]` matches only its first value, and `>=` on strings fails or is
ignored. This module serves the SELECTs of that grammar itself and leaves every other statement (INSERT, UPDATE,
DELETE, anything it cannot parse) to moto.

What it serves (developer guide, "PartiQL select statements for DynamoDB"; API reference, ExecuteStatement):

* `SELECT * | "a", b … FROM "table"[."index"] [WHERE condition]`; identifiers quoted or bare, string and number
  literals, `?` parameters (their count must match `Parameters`);
* conditions: `=`, `<>`, `<`, `<=`, `>`, `>=`, `IN [..]`, `BETWEEN x AND y`, `AND`, `OR`, `NOT`, parentheses, on
  top-level attributes; values of different types never compare (false), numbers compare as numbers, strings by
  code point; a missing attribute matches nothing;
* an index holds only the items that carry its key attributes (sparse) and returns its projection; an unknown index
  is a ValidationException, an unknown table ResourceNotFoundException;
* a request evaluates at most `Limit` items (not: returns) and about 1 MB of them, and `NextToken` continues: a
  page may be empty and still carry a token, so a reader must follow tokens until there is none.

Whether DynamoDB reads a SELECT as a query or a scan changes its cost, not its result; the results here are the same
either way (items ordered by key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from moto.dynamodb.exceptions import MockValidationException, ResourceNotFoundException
from moto.dynamodb.responses import DynamoHandler, DynamoResult

Value = dict[str, Any]  # an AttributeValue, e.g. {"S": "APPLIED"}
Condition = Callable[[dict[str, Value]], bool]

_TOKEN = re.compile(
    r"""\s*(?:(?P<qid>"(?:[^"]|"")*")|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|"""
    r"""(?P<op><>|!=|<=|>=|[=<>()\[\],.*?])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"""
)
#: A read stops after about 1 MB of items evaluated (API reference, ExecuteStatement) and returns a NextToken.
MAX_PAGE_BYTES = 1024 * 1024
_installed = False


class Unsupported(Exception):
    """A statement outside this grammar: moto serves it."""


def _tokens(statement: str) -> list[tuple[str, str]]:
    tokens, position, text = [], 0, statement.strip().rstrip(";")
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unsupported(text[position:])
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "qid":
            tokens.append(("id", raw[1:-1].replace('""', '"')))
        elif kind == "str":
            tokens.append(("value", json.dumps({"S": raw[1:-1].replace("''", "'")})))
        elif kind == "num":
            tokens.append(("value", json.dumps({"N": raw})))
        elif kind == "word":
            upper = raw.upper()
            keyword = upper in ("SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "BETWEEN")
            tokens.append(("kw", upper) if keyword else ("id", raw))
        else:
            tokens.append(("op", raw))
        position = match.end()
    return tokens


class _Select:
    """One parsed SELECT: its source, projection and condition over an item's attributes."""

    def __init__(self, statement: str, parameters: list[Value]) -> None:
        self.tokens = _tokens(statement)
        self.at = 0
        self.parameters = list(parameters)
        self.used = 0
        self.expect("kw", "SELECT")
        self.columns: list[str] | None = None
        if self.accept("op", "*") is None:
            self.columns = [self.expect("id")]
            while self.accept("op", ","):
                self.columns.append(self.expect("id"))
        self.expect("kw", "FROM")
        self.table = self.expect("id")
        self.index = self.expect("id") if self.accept("op", ".") else None
        self.where: Condition = (lambda item: True) if self.accept("kw", "WHERE") is None else self.disjunction()
        if self.at != len(self.tokens):
            raise Unsupported(f"unexpected {self.tokens[self.at][1]!r}")
        if self.used != len(self.parameters):
            raise MockValidationException("Number of parameters in request and statement don't match.")

    # -- the token stream
    def accept(self, kind: str, text: str | None = None) -> str | None:
        if self.at < len(self.tokens):
            found_kind, found = self.tokens[self.at]
            if found_kind == kind and (text is None or found == text):
                self.at += 1
                return found
        return None

    def expect(self, kind: str, text: str | None = None) -> str:
        found = self.accept(kind, text)
        if found is None:
            raise Unsupported(f"expected {text or kind}")
        return found

    # -- conditions
    def disjunction(self) -> Condition:
        parts = [self.conjunction()]
        while self.accept("kw", "OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda item: any(part(item) for part in parts)

    def conjunction(self) -> Condition:
        parts = [self.negation()]
        while self.accept("kw", "AND"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else lambda item: all(part(item) for part in parts)

    def negation(self) -> Condition:
        if self.accept("kw", "NOT"):
            inner = self.negation()
            return lambda item: not inner(item)
        if self.accept("op", "("):
            inner = self.disjunction()
            self.expect("op", ")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        left = self.operand()
        if self.accept("kw", "IN"):
            self.expect("op", "[")
            choices = [self.operand()]
            while self.accept("op", ","):
                choices.append(self.operand())
            self.expect("op", "]")
            return lambda item: any(_compare(left(item), "=", choice(item)) for choice in choices)
        if self.accept("kw", "BETWEEN"):
            low = self.operand()
            self.expect("kw", "AND")
            high = self.operand()
            return lambda item: _compare(left(item), ">=", low(item)) and _compare(left(item), "<=", high(item))
        operator = self.expect("op")
        if operator not in ("=", "<>", "!=", "<", "<=", ">", ">="):
            raise Unsupported(operator)
        right = self.operand()
        return lambda item: _compare(left(item), operator, right(item))

    def operand(self) -> Callable[[dict[str, Value]], Value | None]:
        name = self.accept("id")
        if name is not None:
            return lambda item: item.get(name)
        if self.accept("op", "?"):
            if self.used >= len(self.parameters):
                raise MockValidationException("Number of parameters in request and statement don't match.")
            value = self.parameters[self.used]
            self.used += 1
            return lambda item: value
        literal = self.expect("value")
        value = json.loads(literal)
        return lambda item: value


def _compare(left: Value | None, operator: str, right: Value | None) -> bool:
    if left is None or right is None or len(left) != 1 or set(left) != set(right):
        return False  # missing, or of different types: DynamoDB compares neither
    [(kind, a)], b = left.items(), right[next(iter(right))]
    if kind == "N":
        a, b = Decimal(a), Decimal(b)
    elif kind != "S":
        if operator not in ("=", "<>", "!="):
            return False
        a, b = json.dumps(a, sort_keys=True), json.dumps(b, sort_keys=True)
    results = {"=": a == b, "<>": a != b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}
    return bool(results[operator])


def _sort_key(item: dict[str, Value], names: list[str]) -> tuple[Any, ...]:
    key: list[Any] = []
    for name in names:
        [(kind, value)] = item[name].items()
        key.append((kind, Decimal(value) if kind == "N" else str(value)))
    return tuple(key)


def _size(item: dict[str, Value]) -> int:
    """An item's size as DynamoDB counts it, near enough: its attribute names and values, in bytes."""
    return sum(len(name.encode()) + len(json.dumps(value).encode()) for name, value in item.items())


def select(
    backend: Any, statement: str, parameters: list[Value], limit: int | None, next_token: str | None
) -> tuple[list[dict[str, Value]], str | None]:
    """The items of one page of a SELECT, and the token of the next page (None: the last)."""
    query = _Select(statement, parameters)
    table = backend.tables.get(query.table)
    if table is None:
        raise ResourceNotFoundException()
    keys = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
    items = [item.to_json()["Attributes"] for item in table.all_items()]
    if query.index is not None:
        index = next((i for i in table.all_indexes() if i.name == query.index), None)
        if index is None:
            raise MockValidationException("The table does not have the specified index")
        keys = list(index.schema_key_attrs)
        items = [
            index.project(item).to_json()["Attributes"]
            for item in table.all_items()
            if all(name in item.attrs for name in keys)
        ]
    items.sort(key=lambda item: _sort_key(item, keys))
    fingerprint = hashlib.sha256(json.dumps([statement, parameters], sort_keys=True).encode()).hexdigest()[:16]
    start = 0
    if next_token:
        try:
            token = json.loads(base64.b64decode(next_token))
            start, valid = int(token["at"]), token["of"] == fingerprint
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            raise MockValidationException("Given NextToken is not valid for this statement")
    end, size = start, 0
    while end < len(items) and (limit is None or end - start < limit) and (size < MAX_PAGE_BYTES or end == start):
        size += _size(items[end])
        end += 1
    page = [item for item in items[start:end] if query.where(item)]
    if query.columns is not None:
        page = [{name: item[name] for name in query.columns if name in item} for item in page]
    token_out = None
    if end < len(items):
        token_out = base64.b64encode(json.dumps({"at": end, "of": fingerprint}).encode()).decode()
    return page, token_out


def _execute_statement(self: DynamoHandler) -> Any:
    body = self.body
    statement = body.get("Statement", "")
    try:
        items, token = select(
            self.dynamodb_backend, statement, body.get("Parameters", []), body.get("Limit"), body.get("NextToken")
        )
    except Unsupported:
        return _moto_execute_statement(self)
    return DynamoResult({"Items": items, **({"NextToken": token} if token else {})})


_moto_execute_statement = DynamoHandler.execute_statement


def install() -> None:
    """Serve PartiQL SELECTs in this process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, once-only patch
    if not _installed:
        DynamoHandler.execute_statement = _execute_statement  # type: ignore[method-assign]
        _installed = True
