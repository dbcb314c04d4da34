"""The verdict of the decision engine: `Decision`, with its trace and action calls.

Apart from the runbook (medic.planning.runbook) so that what reads a plan (the interactions, the executor, the
verifier, the
CLI) imports the models of a verdict without the engine, its loader and the facts' vocabulary.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from medic.vocabulary import Mode


class VerifySpec(BaseModel):
    """What the verifier expects after the change."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    expect: str = "alarm back to OK"
    rollback_on_failure: bool = False


class ConditionResult(BaseModel):
    model_config = ConfigDict(defer_build=True)  # part of Decision's schema; built on its own only when used alone

    expression: str
    result: Literal["true", "false", "unknown"]
    facts: dict[str, Any] = Field(default_factory=dict)


class RowTrace(BaseModel):
    model_config = ConfigDict(defer_build=True)  # part of Decision's schema; built on its own only when used alone

    row: str
    matched: bool
    conditions: list[ConditionResult] = Field(default_factory=list)
    note: str = ""
    where: str = ""


class ActionCall(BaseModel):
    model_config = ConfigDict(defer_build=True)  # part of Decision's schema; built on its own only when used alone

    kind: str
    params: dict[str, float] = Field(default_factory=dict)
    row: str = ""


class Decision(BaseModel):
    """The verdict of one table over one set of facts, with the trace that explains it."""

    signal: str
    table: str | None = None
    hit_policy: str = "first"
    row: str | None = None
    rows: list[str] = Field(default_factory=list)
    diagnosis: str | None = None
    mode: Mode | None = None
    rationale: str = ""
    actions: list[ActionCall] = Field(default_factory=list)
    verify: VerifySpec = VerifySpec()
    trace: list[RowTrace] = Field(default_factory=list)
    reason: str = ""
    missing_facts: list[str] = Field(default_factory=list)

    @property
    def matched(self) -> bool:
        return self.row is not None

    @property
    def rule(self) -> str | None:
        """The matched row (rows joined with + under hit policy collect)."""
        return "+".join(self.rows) if self.rows else self.row
