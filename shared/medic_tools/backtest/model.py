"""The `medic backtest --json` document (docs/BACKTEST.md; its JSON Schema: docs/schemas/backtest.schema.json,
`medic schema backtest`). A public contract, as `medic simulate --json` is: keys may be added, none removed or changed
in meaning. Each resumed row (`--resume`) is stored in this shape too."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = int | float | str | bool | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionRow(_Model):
    """One planned action: its primary value before → after (as `medic simulate --json`), every field it sets, and
    what it adds to the monthly bill (null: not priced)."""

    kind: str
    target: str
    before: Scalar = None
    after: Scalar = None
    changes: dict[str, list[Scalar]] = Field(default_factory=dict, description="field → [before, after]")
    clamps: list[str] = Field(default_factory=list, description="what a guardrail clamped")
    cost_monthly_usd: float | None = None


class Refusal(_Model):
    guard: str
    message: str


class Verdict(_Model):
    """What one runbook decides for a transition, and the plan that decision makes (no stateful controls)."""

    runbook: str = Field(description="name vVERSION of the runbook (and its layers) decided with")
    diagnosis: str | None = None
    rule: str | None = None
    mode: str | None = Field(default=None, description="auto, approve or notify")
    status: str = Field(
        description="the state triage would start the plan in, before the stateful controls: "
        "NOOP, BLOCKED, PROPOSED or APPROVED"
    )
    reason: str | None = None
    actions: list[ActionRow] = Field(default_factory=list)
    blocked_by: list[Refusal] = Field(default_factory=list)
    cost_monthly_usd: float | None = Field(default=None, description="the priced actions' sum; null when none is")


class LogDecision(_Model):
    """What triage decided for the transition, from the log's `plan_created` record."""

    status: str | None = None
    diagnosis: str | None = None
    rule: str | None = None
    mode: str | None = None
    actions: list[ActionRow] = Field(default_factory=list)


class LogOutcome(_Model):
    """What actually happened: the remediation log's plan of the same transition (the plan id is deterministic)."""

    available: bool = Field(description="whether the log was read (its tables are known)")
    found: bool = False
    plan_status: str | None = Field(default=None, description="the plan's state now (VERIFIED, REJECTED…)")
    decided: LogDecision | None = None
    superseded_by: str | None = Field(default=None, description="the open plan this alarm was attached to")
    equal: bool | None = Field(
        default=None,
        description="the replayed decision equals the log's (diagnosis, rule, mode, actions); null: nothing to compare",
    )
    differences: list[str] = Field(default_factory=list)
    note: str = ""


class TransitionRow(_Model):
    """One transition to ALARM, replayed."""

    plan_id: str
    time: str = Field(description="the state timestamp (ISO, ms, Z)")
    alarm: str
    alarm_arn: str
    function: str | None = None
    target: str
    signal: str
    signal_reason: str = ""
    decision: Verdict
    against: Verdict | None = Field(default=None, description="with --against: the other runbook's verdict")
    altered: list[str] | None = Field(
        default=None, description="with --against: what differs (diagnosis, mode, actions); empty when nothing does"
    )
    log: LogOutcome
    configuration_changed: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="configuration facts: [the log's value then, today's value], where they differ",
    )
    notes: list[str] = Field(default_factory=list)


class StateChangeRow(_Model):
    time: str
    old: str
    new: str


class AlarmTimeline(_Model):
    """An alarm in scope and its state changes in the period (the report's charts)."""

    alarm: str
    function: str | None = None
    target: str
    signal: str
    changes: list[StateChangeRow] = Field(default_factory=list)


class SkippedAlarm(_Model):
    alarm: str
    reason: str


class RunbookRef(_Model):
    name: str
    version: int
    source: str
    layers: list[str]


class Calls(_Model):
    """AWS calls this run made (retries not counted; resumed rows cost none)."""

    total: int
    by_operation: dict[str, int] = Field(description="service:Operation → calls")
    per_transition: float | None = Field(
        description="the calls of the facts and log lookups, per transition replayed in this run"
    )
    rate_limit: float = Field(description="--rate: calls a second at most")
    waited_s: float = Field(description="time spent waiting on the rate limit")


class Summary(_Model):
    alarm_transitions: int = Field(description="transitions to ALARM in the period (opted-in functions' alarms)")
    replayed: int = Field(description="decided in this run")
    resumed: int = Field(description="taken from --resume")
    equal_to_log: int
    differ_from_log: int
    not_in_log: int = Field(description="no plan (or no decision) in the log, or the log not read")
    altered: int | None = Field(default=None, description="with --against: decisions that change")
    calls: Calls


class LogRef(_Model):
    available: bool
    plans_table: str | None = None
    events_table: str | None = None
    note: str = ""


class Period(_Model):
    since: str
    until: str


class BacktestDocument(_Model):
    """What Medic would have done with each transition to ALARM of the opted-in functions' alarms in a period."""

    version: Literal[1] = 1
    generated_at: str
    period: Period
    account: str | None = None
    region: str | None = None
    opt_in_tag: str
    runbook: RunbookRef
    against: RunbookRef | None = None
    log: LogRef
    alarms: list[AlarmTimeline]
    skipped_alarms: list[SkippedAlarm]
    transitions: list[TransitionRow]
    summary: Summary
    notes: list[str] = Field(description="what is rebuilt as of each transition and what is today's")


def backtest_schema() -> dict[str, Any]:
    """The JSON Schema of `medic backtest --json` (`medic schema backtest`)."""
    schema = BacktestDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Medic backtest (medic backtest --json)"
    schema["description"] = (
        "What Medic would have done with each transition to ALARM of the opted-in functions' alarms in a period, "
        "and what it did then (the remediation log); the format: docs/BACKTEST.md."
    )
    return schema
