"""A compiled runbook: its tables of rows (conditions and action parameters compiled to expressions), each row's
scope, and the runbook's examples; `notify_only` turns a base into the advice-only runbook a refused override leaves."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from medic.errors import RunbookError
from medic.planning.expr import Evaluator, Expression
from medic.planning.runbook.documents import ExampleDoc
from medic.planning.verdict import VerifySpec
from medic.vocabulary import Mode


@dataclass(frozen=True)
class CompiledAction:
    kind: str
    params: dict[str, Expression]


@dataclass(frozen=True)
class Scope:
    functions: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    databases: tuple[str, ...] = ()

    def matches(self, facts: Mapping[str, Any], tags: Mapping[str, str] | None) -> bool:
        name, database = facts.get("function_name"), facts.get("db_instance")
        if self.functions and not (name and any(fnmatch.fnmatchcase(str(name), g) for g in self.functions)):
            return False
        if self.databases and not (database and any(fnmatch.fnmatchcase(str(database), g) for g in self.databases)):
            return False
        return all((tags or {}).get(key) == value for key, value in self.tags)

    def describe(self) -> str:
        parts = [f"functions {', '.join(self.functions)}"] if self.functions else []
        parts += [f"tags {', '.join(f'{k}={v}' for k, v in self.tags)}"] if self.tags else []
        parts += [f"databases {', '.join(self.databases)}"] if self.databases else []
        return "; ".join(parts)


@dataclass(frozen=True)
class Row:
    id: str
    conditions: tuple[Expression, ...]
    diagnosis: str
    mode: Mode
    actions: tuple[CompiledAction, ...]
    rationale: str
    verify: VerifySpec
    scope: Scope | None = None
    where: str = ""

    @cached_property
    def checks(self) -> tuple[tuple[str, tuple[str, ...], Evaluator], ...]:
        """Each condition as `decide` walks it: (its source, the facts it reads in name order, its evaluator)."""
        return tuple((c.source, tuple(sorted(c.names)), c.evaluator) for c in self.conditions)

    @cached_property
    def rationale_parts(self) -> tuple[str, ...]:
        """The rationale cut at its `{fact}` placeholders (as `render` cuts a template), for `decide` to fill."""
        return tuple(PLACEHOLDER.split(self.rationale))


@dataclass(frozen=True)
class Table:
    signal: str
    hit_policy: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Example:
    doc: ExampleDoc
    where: str


@dataclass(frozen=True)
class Runbook:
    """A loaded runbook. `refused` is set on a runbook that fails closed (`RunbookStore`): an override was refused
    before any layered runbook was good, so this is the base alone, and every decision made with it is advice
    (mode notify) that says why."""

    name: str
    version: int
    source: str
    tables: dict[str, Table] = field(default_factory=dict)
    examples: tuple[Example, ...] = ()
    layers: tuple[str, ...] = ()
    refused: str = ""


def notify_only(base: Runbook, refusal: RunbookError) -> Runbook:
    """`base` failing closed because an override was refused: every decision made with it is notify-only, its
    rationale and reason carry the refusal (the card and the log show it), until the override is fixed."""
    return replace(base, source=f"{base.source} (notify-only: an override was refused)", refused=str(refusal))


def refusal_notice(runbook: Runbook) -> str:
    return (
        f":warning: Advice only: a runbook override was refused ({runbook.refused}). Until it is fixed, Medic "
        "changes nothing on its own and proposes nothing to approve."
    )


PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
