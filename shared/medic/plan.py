"""The plan: what Medic intends to do about one alarm transition, and its state machine."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from medic.actions.base import PlannedAction
from medic.planning.verdict import Decision
from medic.stacks import TemplateWarning
from medic.vocabulary import PLAN_STATES, PlanState

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
#: The states of plans whose changes are in force in AWS (the PC budget counts them; a template warning waits on them).
IN_FORCE: Final = ("APPLIED", "VERIFIED")


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
    runbook: str = Field(default="", description="the runbook the plan was decided with (bound by the approval)")
    runbook_version: int | None = None
    mode: str | None = None
    dry_run: bool = False
    rationale: str = ""
    reason: str = ""
    actions: list[PlannedAction] = Field(default_factory=list)
    blocked_by: list[Refusal] = Field(default_factory=list)
    template_warnings: list[TemplateWarning] = Field(
        default_factory=list, description="changes the function's CloudFormation stack will undo at its next deploy"
    )
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
    abandoned_at: str | None = Field(
        default=None, description="when the verifier failed an apply no executor finished (its changes are undone)"
    )

    @property
    def changes(self) -> list[PlannedAction]:
        """The actions that change AWS (advice excluded)."""
        return [action for action in self.actions if action.kind != "advise"]


def plan_id(alarm_arn: str, state_timestamp: str) -> str:
    """Deterministic: the same alarm transition delivered twice has the same plan id."""
    digest = hashlib.sha256(f"{alarm_arn}|{state_timestamp}".encode()).hexdigest()
    return f"p-{digest[:16]}"


#: Keys of `PlannedAction.resource` an action records *while it applies* (what its rollback restores: a request id,
#: the version it published, the EventBridge targets and SNS subscriptions it moved), by kind; a key ending in ":" is
#: a prefix. They do not exist when the plan is approved, so the approval hash leaves them out; the executor binds
#: them to its own `aws_call` records instead (`medic.ledger.binding.apply_records_refusal`). Every other key is
#: approved.
RECORDED_AT_APPLY: dict[str, tuple[str, ...]] = {
    "set_memory": ("latest_memory_mb_before", "published_version", "request_id"),
    "request_quota_increase": ("request_id",),
    "enable_sqs_buffer": ("original_target:", "original_subscription:"),
}


def recorded_at_apply(kind: str, key: str) -> bool:
    """Whether `key` of an action's `resource` is one the action writes while applying (not approved)."""
    return any(key == name or (name.endswith(":") and key.startswith(name)) for name in RECORDED_AT_APPLY.get(kind, ()))


def canonical_json(value: Any) -> str:
    """The one serialization Medic hashes: sorted keys, no whitespace (non-ASCII escaped).

    >>> canonical_json({"b": [1, 2.5], "a": None})
    '{"a":null,"b":[1,2.5]}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def executable_content(plan: Plan) -> dict[str, Any]:
    """Everything the executor (and its rollback) acts on or decides with: the plan's identity, account, region and
    partition (the member-account role it assumes), its target, the runbook and rule that made it, its mode, dry run
    and rollback rule, and each action's kind, target, function, qualifier, primary field, whole before and after, and
    the identifiers of its sub-resources (`resource`, less what the action records while applying). What only explains
    (rationale, facts, costs, texts, clamps) or records progress (status, approvers, leases, applied flags, observed
    values, request ids) is not in it: those change as the plan moves on, the content never does.

    The approval hash is the SHA-256 of `canonical_json(executable_content(plan))`; a log digest of a plan's content
    should hash the same serialization."""
    return {
        "plan_id": plan.id,
        "alarm_arn": plan.alarm_arn,  # its partition, and its account for a member-account plan
        "alarm_name": plan.alarm_name,  # what the verifier reads to decide VERIFIED or FAILED (and the rollback)
        "metric": plan.metric,
        "account": plan.account,
        "region": plan.region,
        "target": plan.target,
        "function_name": plan.function_name,
        "qualifier": plan.qualifier,
        "db_instance": plan.db_instance,
        "runbook": plan.runbook,
        "runbook_version": plan.runbook_version,
        "rule": plan.rule,
        "mode": plan.mode,
        "dry_run": plan.dry_run,
        "rollback_on_failure": plan.rollback_on_failure,
        "actions": [
            {
                "kind": action.kind,
                "target": action.target,
                "function_name": action.function_name,
                "qualifier": action.qualifier,
                "primary": action.primary,
                "before": action.before,
                "after": action.after,
                "resource": {k: v for k, v in action.resource.items() if not recorded_at_apply(action.kind, k)},
            }
            for action in plan.actions
        ],
    }


def approval_hash(plan: Plan) -> str:
    """Binds an approval to exactly what the executor will do (`executable_content`), nothing less."""
    return hashlib.sha256(canonical_json(executable_content(plan)).encode()).hexdigest()


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
    body = {  # what the executor acts on (the approval's own serialization), and what the plan said and when
        "executable": executable_content(plan),
        "state_timestamp": plan.state_timestamp,
        "signal": plan.signal,
        "diagnosis": plan.diagnosis,
        "approval_hash": plan.approval_hash,
        "expires_at": plan.expires_at,
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def contract_json(plan: Plan) -> dict[str, Any]:
    """The plan as `medic simulate --json` prints it (docs/SCENARIOS.md, a public contract)."""
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
