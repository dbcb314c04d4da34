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
    "dry_run": "MEDIC_DRY_RUN",
    "opt_in_tag": "MEDIC_OPT_IN_TAG",
    "runbook_path": "MEDIC_RUNBOOK",
    "runbook_overrides": "MEDIC_RUNBOOK_OVERRIDES",
    "verify_after_s": "MEDIC_VERIFY_AFTER_S",
    "approval_ttl_s": "MEDIC_APPROVAL_TTL_S",
    "max_provisioned_concurrency": "MEDIC_MAX_PROVISIONED_CONCURRENCY",
    "pc_ready_timeout_s": "MEDIC_PC_READY_TIMEOUT_S",
    "region": "AWS_REGION",
}

DEFAULT_RUNBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "lambda-latency.yaml"


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
    dry_run: bool = True
    opt_in_tag: tuple[str, str] = ("medic:managed", "true")
    runbook_path: Path = DEFAULT_RUNBOOK
    runbook_overrides: tuple[Path, ...] = ()
    verify_after_s: int = Field(default=300, ge=0)
    approval_ttl_s: int = Field(default=1800, gt=0)
    max_provisioned_concurrency: int = Field(default=1000, gt=0)
    pc_ready_timeout_s: int = Field(default=600, gt=0)
    region: str | None = None

    @field_validator("approvers", mode="before")
    @classmethod
    def _split_approvers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
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
            raise ConfigError(field=ENV_VARS.get(name, name), source="environment", problem=first["msg"]) from None
