"""Guardrails: checked when a plan is made and again at apply time.

A guard either clamps a value (recorded on the action, shown to approvers) or refuses (the plan
becomes BLOCKED with the guard, its limit and the observed value):

- opt-in by tag, per function acted on: the alarm's target (``Facts.managed``), and every other function a plan
  touches (a database's consumers: ``ConsumerFacts.managed``);
- the account's concurrency, with AWS's own arithmetic (`medic.pool`, the same functions the embedded world
  validates with), applied to the plan's changes *in order*, as the executor makes them: each change is judged
  against the account as the plan's earlier changes leave it;
- provisioned concurrency (a floor, autoscaling bounds, a scheduled pre-warm): the PC cap; PC ≤ reserved
  concurrency (with the PC on the function's other qualifiers, when known); on a function without a reservation,
  PC comes out of the unreserved pool, which keeps its minimum (``min(100, account limit)``): the pool is
  ``UnreservedConcurrentExecutions`` minus the PC already on the function, so that PC counts once. Autoscaling
  bounds never end with a minimum above the maximum;
- reserved concurrency: an increase takes from the unreserved pool, and never squeezes what the functions without a
  reservation use: the pool keeps ``max(minimum, their peak)`` (``unreserved_concurrency_peak``; the account's own
  peak when that is unknown, an upper bound; nothing is taken when both are unknown) (clamped); never below the
  function's provisioned concurrency (the PC the same plan sets included), never 0;
- an account whose whole limit is the unreserved minimum (a limit of 100 or less, as a new account's 10) has
  nothing to give: a reservation or PC increase drawn from it is refused (``unreserved_floor``), never clamped to a
  value AWS refuses;
- an increase that takes executions from the account's unreserved pool while the pool's size is unknown (account
  settings not read) is refused (``unreserved_unknown``): Medic never guesses what stays unreserved;
- SQS buffer: MaximumConcurrency above the function's reserved concurrency only turns into throttles (clamped);
- per-action caps from `Settings`: reserved concurrency ≤ ``max_reserved_concurrency``, memory ≤
  ``max_memory_mb``, a quota request ≤ ``max_quota_request`` (clamped). A cap limits an increase and never turns
  it into a cut: when the current value is already above the cap, the value stays as it is. The quota cap is a
  hard limit: once the account's limit has reached it, a further request is refused (``quota_hard_limit``), never
  crept towards step by step;
- nothing left to change after the clamps refuses the action (``no_effective_change``): a clamp never sends AWS a
  value it would refuse, it leaves the value as it is and the action is refused.

The monthly cost budget is checked separately, by :func:`check_budget`, once the plan's costs are annotated
(`medic.cost.annotate_costs` prices the *clamped* values, so it runs after `check_plan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from medic import pool
from medic.actions.base import PlannedAction
from medic.config import Settings
from medic.facts import ConsumerFacts, Facts
from medic.plan import Refusal

#: AWS keeps at least this many concurrent executions unreserved in every account (all of a smaller limit).
MIN_UNRESERVED = pool.MINIMUM_UNRESERVED

_PC_FIELDS = {
    "set_provisioned_concurrency": ("provisioned_concurrency",),
    "set_autoscaling_bounds": ("min_capacity", "max_capacity"),
    "schedule_prewarm": ("prewarm_concurrency",),
}
#: The per-action caps: kind → (field, the `Settings` attribute holding its cap).
_CAPS: dict[str, tuple[str, str]] = {
    "set_reserved_concurrency": ("reserved_concurrency", "max_reserved_concurrency"),
    "set_memory": ("memory_mb", "max_memory_mb"),
    "request_quota_increase": ("account_concurrency_limit", "max_quota_request"),
}
#: Actions refused when, after the clamps, they would change nothing (their `after` equals what is there).
_CHANGE_CHECKED = frozenset({
    *_PC_FIELDS, "set_reserved_concurrency", "set_event_source_max_concurrency", "set_memory", "enable_sqs_buffer",
})  # fmt: skip


def check_plan(actions: list[PlannedAction], facts: Facts, settings: Settings) -> list[Refusal]:
    """Clamp `actions` in place and return the refusals (empty: the plan may proceed)."""
    refusals: list[Refusal] = []
    changing = [action for action in actions if action.kind != "advise"]
    if not changing:
        return refusals
    refusals += _opt_in(changing, facts, settings)
    account = _Account.of(facts)
    for action in changing:
        if action.kind in _PC_FIELDS:
            refusals += _clamp_pc(action, facts, settings, account)
        if action.kind in _CAPS:
            refusals += _cap(action, settings)
        if action.kind == "set_reserved_concurrency":
            refusals += _clamp_reserved(action, facts, account)
        elif action.kind == "enable_sqs_buffer":
            _clamp_buffer(action, facts)
        refusals += _check_pool_known(action, facts)
        if action.kind in _CHANGE_CHECKED and not _changes(action):
            refusals.append(
                Refusal(guard="no_effective_change", limit=action.before.get(action.primary),
                        observed=action.after.get(action.primary),
                        message=f"after the guardrails' clamps nothing would change on {action.target}")
            )  # fmt: skip
        elif action.kind == "schedule_prewarm":
            refusals += _check_prewarm(action, facts)
    return refusals


def check_budget(actions: list[PlannedAction], settings: Settings) -> list[Refusal]:
    """Refusals of the monthly cost budget (empty when no budget is set or the plan fits in it).

    Run it after `medic.cost.annotate_costs`: a plan whose added monthly cost (the sum of its positive
    ``cost_monthly_usd``; savings are not counted against increases) exceeds ``monthly_cost_budget_usd`` is refused
    (``cost_budget``), and so is every change whose cost is unknown (``cost_unknown``): under a budget, Medic never
    guesses.

    >>> from medic.actions.base import PlannedAction
    >>> pc = PlannedAction(kind="set_provisioned_concurrency", target="checkout:live",
    ...                    primary="provisioned_concurrency", cost_monthly_usd=109.5)
    >>> [r.guard for r in check_budget([pc], Settings(plans_table="p", events_table="e", monthly_cost_budget_usd=100))]
    ['cost_budget']
    """
    budget = settings.monthly_cost_budget_usd
    if budget is None:
        return []
    changing = [action for action in actions if action.kind != "advise"]
    refusals = [
        Refusal(guard="cost_unknown", limit=budget, observed=None,
                message=f"the monthly cost of {action.kind} on {action.target} is unknown "
                        f"({action.cost_basis or 'not estimated'}), so it cannot be held to the budget of "
                        f"${budget:,.2f}/month")
        for action in changing
        if action.cost_monthly_usd is None
    ]  # fmt: skip
    added = sum(max(0.0, action.cost_monthly_usd or 0.0) for action in changing)
    if added > budget:
        refusals.append(
            Refusal(guard="cost_budget", limit=budget, observed=round(added, 2),
                    message=f"the plan adds ${added:,.2f}/month, above the monthly cost budget of ${budget:,.2f}")
        )  # fmt: skip
    return refusals


def _on_target(action: PlannedAction, facts: Facts) -> bool:
    return action.function_name is None or action.function_name == facts.function_name


def _opt_in(changing: list[PlannedAction], facts: Facts, settings: Settings) -> list[Refusal]:
    """The alarm's target must be opted in; so must every other function the plan changes (a database's consumers)."""
    refusals: list[Refusal] = []
    key, value = settings.opt_in_tag
    if any(_on_target(action, facts) for action in changing) and facts.managed is not True:
        observed = (facts.tags or {}).get(key) if facts.tags is not None else "unknown (tags not read)"
        refusals.append(
            Refusal(guard="opt_in_tag", limit=f"{key}={value}", observed=observed,
                    message=f"{facts.function_name or 'the target'} is not opted in to changes by tag")
        )  # fmt: skip
    others = dict.fromkeys(a.function_name for a in changing if a.function_name and not _on_target(a, facts))
    for name in others:
        consumer = _consumer(facts, name)
        if consumer is not None and consumer.managed:
            continue
        observed = "not opted in" if consumer is not None else "not a known consumer of the target"
        refusals.append(
            Refusal(guard="opt_in_tag", limit=f"{key}={value}", observed=observed,
                    message=f"{name} is not opted in to changes by tag")
        )  # fmt: skip
    return refusals


def _consumer(facts: Facts, function_name: str | None) -> ConsumerFacts | None:
    return next((c for c in facts.consumers or [] if c.function_name == function_name), None)


def _changes(action: PlannedAction) -> bool:
    """Whether applying `after` changes anything (fields only in `before`, like a version, are context)."""
    return any(action.before.get(name) != value for name, value in action.after.items())


@dataclass
class _Account:
    """The account's concurrency as the plan's changes so far leave it: what the next change is judged against.

    ``pool`` is None when the account settings could not be read. Only the target's own PC is known: the PC of
    other functions without a reservation is not among the facts (an AWS refusal at apply time then fails the plan,
    it never goes through).
    """

    start: pool.UnreservedPool | None
    now: pool.UnreservedPool | None
    limit: int | None
    target: str | None
    reserved: dict[str, int | None]
    pc_here: int
    pc_elsewhere: int
    taken: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, facts: Facts) -> _Account:
        reserved: dict[str, int | None] = {c.function_name: c.reserved_concurrency for c in facts.consumers or []}
        if facts.function_name:
            reserved[facts.function_name] = facts.reserved_concurrency
        pc_here, pc_elsewhere = int(facts.pc_requested or 0), int(facts.pc_on_other_qualifiers or 0)
        unreserved = None
        if facts.unreserved_concurrency is not None:
            minimum = facts.minimum_unreserved
            own = pc_here + pc_elsewhere if facts.function_name and facts.reserved_concurrency is None else 0
            unreserved = pool.UnreservedPool(
                unreserved=facts.unreserved_concurrency,
                provisioned=own,
                minimum=pool.minimum_unreserved(facts.account_limit) if minimum is None else minimum,
            )
        return cls(unreserved, unreserved, facts.account_limit, facts.function_name, reserved, pc_here, pc_elsewhere)

    def reservation(self, function_name: str | None, default: int | None) -> int | None:
        return default if function_name is None else self.reserved.get(function_name, default)

    def function_pc(self, function_name: str | None) -> int:
        """The function's PC on all its qualifiers as the plan leaves it (known for the target only)."""
        return self.pc_here + self.pc_elsewhere if function_name == self.target else 0

    def reserve(self, function_name: str | None, before: int | None, after: int | None) -> None:
        if self.now is not None:
            self._move("reservations", self.now.with_reservation(before, after, self.function_pc(function_name)))
        if function_name:
            self.reserved[function_name] = after

    def provision(self, pc: int) -> None:
        """The target's qualifier now holds `pc` (from its reservation, or else from the unreserved pool)."""
        if self.now is not None and self.reservation(self.target, None) is None:
            self._move("provisioned concurrency", self.now.with_provisioned(self.pc_here, pc))
        self.pc_here = pc

    def _move(self, cause: str, after: pool.UnreservedPool) -> None:
        assert self.now is not None
        self.taken[cause] = self.taken.get(cause, 0) + self.now.left - after.left
        self.now = after

    def described(self) -> str:
        """The pool as the clamp texts show it: what GetAccountSettings said, and what is already taken from it."""
        assert self.start is not None
        parts = [f"unreserved now {self.start.unreserved}"]
        if self.start.provisioned:
            parts.append(f"{self.start.provisioned} of it provisioned on {self.target}")
        if self.taken.get("reservations", 0) > 0:
            parts.append(f"{self.taken['reservations']} taken by this plan's other reservations")
        if self.taken.get("provisioned concurrency", 0) > 0:
            parts.append(f"{self.taken['provisioned concurrency']} by its provisioned concurrency")
        return "(" + ", ".join(parts) + ")"


