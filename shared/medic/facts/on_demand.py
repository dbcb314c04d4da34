"""Facts read on demand: each group of facts is read by its AWS call(s) the first time one of its facts is asked for.

A triage asks for facts as the runbook's rows are tried (`decide` reads a row's conditions in order and stops at the
first that does not hold), then as the matched row's parameters, its actions, the guardrails and the costs read them.
`OnDemandFacts` is a `Facts` whose unread groups are pending: reading a fact of a pending group (as an attribute, or
through `environment()` and `target_tags()`) runs the group's reader first, which may itself read the facts it
depends on (the REPORT lines need `GetFunction`'s log group, a utilization its metric and the account's limit). A fact
no one asked for is never read: it stays unknown and the plan does not record it. What a group reads, and so what
each fact is, is the same as when everything is collected up front (`FactCollector.collect`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import PrivateAttr

from medic.facts.model import FACT_TYPES, Facts

#: The names that can be pending: every fact field (the bookkeeping `sources` and `missing` never is).
FACT_FIELDS: Final = frozenset(name for name in Facts.model_fields if name not in ("sources", "missing"))


@dataclass(frozen=True)
class Group:
    """The facts one reader fills (its AWS call, or a derivation), and the reader."""

    names: tuple[str, ...]
    read: Callable[[], None]


class OnDemandFacts(Facts):
    """`Facts` whose pending groups are read when one of their facts is first read."""

    _pending: dict[str, Group] = PrivateAttr(default_factory=dict)

    def defer(self, groups: list[Group]) -> None:
        """Leave `groups` unread until one of their facts is read (each fact belongs to one group)."""
        for group in groups:
            for name in group.names:
                if name not in FACT_FIELDS or name in self._pending:
                    raise ValueError(f"{name!r}: not a fact, or already pending in another group")
                self._pending[name] = group

    def __getattribute__(self, name: str) -> Any:
        if name in FACT_FIELDS:
            pending = object.__getattribute__(self, "__pydantic_private__")["_pending"]
            group = pending.get(name)
            if group is not None:
                for fact in group.names:  # pending no more, before it reads: its reader reads its own facts too
                    pending.pop(fact, None)
                group.read()
        return object.__getattribute__(self, name)

    @property
    def pending(self) -> frozenset[str]:
        """The facts not read yet."""
        return frozenset(self._pending)

    def environment(self) -> Mapping[str, Any]:
        return _Environment(self)

    def target_tags(self) -> Mapping[str, str] | None:
        return _Tags(self)


class _Environment(Mapping[str, Any]):
    """`values()` read as asked: a fact's group is read when `decide` first reads one of its facts."""

    def __init__(self, facts: OnDemandFacts) -> None:
        self._facts = facts

    def __getitem__(self, name: str) -> Any:
        if name not in FACT_TYPES:
            raise KeyError(name)
        return getattr(self._facts, name)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self._facts, name) if name in FACT_TYPES else default

    def __iter__(self) -> Iterator[str]:
        return iter(FACT_TYPES)

    def __len__(self) -> int:
        return len(FACT_TYPES)


class _Tags(Mapping[str, str]):
    """The target's tags, read (with `GetFunction`) only when a row's scope names a tag."""

    def __init__(self, facts: OnDemandFacts) -> None:
        self._facts = facts

    def _tags(self) -> dict[str, str]:
        return self._facts.tags or {}

    def __getitem__(self, key: str) -> str:
        return self._tags()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tags())

    def __len__(self) -> int:
        return len(self._tags())
