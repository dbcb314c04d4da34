"""`medic log show` without a plan: the fixes still waiting for their template. A change Medic made to a function a
CloudFormation stack manages stays in force only until the stack's next deploy; it waits for its template while its
plan is APPLIED or VERIFIED, no deploy put the old value back (`reverted_by_deploy`, the verifier's record) and no one
said the template holds the new value (`template_updated`, `medic log template-updated PLAN --by WHO`). The embedded
world has no stack templates to read, so the template itself is not compared: the records are the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medic.plan import IN_FORCE
from medic.stacks import settled_by

if TYPE_CHECKING:
    from medic.ledger.store import Ledger
    from medic.plan import Plan


@dataclass(frozen=True)
class Waiting:
    """A plan whose changes are in force outside their stack's template."""

    plan: Plan

    def as_json(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan.id,
            "status": self.plan.status,
            "target": self.plan.target,
            "applied_at": self.plan.applied_at,
            "warnings": [warning.model_dump(mode="json") for warning in self.plan.template_warnings],
        }

    def lines(self) -> list[str]:
        plan = self.plan
        head = f"{plan.id}  {plan.status:<8}  {plan.target}  applied {plan.applied_at or '?'}"
        return [head, *(f"  {warning.text()}" for warning in plan.template_warnings)]


def waiting_for_template(ledger: Ledger) -> list[Waiting]:
    """The APPLIED and VERIFIED plans with a template warning whose chain holds neither record that settles it,
    newest applied first. One query per state, then one read of each such plan's records."""
    plans = [plan for state in IN_FORCE for plan in ledger.by_state(state) if plan.template_warnings]
    waiting = [Waiting(plan) for plan in plans if settled_by({e.kind for e in ledger.events(plan.id)}) is None]
    return sorted(waiting, key=lambda item: item.plan.applied_at or item.plan.updated_at, reverse=True)


def waiting_text(waiting: list[Waiting]) -> str:
    if not waiting:
        return "No fix is waiting for its template: every change on a CloudFormation-managed function is settled."
    count = f"{len(waiting)} fix{'es' if len(waiting) != 1 else ''}"
    out = [
        f"{count} waiting for the template (the stack's next deploy undoes each; "
        "`medic log template-updated PLAN --by WHO` once the template holds it):"
    ]
    for item in waiting:
        out += item.lines()
    return "\n".join(out)
