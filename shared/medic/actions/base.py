"""The contract every action implements, and the data a planned action carries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from medic.alarms.signals import Target
    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import Facts

Scalar = int | float | str | bool | None


class PlannedAction(BaseModel):
    """One change: what, where, from what to what, and any clamp a guardrail applied."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    target: str
    function_name: str | None = None
    qualifier: str | None = None
    primary: str = Field(description="the field that `before`/`after` report in the contract JSON")
    before: dict[str, Scalar] = Field(default_factory=dict)
    after: dict[str, Scalar] = Field(default_factory=dict)
    text: str = ""
    clamps: list[str] = Field(default_factory=list)
    applied: bool = False
    observed_after: dict[str, Scalar] = Field(default_factory=dict)
    request_ids: list[str] = Field(default_factory=list)
    resource: dict[str, Scalar] = Field(
        default_factory=dict, description="identifiers the action needs beyond the function (ESM uuid, queue, quota)"
    )
    cost_monthly_usd: float | None = Field(default=None, description="estimated change of the monthly bill")
    cost_basis: str = ""

    @property
    def changes(self) -> bool:
        return self.before != self.after


class Action(ABC):
    """A registered remediation. Subclasses declare their IAM permissions up front.

    `plan` computes before → after from facts (no calls); `read_live` reads the current value of
    the same fields (for the drift check); `apply` makes the change idempotently; `wait` blocks
    until the change has taken effect; `rollback` restores the recorded before-state.
    """

    kind: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[tuple[str, ...]] = ()
    changes_aws: ClassVar[bool] = True
    #: The most autonomous mode a runbook row may give this action ("approve": never applied unasked).
    max_mode: ClassVar[str] = "auto"

    @abstractmethod
    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        """The changes for `target` (several for a database target: one per consumer); no AWS calls.

        Raise `GuardrailRefused` when the action cannot apply to this target at all.
        """

    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        return dict(action.before)

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        """Make the change; return the AWS request id."""
        return ""

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        """Wait until the change is effective; return the observed state."""
        return dict(action.after)

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        """Restore `action.before`; return the AWS request id."""
        return ""
