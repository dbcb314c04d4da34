"""CloudWatch Logs filter patterns (FilterLogEvents, subscription filters, live tail) for moto 5.2.5, which knows
bare and quoted terms only and lets every other pattern match every event.

What the embedded world matches (CloudWatch Logs user guide, "Filter pattern syntax"; case-sensitive throughout):

* **Terms**: words or "quoted phrases" separated by spaces; an event matches when its message contains every term,
  none of the `-term`s, and one of the `?term`s when there are any ("?ERROR ?WARN"); an empty pattern matches all.
* **JSON** patterns, `{ ... }`, over events that are JSON objects: a selector (`$.record.metrics.durationMs`,
  `$.users[0].id`) compared with `=`/`!=` to a string ("quoted", or bare; `*` at its start or end is a wildcard,
  `*` alone matches any value) or with `= != < > <= >=` to a number; `IS NULL`, `NOT EXISTS`, `IS TRUE`,
  `IS FALSE`; `&&`, `||` and parentheses ("() > && > ||"). "The SELECTOR must point to a value node": a selector
  that reaches an object, an array or nothing matches neither `=` nor `!=`. E.g. `{ $.type = "platform.report" }`
  keeps Lambda's JSON REPORT records.
* Space-delimited patterns (`[ip, user, ...]`) are valid on AWS but refused here with InvalidParameterException,
  as is a pattern this module cannot read, rather than answered wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from moto.logs.exceptions import InvalidParameterException
from moto.logs.utils import EventMessageFilter

_TERM: Final = re.compile(r'\s*([?-]?)("(?:[^"\\]|\\.)*"|[^\s"]+)')
_JSON_TOKEN: Final = re.compile(
    r"""\s*(?:
    (?P<selector>\$(?:\.[\w@-]+|\[\d+\])*)
    |(?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\))
    |(?P<string>"(?:[^"\\]|\\.)*")
    |(?P<word>[^\s()&|=!<>"]+)
    )""",
    re.VERBOSE,
)
_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_MISSING: Final = object()

Matcher = Callable[[str], bool]


def _refused(pattern: str, why: str) -> InvalidParameterException:
    return InvalidParameterException(f"Invalid filter pattern {pattern!r}: {why}")


# ---------------------------------------------------------------------------------------------------------------
# Terms


def _terms(pattern: str) -> Matcher:
    required: list[str] = []
    excluded: list[str] = []
    optional: list[str] = []
    position = 0
    while position < len(pattern.rstrip()):
        match = _TERM.match(pattern, position)
        if match is None:
            raise _refused(pattern, f"unexpected text at offset {position}")
        prefix, term = match.groups()
        text = re.sub(r"\\(.)", r"\1", term[1:-1]) if term.startswith('"') else term
        {"": required, "-": excluded, "?": optional}[prefix].append(text)
        position = match.end()

    def matches(message: str) -> bool:
        return (
            all(term in message for term in required)
            and not any(term in message for term in excluded)
            and (not optional or any(term in message for term in optional))
        )

    return matches


# ---------------------------------------------------------------------------------------------------------------
# JSON


@dataclass(frozen=True)
class _Test:
    path: tuple[str | int, ...]
    op: str  # a comparison, or "null", "missing", "true", "false"
    value: float | str | None = None


@dataclass(frozen=True)
class _Both:
    op: str  # "&&" | "||"
    left: _Condition
    right: _Condition


_Condition = _Test | _Both


class _JsonParser:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.tokens: list[tuple[str, str]] = []
        body = pattern.strip()[1:-1]
        position = 0
        while body[position:].strip():
            match = _JSON_TOKEN.match(body, position)
            if match is None or match.end() == position:
                raise _refused(pattern, f"unexpected text {body[position:].strip()[:20]!r}")
            self.tokens.append((match.lastgroup or "", match.group(match.lastgroup or 0)))
            position = match.end()
        self.position = 0

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise _refused(self.pattern, "it ends too early")
        self.position += 1
        return self.tokens[self.position - 1]

    def at(self, text: str) -> bool:
        return self.position < len(self.tokens) and self.tokens[self.position][1] == text

    def parse(self) -> _Condition:
        condition = self.either()
        if self.position != len(self.tokens):
            raise _refused(self.pattern, f"unexpected {self.tokens[self.position][1]!r}")
        return condition

    def either(self) -> _Condition:
        condition = self.both()
        while self.at("||"):
            self.take()
            condition = _Both("||", condition, self.both())
        return condition

    def both(self) -> _Condition:
        condition = self.test()
        while self.at("&&"):
            self.take()
            condition = _Both("&&", condition, self.test())
        return condition

    def test(self) -> _Condition:
        kind, text = self.take()
        if text == "(":
            condition = self.either()
            if self.take()[1] != ")":
                raise _refused(self.pattern, "a parenthesis is not closed")
            return condition
        if kind != "selector":
            raise _refused(self.pattern, f"expected a selector ($.name), found {text!r}")
        path = tuple(int(p[1:-1]) if p.startswith("[") else p[1:] for p in re.findall(r"\.[\w@-]+|\[\d+\]", text))
        kind, word = self.take()
        if word.upper() in ("IS", "NOT"):
            _, what = self.take()
            check = {"IS NULL": "null", "NOT EXISTS": "missing", "IS TRUE": "true", "IS FALSE": "false"}
            op = check.get(f"{word.upper()} {what.upper()}")
            if op is None:
                raise _refused(self.pattern, f"unknown check {word} {what}")
            return _Test(path, op)
        if kind != "op" or word not in ("=", "!=", "<", ">", "<=", ">="):
            raise _refused(self.pattern, f"expected a comparison after {text}, found {word!r}")
        kind, value = self.take()
        if kind == "string":
            return _Test(path, word, re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind != "word":
            raise _refused(self.pattern, f"expected a value after {word}, found {value!r}")
        return _Test(path, word, float(value) if _NUMBER.fullmatch(value) else value)


def _node(document: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        in_list = isinstance(step, int) and isinstance(document, list) and step < len(document)
        in_object = isinstance(step, str) and isinstance(document, dict) and step in document
        if not (in_list or in_object):
            return _MISSING
        document = document[step]
    return document


def _equals(node: Any, value: float | str) -> bool:
    if isinstance(value, float):
        return isinstance(node, int | float) and not isinstance(node, bool) and float(node) == value
    text = json.dumps(node) if isinstance(node, bool) or node is None else str(node)
    if value == "*":
        return True
    if value.startswith("*") and value.endswith("*") and len(value) > 1:
        return value[1:-1] in text
    if value.startswith("*"):
        return text.endswith(value[1:])
    if value.endswith("*"):
        return text.startswith(value[:-1])
    return text == value


def _holds(condition: _Condition, document: Any) -> bool:
    if isinstance(condition, _Both):
        if condition.op == "&&":
            return _holds(condition.left, document) and _holds(condition.right, document)
        return _holds(condition.left, document) or _holds(condition.right, document)
    node = _node(document, condition.path)
    checks = {"null": node is None, "missing": node is _MISSING, "true": node is True, "false": node is False}
    if condition.op in checks:
        return checks[condition.op]
    if node is _MISSING or isinstance(node, dict | list) or condition.value is None:
        return False
    if condition.op in ("=", "!="):
        return _equals(node, condition.value) == (condition.op == "=")
    if not isinstance(condition.value, float) or not isinstance(node, int | float) or isinstance(node, bool):
        return False
    return {"<": node < condition.value, ">": node > condition.value, "<=": node <= condition.value}.get(
        condition.op, node >= condition.value
    )


def _json(pattern: str) -> Matcher:
    condition = _JsonParser(pattern).parse()

    def matches(message: str) -> bool:
        try:
            document = json.loads(message)
        except ValueError:
            return False
        return isinstance(document, dict) and _holds(condition, document)

    return matches


@lru_cache(maxsize=256)
def compile_filter(pattern: str) -> Matcher:
    """A filter pattern as a function of an event's message (raises InvalidParameterException when refused).

    >>> compile_filter('{ $.type = "platform.report" && $.record.metrics.durationMs > 500 }')(
    ...     '{"type": "platform.report", "record": {"metrics": {"durationMs": 812.5}}}')
    True
    """
    text = pattern.strip()
    if text.startswith("{") and text.endswith("}"):
        return _json(text)
    if text.startswith("["):
        raise _refused(pattern, "space-delimited patterns are not supported by the embedded world")
    return _terms(text)


def _filter_init(self: EventMessageFilter, pattern: str) -> None:
    self.__dict__["_medic_matches"] = compile_filter(pattern or "")


def _filter_matches(self: EventMessageFilter, message: str) -> bool:
    matches: Matcher = self.__dict__["_medic_matches"]
    return matches(message)


def install() -> None:
    """Patch moto's filter patterns in this process (the caller makes it once-only)."""
    EventMessageFilter.__init__ = _filter_init  # type: ignore[method-assign]
    EventMessageFilter.matches = _filter_matches  # type: ignore[method-assign]
