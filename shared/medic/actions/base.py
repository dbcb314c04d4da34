"""The contract every action implements, and the data a planned action carries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from medic.alarms.signals import Target
    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import Facts
    from medic.planning.cost import Estimate, Rates

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


class TemplateProperty(BaseModel):
    """Where a planned change lives in a CloudFormation template: the resource type, the property path on it, and the
    value the template must hold for a deploy to keep the change (`field` is the `after`/`before` key it comes from).

    `resource` says which resource of that type, given the function's logical id (`{function}` in it is replaced):
    the function itself, or e.g. its alias. `sam` is the same property in AWS SAM's shorthand, when it has one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource_type: str
    resource: str = "{function}"
    property: str
    field: str
    value: Scalar = None
    sam: str = ""


Risk = Literal["low", "cut", "high"]


class Action(ABC):
    """A registered remediation. Each subclass declares, in one place, what every stage needs to know about it:

    - `permissions`: the IAM actions it calls (the template's actions role grants them; tests/unit/test_template.py);
    - `cap`: the guardrail cap of its own, as (the `after` field, the `Settings` attribute holding the maximum);
      `must_change`: refused when, after the guardrails' clamps, it would change nothing; `pc_fields`: the fields that
      hold provisioned concurrency (clamped against the account's pool; the first is what the PC budget counts);
    - `risk`: how many approvers it needs by default ("high": two; "cut": two when its primary value goes down or it
      caps what had no cap; "low": one); `Settings.two_person_actions` is the deployed rule, and its default is what
      the actions declare (the Slack endpoint reads the setting, never the actions: it must stay light at a click);
    - `free` (why it costs nothing) or `estimate` (what it adds to the monthly bill, from `medic.planning.cost`'s
      prices and arithmetic);
    - `max_mode`: the most autonomous mode a runbook row may give it ("approve": never applied unasked);
    - `template_properties`: where each field it changes lives in a CloudFormation template (a change made outside a
      stack's template is undone by the stack's next deploy: Medic names the property to set); `read_permissions`:
      the IAM actions its `read_live` calls (the verifier, which changes nothing, reads a change back with them to
      notice a deploy that put the old value back).

    `plan` computes before → after from facts (no calls); `read_live` reads the current value of
    the same fields (for the drift check); `apply` makes the change idempotently; `wait` blocks
    until the change has taken effect; `rollback` restores the recorded before-state.
    """

    kind: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]] = ()
    read_permissions: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[tuple[str, ...]] = ()
    changes_aws: ClassVar[bool] = True
    max_mode: ClassVar[str] = "auto"
    cap: ClassVar[tuple[str, str] | None] = None
    must_change: ClassVar[bool] = False
    pc_fields: ClassVar[tuple[str, ...]] = ()
    risk: ClassVar[Risk] = "low"
    free: ClassVar[str | None] = None

    def estimate(self, action: PlannedAction, facts: Facts, rates: Rates) -> Estimate:
        """(USD per month, the basis with the numbers used) of `action`; (None, "unknown: …") when a fact it needs
        is not known. Only called for an action that is not `free`."""
        return None, f"unknown: no cost model for action kind {self.kind!r}"

    def template_properties(self, action: PlannedAction) -> list[TemplateProperty]:
        """The template properties that must hold `action.after` for a deploy of the function's stack to keep it;
        none for an action that changes nothing a template declares (advice, a quota request)."""
        return []

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
