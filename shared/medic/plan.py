"""The plan: what Medic intends to do about one alarm transition, and its state machine."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from medic.actions.base import PlannedAction
from medic.verdict import Decision

PlanState = Literal[
    "PROPOSED", "APPROVED", "REJECTED", "EXPIRED", "APPLYING", "APPLIED", "VERIFIED",
    "FAILED", "ROLLED_BACK", "BLOCKED", "DRIFTED", "SUPERSEDED", "NOOP",
]  # fmt: skip

PLAN_STATES: tuple[str, ...] = PlanState.__args__  # type: ignore[attr-defined]

#: Allowed transitions (from → to). Every change of state is one conditional write on the old state.
TRANSITIONS: dict[str, frozenset[str]] = {
    "PROPOSED": frozenset({"APPROVED", "REJECTED", "EXPIRED", "SUPERSEDED", "BLOCKED"}),
    "APPROVED": frozenset({"APPLYING", "BLOCKED", "DRIFTED", "EXPIRED"}),
    "APPLYING": frozenset({"APPLIED", "FAILED", "ROLLED_BACK", "DRIFTED"}),
    "APPLIED": frozenset({"VERIFIED", "FAILED"}),
    "FAILED": frozenset({"ROLLED_BACK"}),
}
INITIAL_STATES = frozenset({"PROPOSED", "APPROVED", "BLOCKED", "NOOP", "SUPERSEDED"})
#: A plan in one of these holds its target: new alarms on the target attach to it instead of making plans.
OPEN_STATES = frozenset({"PROPOSED", "APPROVED", "APPLYING", "APPLIED"})
TERMINAL_STATES = frozenset(PLAN_STATES) - frozenset(TRANSITIONS)


def can_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


class Refusal(BaseModel):
    """A guardrail's refusal: which guard, its limit and what was observed."""

    model_config = ConfigDict(defer_build=True)  # part of Plan's schema; built on its own only when used alone

    guard: str
    limit: Any = None
    observed: Any = None
    message: str


class SlackRef(BaseModel):
    channel: str = ""
    ts: str = ""


class Verification(BaseModel):
    model_config = ConfigDict(defer_build=True)  # part of Plan's schema; built on its own only when used alone

    outcome: Literal["VERIFIED", "FAILED", "PENDING"] = "PENDING"
    alarm_state: str | None = None
    datapoints: list[float] = Field(default_factory=list)
    threshold: float | None = None
    checked_at: str | None = None
    note: str = ""