def _usage(facts: Facts) -> tuple[int | None, str]:
    """What the functions without a reservation use (to be left to them), and where that number comes from."""
    if facts.unreserved_concurrency_peak is not None:
        peak = facts.unreserved_concurrency_peak
        return math.ceil(peak), f"what the functions without a reservation used at peak ({peak:g})"
    if facts.account_concurrency_peak is not None:
        peak = facts.account_concurrency_peak
        return math.ceil(peak), (
            f"the account's peak concurrency ({peak:g}), an upper bound of what the functions without a reservation "
            f"use (unreserved_concurrency_peak unknown)"
        )
    return None, "what the functions without a reservation use is unknown (unreserved_concurrency_peak not read)"


def _floor_refusal(action: PlannedAction, account: _Account) -> Refusal:
    minimum = account.now.minimum if account.now is not None else MIN_UNRESERVED
    return Refusal(
        guard="unreserved_floor", limit=minimum, observed=account.limit,
        message=f"the account's concurrency limit is {account.limit}, all of it the unreserved minimum AWS keeps "
                f"({minimum}): {action.kind} on {action.target} cannot take reserved or provisioned concurrency from "
                f"it; raise the account's concurrency quota first (request_quota_increase)",
    )  # fmt: skip


def _clamp_reserved(action: PlannedAction, facts: Facts, account: _Account) -> list[Refusal]:
    """Clamp an increase so the pool keeps what the functions without a reservation use; check the result."""
    refusals: list[Refusal] = []
    name = action.function_name or facts.function_name
    before = action.before.get("reserved_concurrency")
    held = account.reservation(name, None if before is None else int(before))
    wanted = action.after.get("reserved_concurrency")
    if wanted is not None and int(wanted) > (held or 0) and account.now is not None:
        wanted = int(wanted)
        if pool.pool_is_all_floor(account.limit):
            refusals.append(_floor_refusal(action, account))
        else:
            keep, why = _usage(facts)
            minimum = account.now.minimum
            if keep is None:
                value = held or 0
                reason = f"{why}: Medic takes nothing from their pool"
            else:
                value = pool.largest_reservation(account.now, held, wanted, account.function_pc(name), keep)
                reason = f"leaves ≥ {minimum} unreserved executions in the account"
                if keep > minimum:
                    reason = f"leaves ≥ {keep} unreserved executions for the functions without a reservation, {why}"
            if value != wanted:
                shown = value if value > 0 else "unchanged"
                action.clamps.append(f"reserved_concurrency {wanted} → {shown}: {reason} {account.described()}")
                # Reserving nothing at all is not a cap of 0: the function stays as it is.
                action.after["reserved_concurrency"] = value if value > 0 else before
    refusals += _check_reserved(action, account)
    after = action.after.get("reserved_concurrency")
    account.reserve(name, held, None if after is None else int(after))
    return refusals


