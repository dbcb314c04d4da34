"""Guardrails on the account's concurrency pool: what a plan may take from it, judged as AWS judges it.

The pool is `UnreservedConcurrentExecutions` less the PC already on functions without a reservation
(`medic.planning.pool`);
a plan's changes are judged in the order the executor makes them; a reserved raise leaves the functions without a
reservation what they use; an account whose limit is all floor has nothing to give.
"""

from __future__ import annotations

from typing import Any

import pytest

from medic.actions import PlannedAction, get_action
from medic.alarms.signals import Target
from medic.config import Settings
from medic.facts import Facts
from medic.plan import Refusal
from medic.planning.guardrails import check_plan

CHECKOUT = Target.function("checkout")
CHECKOUT_LIVE = Target.function("checkout", "live")


def settings() -> Settings:
    return Settings(plans_table="p", events_table="e")


def facts(**changes: Any) -> Facts:
    """`checkout:live`, opted in, reserved at 100, no PC, an account of 1,000 with 900 unreserved, little used."""
    world: dict[str, Any] = {
        "function_name": "checkout", "qualifier": "live", "tags": {"medic:managed": "true"}, "managed": True,
        "has_reserved_concurrency": True, "reserved_concurrency": 100, "account_limit": 1000,
        "unreserved_concurrency": 900, "unreserved_concurrency_peak": 40.0, "pc_requested": 0, "has_autoscaling": False,
    }  # fmt: skip
    world.update(changes)
    return Facts(**world)


def unreserved(**changes: Any) -> Facts:
    """The same function without a reservation."""
    return facts(**{"has_reserved_concurrency": False, "reserved_concurrency": None, **changes})


def reserve(to: float, world: Facts) -> PlannedAction:
    return get_action("set_reserved_concurrency").plan(CHECKOUT, {"concurrency": to}, world)[0]


def floor(to: float, world: Facts) -> PlannedAction:
    return get_action("set_provisioned_concurrency").plan(CHECKOUT_LIVE, {"concurrency": to}, world)[0]


def prewarm(to: float, world: Facts) -> PlannedAction:
    params = {"concurrency": to, "start_minute_of_day": 480, "duration_min": 60}
    return get_action("schedule_prewarm").plan(CHECKOUT_LIVE, params, world)[0]


def guards(refusals: list[Refusal]) -> list[str]:
    return [refusal.guard for refusal in refusals]


# --- a reserved raise never squeezes what the functions without a reservation use ---------------------------------


def test_a_reserved_raise_leaves_the_unreserved_functions_their_peak() -> None:
    world = facts(unreserved_concurrency_peak=600.0)  # 900 unreserved, 600 of it used at peak: 300 may be taken
    action = reserve(1000, world)

    assert check_plan([action], world, settings()) == []
    assert action.after == {"reserved_concurrency": 400}
    assert action.clamps == [
        "reserved_concurrency 1000 → 400: leaves ≥ 600 unreserved executions for the functions without a "
        "reservation, what the functions without a reservation used at peak (600) (unreserved now 900)"
    ]


def test_below_the_minimum_the_minimum_is_what_is_kept() -> None:
    world = facts(unreserved_concurrency_peak=12.0)
    action = reserve(1000, world)

    check_plan([action], world, settings())

    assert action.after == {"reserved_concurrency": 900}
    assert action.clamps[0].endswith("leaves ≥ 100 unreserved executions in the account (unreserved now 900)")


def test_without_the_unreserved_peak_the_accounts_peak_bounds_it() -> None:
    world = facts(unreserved_concurrency_peak=None, account_concurrency_peak=750.0)
    action = reserve(1000, world)

    check_plan([action], world, settings())

    assert action.after == {"reserved_concurrency": 250}
    assert "the account's peak concurrency (750), an upper bound" in action.clamps[0]


def test_with_no_usage_known_nothing_is_taken_and_the_clamp_says_why() -> None:
    world = facts(unreserved_concurrency_peak=None, account_concurrency_peak=None)
    action = reserve(150, world)

    refusals = check_plan([action], world, settings())

    assert action.after == {"reserved_concurrency": 100}
    assert action.clamps == [
        "reserved_concurrency 150 → 100: what the functions without a reservation use is unknown "
        "(unreserved_concurrency_peak not read): Medic takes nothing from their pool (unreserved now 900)"
    ]
    assert guards(refusals) == ["no_effective_change"]


def test_a_reserved_decrease_needs_no_usage_at_all() -> None:
    world = facts(unreserved_concurrency_peak=None, reserved_concurrency=300)
    action = reserve(200, world)

    assert check_plan([action], world, settings()) == []
    assert action.after == {"reserved_concurrency": 200}


def test_a_first_reservation_takes_the_functions_own_pc_out_of_the_pool() -> None:
    """700 unreserved, 20 of it provisioned on checkout: reserving 600 leaves exactly 100 (the 20 move with it)."""
    world = unreserved(unreserved_concurrency=700, pc_requested=20)
    action = reserve(1000, world)

    assert check_plan([action], world, settings()) == []
    assert action.after == {"reserved_concurrency": 600}


