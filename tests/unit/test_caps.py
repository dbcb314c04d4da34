"""The per-action caps (reserved concurrency, memory, quota requests) and the monthly cost budget.

Each plan is built the way triage builds it: the registered action plans from facts, `check_plan` clamps it in place
and returns the refusals, `annotate_costs` prices what is left, and `check_budget` holds the plan to the budget. Each
world has exactly one cap with something to do, so each test fails when that cap is taken away.
"""

from __future__ import annotations

from typing import Any

import pytest

from medic.actions import PlannedAction, get_action
from medic.alarms.signals import Target
from medic.config import Settings
from medic.facts import Facts
from medic.plan import Refusal
from medic.planning.cost import annotate_costs
from medic.planning.guardrails import check_budget, check_plan

CHECKOUT = Target.function("checkout")
CHECKOUT_LIVE = Target.function("checkout", "live")


def settings(**overrides: Any) -> Settings:
    return Settings(plans_table="p", events_table="e", **overrides)


def facts(**changes: Any) -> Facts:
    """`checkout:live`, opted in, 1024 MB on version 7, no reserved concurrency, 20 PC, a roomy account of 10,000."""
    world: dict[str, Any] = {
        "function_name": "checkout", "qualifier": "live", "tags": {"medic:managed": "true"}, "managed": True,
        "memory_mb": 1024, "timeout_s": 10, "alias_version": "7", "has_reserved_concurrency": False,
        "reserved_concurrency": None, "account_limit": 10_000, "unreserved_concurrency": 9_000, "pc_requested": 20,
        "pc_allocated": 20, "has_autoscaling": False, "invocations": 6_000.0, "warm_duration_avg_ms": 120.0,
        "unreserved_concurrency_peak": 40.0,
    }  # fmt: skip
    world.update(changes)
    return Facts(**world)


def reserve(to: float, world: Facts) -> PlannedAction:
    return get_action("set_reserved_concurrency").plan(CHECKOUT, {"concurrency": to}, world)[0]


def memory(to: float, world: Facts) -> PlannedAction:
    return get_action("set_memory").plan(CHECKOUT_LIVE, {"memory_mb": to}, world)[0]


def quota(to: float, world: Facts) -> PlannedAction:
    return get_action("request_quota_increase").plan(CHECKOUT_LIVE, {"concurrency": to}, world)[0]


def floor(to: float, world: Facts) -> PlannedAction:
    return get_action("set_provisioned_concurrency").plan(CHECKOUT_LIVE, {"concurrency": to}, world)[0]


def guards(refusals: list[Refusal]) -> list[str]:
    return [refusal.guard for refusal in refusals]


# --- reserved concurrency ≤ max_reserved_concurrency ----------------------------------------------


def test_reserved_concurrency_is_clamped_to_its_cap_and_the_clamp_is_recorded() -> None:
    world = facts()
    action = reserve(1500, world)

    refusals = check_plan([action], world, settings(max_reserved_concurrency=1000))

    assert refusals == []
    assert action.after == {"reserved_concurrency": 1000}
    assert action.clamps == ["reserved_concurrency 1500 → 1000: cap max_reserved_concurrency=1000"]


def test_reserved_concurrency_within_its_cap_is_untouched() -> None:
    world = facts()
    action = reserve(1000, world)

    assert check_plan([action], world, settings(max_reserved_concurrency=1000)) == []
    assert (action.after, action.clamps) == ({"reserved_concurrency": 1000}, [])


def test_the_reserved_cap_never_cuts_a_value_already_above_it() -> None:
    world = facts(reserved_concurrency=1200, has_reserved_concurrency=True)
    action = reserve(1500, world)

    refusals = check_plan([action], world, settings(max_reserved_concurrency=1000))

    assert action.after == {"reserved_concurrency": 1200}  # left as it is, not cut to 1000
    assert action.clamps == [
        "reserved_concurrency 1500 → 1200: cap max_reserved_concurrency=1000 (already above it: left as it is)"
    ]
    assert [(r.guard, r.limit, r.observed) for r in refusals] == [("no_effective_change", 1200, 1200)]


def test_the_reserved_cap_and_the_account_headroom_compose() -> None:
    world = facts(unreserved_concurrency=700)
    action = reserve(1500, world)

    assert check_plan([action], world, settings(max_reserved_concurrency=1000)) == []
    assert action.after == {"reserved_concurrency": 600}
    assert action.clamps[0] == "reserved_concurrency 1500 → 1000: cap max_reserved_concurrency=1000"
    assert action.clamps[1].startswith("reserved_concurrency 1000 → 600: leaves ≥ 100 unreserved executions")


# --- memory ≤ max_memory_mb -----------------------------------------------------------------------


def test_memory_is_clamped_to_its_cap() -> None:
    world = facts()
    action = memory(4096, world)

    assert check_plan([action], world, settings(max_memory_mb=2048)) == []
    assert action.after == {"memory_mb": 2048}
    assert action.clamps == ["memory_mb 4096 → 2048: cap max_memory_mb=2048"]


