"""Settings: read from the environment once per execution environment; explicit arguments win."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medic.errors import ConfigError

#: Environment variable of each setting (the names the SAM template sets).
ENV_VARS: dict[str, str] = {
    "plans_table": "MEDIC_PLANS_TABLE",
    "events_table": "MEDIC_EVENTS_TABLE",
    "executor_queue_url": "MEDIC_EXECUTOR_QUEUE_URL",
    "slack_channel": "MEDIC_SLACK_CHANNEL",
    "slack_bot_token_secret_arn": "MEDIC_SLACK_BOT_TOKEN_SECRET_ARN",
    "slack_signing_secret_arn": "MEDIC_SLACK_SIGNING_SECRET_ARN",
    "slack_api_url": "MEDIC_SLACK_API_URL",
    "slack_team_id": "MEDIC_SLACK_TEAM_ID",
    "slack_app_id": "MEDIC_SLACK_APP_ID",
    "approvers": "MEDIC_APPROVERS",
    "approver_group": "MEDIC_APPROVER_GROUP",
    "approver_group_ttl_s": "MEDIC_APPROVER_GROUP_TTL_S",
    "two_person_actions": "MEDIC_TWO_PERSON_ACTIONS",
    "two_person_cost_usd": "MEDIC_TWO_PERSON_COST_USD",
    "dry_run": "MEDIC_DRY_RUN",
    "opt_in_tag": "MEDIC_OPT_IN_TAG",
    "runbook_path": "MEDIC_RUNBOOK",
    "runbook_overrides": "MEDIC_RUNBOOK_OVERRIDES",
    "verify_after_s": "MEDIC_VERIFY_AFTER_S",
    "approval_ttl_s": "MEDIC_APPROVAL_TTL_S",
    "max_provisioned_concurrency": "MEDIC_MAX_PROVISIONED_CONCURRENCY",
    "pc_ready_timeout_s": "MEDIC_PC_READY_TIMEOUT_S",
    "executor_lease_s": "MEDIC_EXECUTOR_LEASE_S",
    "max_reserved_concurrency": "MEDIC_MAX_RESERVED_CONCURRENCY",
    "max_memory_mb": "MEDIC_MAX_MEMORY_MB",
    "max_quota_request": "MEDIC_MAX_QUOTA_REQUEST",
    "monthly_cost_budget_usd": "MEDIC_MONTHLY_COST_BUDGET_USD",
    "cooldown_s": "MEDIC_COOLDOWN_S",
    "max_changes_per_hour": "MEDIC_MAX_CHANGES_PER_HOUR",
    "circuit_breaker_failures": "MEDIC_CIRCUIT_BREAKER_FAILURES",
    "freeze_windows": "MEDIC_FREEZE_WINDOWS",
    "kill_switch": "MEDIC_KILL_SWITCH",
    "actions_role_arn": "MEDIC_ACTIONS_ROLE_ARN",
    "account_id": "MEDIC_ACCOUNT_ID",
    "member_role_name": "MEDIC_MEMBER_ROLE_NAME",
    "member_read_role_name": "MEDIC_MEMBER_READ_ROLE_NAME",
    "pc_budget": "MEDIC_PC_BUDGET",
    "digest_bucket": "MEDIC_DIGEST_BUCKET",
    "promotion_after": "MEDIC_PROMOTION_AFTER",
    "promotion_window_days": "MEDIC_PROMOTION_WINDOW_DAYS",
    "region": "AWS_REGION",
}

#: The shipped runbook: runbooks/ in a checkout (where the runbook layer and the docs find it), else the copy an
#: installed package carries (setup.py puts runbooks/*.yaml into medic/runbooks/ in the wheel).
_CHECKOUT_RUNBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "lambda-latency.yaml"
_PACKAGED_RUNBOOK = Path(__file__).resolve().parent / "runbooks" / "lambda-latency.yaml"
DEFAULT_RUNBOOK = _CHECKOUT_RUNBOOK if _CHECKOUT_RUNBOOK.is_file() else _PACKAGED_RUNBOOK


class Settings(BaseModel):
    """Everything Medic is configured with. Built once at cold start and passed down.

    >>> Settings.from_env({"MEDIC_PLANS_TABLE": "p", "MEDIC_EVENTS_TABLE": "e"}, dry_run=False).dry_run
    False
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    plans_table: str = Field(min_length=1)
    events_table: str = Field(min_length=1)
    executor_queue_url: str = ""
    slack_channel: str = ""
    slack_bot_token_secret_arn: str = ""
    slack_signing_secret_arn: str = ""
    slack_api_url: str = ""
    slack_team_id: str = ""
    slack_app_id: str = ""
    approvers: frozenset[str] = frozenset()
    # ChatOps (interactions.py): who may decide, and which plans need two distinct approvers.
    approver_group: str = Field(
        default="",
        pattern=r"^(S[A-Z0-9]{2,})?$",
        description="a Slack user group (S…) whose members approve too (usergroups.users.list)",
    )
    approver_group_ttl_s: int = Field(default=300, ge=0, description="how long the group's members are cached")
    #: The default is the actions' own `risk` (medic.actions.base.Action), written out: building Settings must not
    #: import the actions (tests/unit/test_action_declarations.py keeps the two equal).
    two_person_actions: tuple[str, ...] = Field(
        default=("request_quota_increase", "set_memory", "set_reserved_concurrency:cut"),
        description="action kinds needing two approvers; KIND:cut only when the primary value goes down",
    )
    two_person_cost_usd: float | None = Field(
        default=None, ge=0, description="plans adding more than this per month need two approvers"
    )
    dry_run: bool = True
    opt_in_tag: tuple[str, str] = ("medic:managed", "true")
    runbook_path: Path = DEFAULT_RUNBOOK
    runbook_overrides: tuple[Path, ...] = ()
    verify_after_s: int = Field(default=300, ge=0)
    approval_ttl_s: int = Field(default=1800, gt=0)
    max_provisioned_concurrency: int = Field(default=1000, gt=0)
    pc_ready_timeout_s: int = Field(default=600, gt=0)
    executor_lease_s: int = Field(
        default=900,
        gt=0,
        description="how long an executor holds an APPLYING plan: at least the executor's timeout, under the "
        "queue's visibility timeout (a duplicate message waits; a redelivery after a crash takes over)",
    )
    # Caps (guardrails.py): a value above a cap is clamped to it, and the clamp is shown to approvers.
    max_reserved_concurrency: int = Field(default=1000, gt=0)
    max_memory_mb: int = Field(default=3008, ge=128, le=10240)
    max_quota_request: int = Field(default=5000, gt=0, description="hard limit of a concurrency quota request")
    monthly_cost_budget_usd: float | None = Field(default=None, ge=0, description="a plan adding more is refused")
    pc_budget: int | None = Field(default=None, ge=0, description="total PC Medic's changes may add, account-wide")
    # Stateful controls (safety.py), read from the remediation log at plan and at apply time.
    cooldown_s: int = Field(default=3600, ge=0, description="per (target, action) after a change")
    max_changes_per_hour: int = Field(default=10, ge=0, description="changing plans applied, account-wide")
    circuit_breaker_failures: int = Field(default=3, ge=1, description="failed plans that open the breaker")
    freeze_windows: str = Field(
        default="", description="e.g. 'Fri 18:00-Mon 08:00; 2026-12-24T00:00Z/2026-12-27T00:00Z'"
    )
    kill_switch: bool = Field(default=False, description="static kill switch; the flag in the log is the dynamic one")
    actions_role_arn: str = Field(default="", description="role the executor assumes per plan to make the changes")
    # Organizations (docs/organizations.md): an alarm in another account is read and changed through that account's
    # roles (templates/member-account.yaml). Empty names: cross-account is off, and another account's alarm is refused.
    # ASCII classes, as IAM defines them (a Unicode `\w`/`\d` would also admit non-ASCII and compile slower at import).
    account_id: str = Field(
        default="", pattern=r"^([0-9]{12})?$", description="Medic's own account (empty: single-account)"
    )
    member_role_name: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_+=,.@-]{0,64}$",
        description="remediation role in member accounts (the executor's)",
    )
    member_read_role_name: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_+=,.@-]{0,64}$",
        description="read-only role in member accounts (triage, verifier)",
    )
    # The remediation log's digests (medic.ledger.digests): the Object Lock bucket the digest writer writes to and
    # `medic log verify` reads. Empty: no digests (verify says so).
    digest_bucket: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$")
    # Graduated autonomy (medic.promotions): after this many plans of one row on one target were approved by humans
    # and VERIFIED (within the window), Medic proposes running that row in mode auto on that target. 0: never.
    promotion_after: int = Field(default=5, ge=0, description="verified human-approved plans before a promotion")
    promotion_window_days: int = Field(default=90, gt=0, description="how far back the evidence is read")
    region: str | None = None

    @field_validator("approvers", mode="before")
    @classmethod
    def _split_approvers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("two_person_actions", mode="before")
    @classmethod
    def _split_two_person(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if not isinstance(value, list | tuple):
            return value  # pydantic says what it expected
        from medic.vocabulary import ACTION_KINDS  # a typo must not silently drop the rule

        for entry in value:
            kind, _, qualifier = str(entry).partition(":")
            if kind not in ACTION_KINDS or qualifier not in ("", "cut"):
                raise ValueError(
                    f"{entry!r}: expected an action kind ({', '.join(ACTION_KINDS)}), or KIND:cut "
                    "(only when its value goes down, e.g. set_reserved_concurrency:cut)"
                )
        return value

    @field_validator("runbook_overrides", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Path(part.strip()) for part in value.split(",") if part.strip())
        return value

    @field_validator("opt_in_tag", mode="before")
    @classmethod
    def _split_tag(cls, value: Any) -> Any:
        if isinstance(value, str):
            key, sep, tag_value = value.partition("=")
            if not key.strip() or not sep:
                raise ValueError("expected KEY=VALUE, e.g. medic:managed=true")
            return (key.strip(), tag_value.strip())
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read `MEDIC_*` variables from `env` (default: the process environment); `overrides` win."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {name: source[var] for name, var in ENV_VARS.items() if source.get(var)}
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else "settings"
            problem = "not set" if first["type"] == "missing" and name not in overrides else first["msg"]
            raise ConfigError(field=ENV_VARS.get(name, name), source="environment", problem=problem) from None
