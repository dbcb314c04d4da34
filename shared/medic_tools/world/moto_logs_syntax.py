"""The syntax tree of a Logs Insights query, as `medic_tools.world.moto_logs_query` parses it and `moto_logs` runs it.

Expressions (`Expr`) compute a value from an event's fields, conditions (`Condition`) hold or not for an event, and
commands (`Command`) are the steps of the `|`-separated pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Arithmetic:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate:
    operand: Expr


@dataclass(frozen=True)
class Aggregate:
    function: str
    argument: Expr | None  # None: count(*)
    percentile: float | None = None


Expr = Number | Text | Field | Arithmetic | Negate | Aggregate


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Present:
    field: str


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    left: Condition
    right: Condition


@dataclass(frozen=True)
class Like:
    """`operand like "text"` (it contains the text) or `operand like /regex/` (the regex matches in it)."""

    operand: Expr
    substring: str | None
    regex: re.Pattern[str] | None
    negated: bool = False


Condition = Compare | Present | Not | Logical | Like


@dataclass(frozen=True)
class Fields:
    items: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class Filter:
    condition: Condition


@dataclass(frozen=True)
class Stats:
    items: tuple[tuple[str, Expr], ...]
    by: tuple[str, ...]


@dataclass(frozen=True)
class Sort:
    keys: tuple[tuple[str, bool], ...]  # (field, descending)


@dataclass(frozen=True)
class Limit:
    count: int


Command = Fields | Filter | Stats | Sort | Limit