def test_the_memory_cap_never_cuts_memory_already_above_it() -> None:
    world = facts(memory_mb=3008)
    action = memory(4096, world)

    refusals = check_plan([action], world, settings(max_memory_mb=2048))

    assert action.after == {"memory_mb": 3008}
    assert guards(refusals) == ["no_effective_change"]


def test_memory_within_its_cap_is_untouched() -> None:
    world = facts()
    action = memory(2048, world)

    assert check_plan([action], world, settings(max_memory_mb=2048)) == []
    assert (action.after, action.clamps) == ({"memory_mb": 2048}, [])


# --- quota requests ≤ max_quota_request, a hard limit ---------------------------------------------


def test_a_quota_request_is_clamped_to_the_hard_limit() -> None:
    world = facts(account_limit=1000)
    action = quota(8000, world)

    assert check_plan([action], world, settings(max_quota_request=5000)) == []
    assert action.after == {"account_concurrency_limit": 5000}
    assert action.clamps == ["account_concurrency_limit 8000 → 5000: cap max_quota_request=5000"]


@pytest.mark.parametrize("limit", [5000, 6000])
def test_no_quota_request_once_the_limit_has_reached_the_hard_limit(limit: int) -> None:
    world = facts(account_limit=limit)
    action = quota(limit * 2, world)

    refusals = check_plan([action], world, settings(max_quota_request=5000))

    assert [(r.guard, r.limit, r.observed) for r in refusals] == [("quota_hard_limit", 5000, limit)]
    assert "Medic asks for no more" in refusals[0].message


def test_a_quota_request_below_the_hard_limit_is_untouched() -> None:
    world = facts(account_limit=1000)
    action = quota(2000, world)

    assert check_plan([action], world, settings(max_quota_request=5000)) == []
    assert (action.after, action.clamps) == ({"account_concurrency_limit": 2000}, [])


# --- the monthly cost budget ----------------------------------------------------------------------


def priced(actions: list[PlannedAction], world: Facts) -> list[PlannedAction]:
    annotate_costs(actions, world, "us-east-1")
    return actions


def test_a_plan_that_adds_more_than_the_budget_is_refused_with_the_sum() -> None:
    world = facts()
    actions = priced([floor(30, world)], world)  # +10 PC of 1 GB: $109.50/month in us-east-1
    cost = actions[0].cost_monthly_usd
    assert cost is not None and cost > 100

    refusals = check_budget(actions, settings(monthly_cost_budget_usd=100))

    assert [(r.guard, r.limit, r.observed) for r in refusals] == [("cost_budget", 100, round(cost, 2))]


def test_a_plan_within_the_budget_passes() -> None:
    world = facts()
    actions = priced([floor(30, world)], world)

    assert check_budget(actions, settings(monthly_cost_budget_usd=200)) == []


def test_the_costs_of_a_plans_actions_add_up_and_savings_do_not_offset_them() -> None:
    actions = [
        PlannedAction(kind="set_provisioned_concurrency", target="a:live", primary="p", cost_monthly_usd=60.0),
        PlannedAction(kind="set_provisioned_concurrency", target="b:live", primary="p", cost_monthly_usd=60.0),
        PlannedAction(kind="set_autoscaling_bounds", target="c:live", primary="p", cost_monthly_usd=-500.0),
    ]

    refusals = check_budget(actions, settings(monthly_cost_budget_usd=100))

    assert [(r.guard, r.observed) for r in refusals] == [("cost_budget", 120.0)]


def test_under_a_budget_an_unknown_cost_is_refused_never_guessed() -> None:
    world = facts(invocations=None, warm_duration_avg_ms=None)
    actions = priced([memory(2048, world)], world)
    assert actions[0].cost_monthly_usd is None

    refusals = check_budget(actions, settings(monthly_cost_budget_usd=10_000))

    assert [(r.guard, r.limit, r.observed) for r in refusals] == [("cost_unknown", 10_000, None)]
    assert "set_memory on checkout:live is unknown" in refusals[0].message


def test_without_a_budget_cost_is_not_checked() -> None:
    unknown = PlannedAction(kind="set_memory", target="checkout:live", primary="memory_mb", cost_monthly_usd=None)
    dear = PlannedAction(kind="set_provisioned_concurrency", target="x", primary="p", cost_monthly_usd=1e6)

    assert check_budget([unknown, dear], settings()) == []


def test_advice_costs_nothing_and_is_never_refused_by_the_budget() -> None:
    advice = PlannedAction(kind="advise", target="checkout:live", primary="advice", cost_monthly_usd=None)

    assert check_budget([advice], settings(monthly_cost_budget_usd=0)) == []


def test_free_actions_fit_a_zero_budget() -> None:
    world = facts()
    actions = priced([reserve(50, world)], world)

    assert actions[0].cost_monthly_usd == 0.0
    assert check_budget(actions, settings(monthly_cost_budget_usd=0)) == []