def _check_reserved(action: PlannedAction, account: _Account) -> list[Refusal]:
    after = action.after.get("reserved_concurrency")
    if after is None or after == action.before.get("reserved_concurrency"):
        return []
    if after == 0:
        return [Refusal(guard="reserved_zero", limit=1, observed=0,
                        message=f"reserved concurrency 0 would stop {action.target} entirely")]  # fmt: skip
    pc = account.function_pc(action.function_name)
    if int(after) < pc:
        return [Refusal(guard="reserved_below_pc", limit=pc, observed=after,
                        message=f"reserved concurrency {after} on {action.target} would be below its "
                                f"provisioned concurrency ({pc})")]  # fmt: skip
    return []


def _clamp_pc(action: PlannedAction, facts: Facts, settings: Settings, account: _Account) -> list[Refusal]:
    """Clamp each PC field of `action` (the cap, the reservation, the unreserved pool); record the PC it leaves."""
    refusals: list[Refusal] = []
    reserved = account.reservation(account.target, None)
    for name in _PC_FIELDS[action.kind]:
        wanted = int(action.after.get(name) or 0)
        # The maximum of autoscaling bounds moves the PC down to it: never below what the qualifier holds.
        held = account.pc_here if name == "max_capacity" else 0
        value = _cap_pc(action, name, wanted, settings, max(held, int(action.before.get(name) or 0)))
        if reserved is not None:
            room = pool.largest_within_reservation(reserved, account.pc_elsewhere, account.pc_here, value)
            if room != value:
                elsewhere = (
                    f", {account.pc_elsewhere} of it provisioned on other qualifiers" if account.pc_elsewhere else ""
                )
                action.clamps.append(
                    f"{name} {value} → {room}: PC never above reserved concurrency ({reserved}{elsewhere})"
                )
                value = room
        elif account.now is not None and value > account.pc_here:
            if pool.pool_is_all_floor(account.limit):
                refusals[:] = [_floor_refusal(action, account)]
            else:
                largest = pool.largest_provisioned(account.now, account.pc_here, value)
                if largest != value:
                    action.clamps.append(
                        f"{name} {value} → {largest}: leaves ≥ {account.now.minimum} unreserved executions in the "
                        f"account {account.described()}"
                    )
                    value = largest
        if value != wanted:
            action.after[name] = value
    _keep_bounds_in_order(action)
    account.provision(_pc_left(action, account.pc_here))
    return refusals


