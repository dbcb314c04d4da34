"""The account's concurrency as a plan uses it: the guardrails' clamps of provisioned and reserved concurrency.

A plan's changes are judged in the order the executor makes them, each against the account as the earlier ones
leave it (:class:`AccountHeadroom`), with AWS's arithmetic from `medic.planning.pool` (the functions the embedded world
validates with), so a clamped value is one AWS accepts. See `medic.planning.guardrails` for the guards as a whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from medic.actions.base import PlannedAction
from medic.config import Settings
from medic.facts import Facts
from medic.plan import Refusal
from medic.planning import pool


#: The fields of each action that hold provisioned concurrency.
def pc_fields(kind: str) -> tuple[str, ...]:
    """The fields of an action kind that hold provisioned concurrency (`Action.pc_fields`; none for most kinds)."""
    from medic.actions import get_action

    return get_action(kind).pc_fields


@dataclass
class AccountHeadroom:
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
    def of(cls, facts: Facts) -> AccountHeadroom:
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


def _own_unreserved_use(facts: Facts, name: str | None) -> int:
    """What `name` (a function without a reservation) used at peak from the unreserved pool: the alarm's function or
    one of a database's consumers; 0 when unknown (nothing is then subtracted from what is kept)."""
    if name is not None and name == facts.function_name:
        peak = (
            facts.function_peak_concurrency if facts.function_peak_concurrency is not None else facts.peak_concurrency
        )
        return math.floor(peak or 0.0)
    consumer = next((c for c in facts.consumers or [] if c.function_name == name), None)
    return math.floor(consumer.peak_concurrency or 0.0) if consumer is not None else 0


def _others_usage(facts: Facts) -> tuple[int, str]:
    """What the *other* functions without a reservation use at peak (PC for this function takes from the same pool;
    its own on-demand use moves onto the PC), and where that number comes from; 0 when unknown (the minimum then)."""
    if facts.unreserved_concurrency_peak is None:
        return 0, "what the other functions use is unknown"
    own = facts.peak_concurrency if facts.peak_concurrency is not None else facts.function_peak_concurrency or 0.0
    others = max(0.0, facts.unreserved_concurrency_peak - own)
    return math.ceil(others), (
        f"what they used at peak ({facts.unreserved_concurrency_peak:g} without a reservation, {own:g} of it this "
        f"function's own)"
    )


def _floor_refusal(action: PlannedAction, account: AccountHeadroom) -> Refusal:
    minimum = account.now.minimum if account.now is not None else pool.MINIMUM_UNRESERVED
    return Refusal(
        guard="unreserved_floor",
        limit=minimum,
        observed=account.limit,
        message=f"the account's concurrency limit is {account.limit}, all of it the unreserved minimum AWS keeps "
        f"({minimum}): {action.kind} on {action.target} cannot take reserved or provisioned concurrency from "
        f"it; raise the account's concurrency quota first (request_quota_increase)",
    )


def clamp_reserved(action: PlannedAction, facts: Facts, account: AccountHeadroom) -> list[Refusal]:
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
            own = _own_unreserved_use(facts, name) if held is None else 0
            if keep is not None and own:  # its own use moves into the reservation: keep what the *others* use
                keep = max(0, keep - own)
                why += f", less {name}'s own {own} (it moves into the reservation)"
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


def _check_reserved(action: PlannedAction, account: AccountHeadroom) -> list[Refusal]:
    after = action.after.get("reserved_concurrency")
    if after is None or after == action.before.get("reserved_concurrency"):
        return []
    if after == 0:
        return [
            Refusal(
                guard="reserved_zero",
                limit=1,
                observed=0,
                message=f"reserved concurrency 0 would stop {action.target} entirely",
            )
        ]
    pc = account.function_pc(action.function_name)
    if int(after) < pc:
        return [
            Refusal(
                guard="reserved_below_pc",
                limit=pc,
                observed=after,
                message=f"reserved concurrency {after} on {action.target} would be below its "
                f"provisioned concurrency ({pc})",
            )
        ]
    return []


def clamp_pc(action: PlannedAction, facts: Facts, settings: Settings, account: AccountHeadroom) -> list[Refusal]:
    """Clamp each PC field of `action` (the cap, the reservation, the unreserved pool); record the PC it leaves."""
    refusals: list[Refusal] = []
    reserved = account.reservation(account.target, None)
    for name in pc_fields(action.kind):
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
                keep, why = _others_usage(facts)
                kept = replace(account.now, minimum=max(account.now.minimum, keep))
                largest = pool.largest_provisioned(kept, account.pc_here, value)
                if largest != value:
                    reason = f"leaves ≥ {account.now.minimum} unreserved executions in the account"
                    if keep > account.now.minimum:
                        reason = f"leaves ≥ {keep} unreserved executions for the other functions, {why}"
                    action.clamps.append(f"{name} {value} → {largest}: {reason} {account.described()}")
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
    after = {name: int(action.after.get(name) or 0) for name in pc_fields(action.kind)}
    if action.kind == "set_provisioned_concurrency":
        return after["provisioned_concurrency"]
    if action.kind == "set_autoscaling_bounds":  # Application Auto Scaling moves the PC into the new bounds
        return min(max(current, after["min_capacity"]), after["max_capacity"])
    return max(current, after["prewarm_concurrency"])
