"""Guardrails: checked when a plan is made and again at apply time.

A guard either clamps a value (recorded on the action, shown to approvers) or refuses (the plan
becomes BLOCKED with the guard, its limit and the observed value). Skeleton width: target and
opt-in, the PC cap, PC ≤ reserved concurrency, ≥ 100 unreserved executions left in the account.
"""

from __future__ import annotations

from medic.actions.base import PlannedAction
from medic.config import Settings
from medic.facts import Facts
from medic.plan import Refusal

#: AWS keeps at least this many concurrent executions unreserved in every account.
MIN_UNRESERVED = 100

_PC_FIELDS = {
    "set_provisioned_concurrency": ("provisioned_concurrency",),
    "set_autoscaling_bounds": ("min_capacity", "max_capacity"),
}


def check_plan(actions: list[PlannedAction], facts: Facts, settings: Settings) -> list[Refusal]:
    """Clamp `actions` in place and return the refusals (empty: the plan may proceed)."""
    refusals: list[Refusal] = []
    changing = [action for action in actions if action.kind != "advise"]
    if not changing:
        return refusals
    key, value = settings.opt_in_tag
    if facts.managed is not True:
        observed = (facts.tags or {}).get(key) if facts.tags is not None else "unknown (tags not read)"
        refusals.append(
            Refusal(guard="opt_in_tag", limit=f"{key}={value}", observed=observed,
                    message=f"{facts.function_name or 'the target'} is not opted in to changes by tag")
        )  # fmt: skip
    for action in changing:
        fields = _PC_FIELDS.get(action.kind, ())
        for name in fields:
            _clamp_pc(action, name, facts, settings)
        if fields and not action.changes:
            refusals.append(
                Refusal(guard="no_effective_change", limit=action.before.get(action.primary),
                        observed=action.after.get(action.primary),
                        message=f"after the guardrails' clamps nothing would change on {action.target}")
            )  # fmt: skip
    return refusals


def _clamp_pc(action: PlannedAction, name: str, facts: Facts, settings: Settings) -> None:
    wanted = int(action.after.get(name) or 0)
    current = int(action.before.get(name) or 0)
    value = wanted
    if value > settings.max_provisioned_concurrency:
        # A cap limits an increase; it never turns a remediation into a cut (nothing changes instead).
        value = max(settings.max_provisioned_concurrency, min(current, wanted))
        action.clamps.append(
            f"{name} {wanted} → {value}: cap max_provisioned_concurrency={settings.max_provisioned_concurrency}"
        )
    if facts.reserved_concurrency is not None and value > facts.reserved_concurrency:
        action.clamps.append(
            f"{name} {value} → {facts.reserved_concurrency}: PC never above reserved concurrency "
            f"({facts.reserved_concurrency})"
        )
        value = facts.reserved_concurrency
    if not facts.has_reserved_concurrency and facts.unreserved_concurrency is not None:
        current = int(facts.pc_requested or 0)
        headroom = facts.unreserved_concurrency - MIN_UNRESERVED
        if value - current > headroom:
            limit = max(current + headroom, current)
            action.clamps.append(
                f"{name} {value} → {limit}: leaves ≥ {MIN_UNRESERVED} unreserved executions in the account "
                f"(unreserved now {facts.unreserved_concurrency})"
            )
            value = limit
    if value != wanted:
        action.after[name] = value
        if name == "min_capacity" and int(action.after.get("max_capacity") or 0) < value:
            action.after["max_capacity"] = value