# --- a new account: the whole limit is the floor --------------------------------------------------------------------


def test_a_new_accounts_pool_gives_no_reservation_and_says_to_raise_the_quota() -> None:
    world = unreserved(account_limit=10, unreserved_concurrency=10, unreserved_concurrency_peak=0.0)
    action = reserve(5, world)

    refusals = check_plan([action], world, settings())

    assert refusals == [
        Refusal(guard="unreserved_floor", limit=10, observed=10,
                message="the account's concurrency limit is 10, all of it the unreserved minimum AWS keeps (10): "
                        "set_reserved_concurrency on checkout cannot take reserved or provisioned concurrency from "
                        "it; raise the account's concurrency quota first (request_quota_increase)")
    ]  # fmt: skip
    assert action.after == {"reserved_concurrency": 5}, "refused as asked, not clamped to a value AWS refuses"


@pytest.mark.parametrize("make", [floor, prewarm], ids=["floor", "prewarm"])
def test_a_new_accounts_pool_gives_no_pc_to_a_function_without_a_reservation(make: Any) -> None:
    world = unreserved(account_limit=10, unreserved_concurrency=10)
    action = make(5, world)

    assert guards(check_plan([action], world, settings())) == ["unreserved_floor"]


def test_a_new_account_may_ask_for_awss_default_quota() -> None:
    world = unreserved(account_limit=10, unreserved_concurrency=10)
    [action] = get_action("request_quota_increase").plan(CHECKOUT, {"concurrency": 1000}, world)

    assert check_plan([action], world, settings()) == []
    assert (action.before, action.after) == ({"account_concurrency_limit": 10}, {"account_concurrency_limit": 1000})


def test_the_collected_minimum_is_the_one_kept() -> None:
    world = unreserved(account_limit=None, minimum_unreserved=50, unreserved_concurrency=80)
    action = floor(100, world)

    check_plan([action], world, settings())

    assert action.after == {"provisioned_concurrency": 30}


# --- a plan's changes are judged in the order they are made ---------------------------------------------------------


def test_pc_after_a_new_reservation_is_clamped_to_it() -> None:
    world = unreserved()
    plan = [reserve(50, world), floor(80, world)]

    assert check_plan(plan, world, settings()) == []
    assert plan[1].after == {"provisioned_concurrency": 50}
    assert plan[1].clamps == ["provisioned_concurrency 80 → 50: PC never above reserved concurrency (50)"]


def test_a_reservation_after_pc_must_hold_that_pc() -> None:
    world = unreserved()
    plan = [floor(80, world), reserve(50, world)]

    refusals = check_plan(plan, world, settings())

    assert [(r.guard, r.limit, r.observed) for r in refusals] == [("reserved_below_pc", 80, 50)]


def test_two_pc_changes_share_the_pool() -> None:
    """200 unreserved, 20 provisioned: 80 of headroom; the floor takes 40 of it, the pre-warm what is left."""
    world = unreserved(unreserved_concurrency=200, pc_requested=20)
    plan = [floor(60, world), prewarm(150, world)]

    assert check_plan(plan, world, settings()) == []
    assert plan[1].after["prewarm_concurrency"] == 100
    assert plan[1].clamps == [
        "prewarm_concurrency 150 → 100: leaves ≥ 100 unreserved executions in the account (unreserved now 200, 20 "
        "of it provisioned on checkout, 40 by its provisioned concurrency)"
    ]


def test_autoscaling_bounds_never_end_with_the_minimum_above_the_maximum() -> None:
    world = unreserved(has_autoscaling=True, autoscaling_min=5, autoscaling_max=10, pc_requested=5)
    [action] = get_action("set_autoscaling_bounds").plan(CHECKOUT_LIVE, {"min": 20, "max": 40}, world)
    action.after["max_capacity"] = 15  # as if a later edit slipped a maximum below the minimum

    assert check_plan([action], world, settings()) == []
    assert action.after == {"min_capacity": 20, "max_capacity": 20}
    assert action.clamps == ["max_capacity 15 → 20: never below min_capacity"]


def test_the_pc_cap_never_lowers_a_fixed_floor_by_enabling_autoscaling_below_it() -> None:
    """1,200 provisioned (above the cap of 1,000): a maximum of 1,000 would make Application Auto Scaling cut the PC."""
    world = unreserved(unreserved_concurrency=5000, pc_requested=1200)
    [action] = get_action("set_autoscaling_bounds").plan(CHECKOUT_LIVE, {"min": 1300, "max": 1500}, world)

    assert (
        check_plan([action], world, Settings(plans_table="p", events_table="e", max_provisioned_concurrency=1000)) == []
    )
    assert action.after == {"min_capacity": 1000, "max_capacity": 1200}