def _cap_pc(action: PlannedAction, name: str, wanted: int, settings: Settings, current: int) -> int:
    cap = settings.max_provisioned_concurrency
    if wanted <= cap:
        return wanted
    # A cap limits an increase; it never turns a remediation into a cut (nothing changes instead).
    value = max(cap, min(current, wanted))
    action.clamps.append(f"{name} {wanted} → {value}: cap max_provisioned_concurrency={cap}")
    return value


def _keep_bounds_in_order(action: PlannedAction) -> None:
    """Application Auto Scaling refuses a MinCapacity above the MaxCapacity: the maximum rises to the minimum (a
    value every clamp already accepted)."""
    if action.kind != "set_autoscaling_bounds":
        return
    low, high = int(action.after.get("min_capacity") or 0), int(action.after.get("max_capacity") or 0)
    if high < low:
        action.clamps.append(f"max_capacity {high} → {low}: never below min_capacity")
        action.after["max_capacity"] = low


def _pc_left(action: PlannedAction, current: int) -> int:
    """The qualifier's PC once `action` is applied (a pre-warm counts from when its "up" action raises it)."""
    after = {name: int(action.after.get(name) or 0) for name in _PC_FIELDS[action.kind]}
    if action.kind == "set_provisioned_concurrency":
        return after["provisioned_concurrency"]
    if action.kind == "set_autoscaling_bounds":  # Application Auto Scaling moves the PC into the new bounds
        return min(max(current, after["min_capacity"]), after["max_capacity"])
    return max(current, after["prewarm_concurrency"])


