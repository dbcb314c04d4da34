"""The runbook file's schema: the pydantic documents a runbook file (a base or an override layer) is validated against
before it is compiled (`loading`), in the words of medic.vocabulary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from medic.planning.verdict import VerifySpec
from medic.vocabulary import Mode, SignalName

HitPolicy = Literal["first", "collect"]


class _Strict(BaseModel):
    # defer_build: the documents are validated once, when a runbook is loaded, not at every import.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ActionDoc(_Strict):
    kind: str = Field(description="an action kind of the vocabulary, e.g. set_provisioned_concurrency")
    params: dict[str, str | int | float] = Field(
        default_factory=dict, description="parameter name → number or expression over facts, e.g. ceil(peak * 1.2)"
    )


class ScopeDoc(_Strict):
    """Which targets a row applies to (all that are given must match). Used by per-team/per-function overrides."""

    functions: list[str] = Field(default_factory=list, description="function-name globs, e.g. checkout-*")
    tags: dict[str, str] = Field(default_factory=dict, description="tags the function must carry, e.g. team: pay")
    databases: list[str] = Field(default_factory=list, description="DB instance id globs (db_connections)")


class RowDoc(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    scope: ScopeDoc | None = None
    when: list[str] = Field(min_length=1, description="conditions over facts; all must hold")
    diagnosis: str
    mode: Mode
    actions: list[ActionDoc] = Field(min_length=1)
    rationale: str = Field(min_length=1, description="shown to humans; {fact} placeholders are filled in")
    verify: VerifySpec = VerifySpec()


class TableDoc(_Strict):
    hit_policy: HitPolicy | None = Field(
        default=None,
        description="first (default): the first matching row decides; "
        "collect: every matching row contributes its actions",
    )
    description: str = ""
    rows: list[RowDoc] = Field(default_factory=list)
    disable: list[str] = Field(default_factory=list, description="in an override: ids of the base rows to drop")


class ExampleExpect(_Strict):
    matched: bool = True
    row: str | None = None
    rows: list[str] | None = None
    diagnosis: str | None = None
    mode: Mode | None = None
    actions: list[str] | None = None
    params: dict[str, dict[str, float]] | None = Field(default=None, description="action kind → param → value")


class ExampleDoc(_Strict):
    """Facts in, expected verdict out: run by `medic runbook check`."""

    name: str = Field(min_length=1)
    signal: SignalName
    facts: dict[str, Any] = Field(default_factory=dict)
    expect: ExampleExpect


class RunbookDoc(_Strict):
    runbook: str = Field(min_length=1)
    version: int
    description: str = ""
    extends: str | None = Field(default=None, description="an override file names the runbook it layers on")
    tables: dict[SignalName, TableDoc] = Field(default_factory=dict)
    examples: list[ExampleDoc] = Field(default_factory=list)