class Plan(BaseModel):
    """One plan per alarm transition; its id is derived from (alarm ARN, state timestamp)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: PlanState
    alarm_arn: str
    alarm_name: str
    state_timestamp: str
    account: str
    region: str
    signal: str
    target: str
    function_name: str | None = None
    qualifier: str | None = None
    db_instance: str | None = None
    metric: dict[str, Any] | None = None
    alarm_value: float | None = None
    alarm_threshold: float | None = None
    recent_datapoints: list[float] = Field(default_factory=list)
    diagnosis: str | None = None
    rule: str | None = None
    mode: str | None = None
    dry_run: bool = False
    rationale: str = ""
    reason: str = ""
    actions: list[PlannedAction] = Field(default_factory=list)
    blocked_by: list[Refusal] = Field(default_factory=list)
    decision: Decision | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    fact_sources: dict[str, str] = Field(default_factory=dict)
    missing_facts: dict[str, str] = Field(default_factory=dict)
    approval_hash: str = ""
    decided_by: list[str] = Field(default_factory=list)
    triggered_by: str = Field(
        default="", description="the Slack user who asked for a manual plan: never its only approver"
    )
    slack: SlackRef = Field(default_factory=SlackRef)
    created_at: str
    updated_at: str
    expires_at: str | None = None
    applied_at: str | None = None
    lease_owner: str = Field(default="", description="the executor that holds the plan while it is APPLYING")
    lease_until: str | None = Field(default=None, description="no other executor applies the plan before this")
    verify_after: str | None = None
    rollback_on_failure: bool = False
    rollback_requested_at: str | None = Field(
        default=None, description="when the verifier handed a FAILED plan's rollback to the executor"
    )
    verification: Verification | None = None

    @property
    def changes(self) -> list[PlannedAction]:
        """The actions that change AWS (advice excluded)."""
        return [action for action in self.actions if action.kind != "advise"]


def plan_id(alarm_arn: str, state_timestamp: str) -> str:
    """Deterministic: the same alarm transition delivered twice has the same plan id."""
    digest = hashlib.sha256(f"{alarm_arn}|{state_timestamp}".encode()).hexdigest()
    return f"p-{digest[:16]}"


def approval_hash(plan: Plan) -> str:
    """Binds an approval to exactly what was shown: target, actions, before and after."""
    body = {
        "target": plan.target,
        "actions": [{"kind": a.kind, "target": a.target, "before": a.before, "after": a.after} for a in plan.actions],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


#: The fields of an action that say what the executor changes (not what happened when it did: `applied`, ids).
_ACTION_CONTENT = ("kind", "target", "function_name", "qualifier", "primary", "before", "after", "resource")


def plan_content_hash(plan: Plan) -> str:
    """The plan's content hash: what the executor and the verifier act on, fixed when the plan is made.

    It covers the plan's identity (id, alarm transition), where it acts (account, region, target), why (signal,
    diagnosis, the runbook row and mode; the runbook version once the plan carries one), every action with its
    before and after, the approval hash, the dry-run flag, the approval expiry and whether a failure rolls back. It
    leaves out what legitimately changes while the plan runs (state, who decided, the Slack card, the lease, the
    verification, what was applied). The log writes this hash on the records of every plan write, so a plan item
    edited afterwards no longer matches its log (`medic log verify`).

    >>> from medic.plan import Plan
    >>> plan = Plan(id="p-1", status="PROPOSED", alarm_arn="a", alarm_name="n", state_timestamp="t", account="1",
    ...             region="us-east-1", signal="spillover", target="f:live", created_at="c", updated_at="c")
    >>> plan_content_hash(plan) == plan_content_hash(plan.model_copy(update={"status": "APPROVED"}))
    True
    >>> plan_content_hash(plan) == plan_content_hash(plan.model_copy(update={"region": "eu-west-1"}))
    False
    """
    body = {
        "id": plan.id, "alarm_arn": plan.alarm_arn, "state_timestamp": plan.state_timestamp,
        "account": plan.account, "region": plan.region, "target": plan.target, "function_name": plan.function_name,
        "qualifier": plan.qualifier, "db_instance": plan.db_instance, "signal": plan.signal,
        "diagnosis": plan.diagnosis, "rule": plan.rule, "mode": plan.mode,
        "runbook_version": getattr(plan, "runbook_version", None),
        "actions": [{key: getattr(action, key) for key in _ACTION_CONTENT} for action in plan.actions],
        "approval_hash": plan.approval_hash, "dry_run": plan.dry_run, "expires_at": plan.expires_at,
        "rollback_on_failure": plan.rollback_on_failure,
    }  # fmt: skip
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def contract_json(plan: Plan) -> dict[str, Any]:
    """The plan as `medic simulate --json` prints it (DESIGN.md §6, a public contract)."""
    return {
        "id": plan.id,
        "signal": plan.signal,
        "diagnosis": plan.diagnosis,
        "rule": plan.rule,
        "mode": plan.mode,
        "status": plan.status,
        "actions": [
            {
                "kind": action.kind,
                "target": action.target,
                "before": action.before.get(action.primary),
                "after": action.after.get(action.primary),
                "changes": {key: [action.before.get(key), action.after.get(key)] for key in action.after},
            }
            for action in plan.actions
        ],
        "blocked_by": [refusal.model_dump() for refusal in plan.blocked_by],
        "reason": plan.reason or None,  # why (no diagnosis, a NOOP, a refusal): an extension of the contract
    }