def _check_pool_known(action: PlannedAction, facts: Facts) -> list[Refusal]:
    """Refuse an increase drawn from the account's unreserved pool when the pool's size is unknown."""
    if facts.unreserved_concurrency is not None:
        return []
    if action.kind == "set_reserved_concurrency":
        taken = int(action.after.get("reserved_concurrency") or 0) - int(action.before.get("reserved_concurrency") or 0)
    elif action.kind in _PC_FIELDS and not facts.has_reserved_concurrency:
        taken = max(int(action.after.get(name) or 0) for name in _PC_FIELDS[action.kind]) - int(facts.pc_requested or 0)
    else:
        return []
    if taken <= 0:
        return []
    return [
        Refusal(guard="unreserved_unknown", limit=MIN_UNRESERVED, observed="unknown (account settings not read)",
                message=f"{action.target} would take {taken} executions from the account's unreserved pool, whose "
                        f"size is unknown: Medic never guesses what stays unreserved")
    ]  # fmt: skip


def _clamp_buffer(action: PlannedAction, facts: Facts) -> None:
    wanted = action.after.get("maximum_concurrency")
    reserved = facts.reserved_concurrency if _on_target(action, facts) else None
    if wanted is None or reserved is None or int(wanted) <= reserved:
        return
    value = max(reserved, 2)
    if value < int(wanted):
        action.clamps.append(
            f"maximum_concurrency {wanted} → {value}: above the function's reserved concurrency ({reserved}) the "
            f"queue's pollers would only be throttled"
        )
        action.after["maximum_concurrency"] = value


def _check_prewarm(action: PlannedAction, facts: Facts) -> list[Refusal]:
    """A pre-warm at or below today's floor changes nothing at the burst."""
    floor = max(int(facts.autoscaling_min or 0), int(facts.pc_requested or 0))
    wanted = int(action.after.get("prewarm_concurrency") or 0)
    if wanted > floor:
        return []
    return [Refusal(guard="no_effective_change", limit=floor, observed=wanted,
                    message=f"after the guardrails' clamps the pre-warm of {action.target} is not above its "
                            f"provisioned concurrency floor ({floor})")]  # fmt: skip


def _cap(action: PlannedAction, settings: Settings) -> list[Refusal]:
    """Clamp the action's field to its cap (an increase only); refuse a quota request once the hard limit is hit."""
    name, setting = _CAPS[action.kind]
    cap = int(getattr(settings, setting))
    wanted = action.after.get(name)
    if wanted is None:
        return []
    before = action.before.get(name)
    current = int(before or 0)
    if action.kind == "request_quota_increase" and current >= cap:
        return [Refusal(guard="quota_hard_limit", limit=cap, observed=before,
                        message=f"the account's concurrency limit {before} has reached the hard limit of quota "
                                f"requests ({setting}={cap}): Medic asks for no more")]  # fmt: skip
    if int(wanted) <= cap:
        return []
    # A cap limits an increase; it never turns a remediation into a cut (nothing changes instead).
    value = max(cap, min(current, int(wanted)))
    above = " (already above it: left as it is)" if value > cap else ""
    action.clamps.append(f"{name} {wanted} → {value}: cap {setting}={cap}{above}")
    action.after[name] = before if value == current else value
    return []
