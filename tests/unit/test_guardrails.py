"""Guardrails: what Medic refuses to change, and how far it clamps what it may change.

Every plan here is built the way triage builds it: the registered action plans from the facts about
`checkout:live`, then `check_plan` clamps it in place and returns the refusals. Each world is set up
so that exactly one guard has something to do, so each test fails if that guard is taken away.
"""

from __future__ import annotations

from typing import Any

import pytest

from medic.actions import PlannedAction, get_action
from medic.alarms.signals import Target
from medic.config import Settings
from medic.errors import GuardrailRefused
from medic.facts import Facts
from medic.plan import Refusal
from medic.planning.guardrails import MIN_UNRESERVED, check_plan

CHECKOUT_LIVE = Target.function("checkout", "live")
OPTED_IN = {"medic:managed": "true", "team": "payments"}


def settings(**overrides: Any) -> Settings:
    return Settings(plans_table="p", events_table="e", **overrides)


def facts(**changes: Any) -> Facts:
    """`checkout:live`, opted in, a fixed PC floor of 20, no reserved concurrency, a roomy account.

    Nothing in this world is near a limit: each test moves one fact (or setting) to one.
    """
    world: dict[str, Any] = {
        "function_name": "checkout",
        "qualifier": "live",
        "tags": OPTED_IN,
        "managed": True,
        "has_reserved_concurrency": False,
        "reserved_concurrency": None,
        "account_limit": 10_000,
        "unreserved_concurrency": 9_000,
        "pc_requested": 20,
        "pc_allocated": 20,
        "pc_status": "READY",
        "has_autoscaling": False,
        "peak_concurrency": 60.0,
        "spillover_invocations": 340.0,
        "unreserved_concurrency_peak": 40.0,
    }
    world.update(changes)
    return Facts(**world)


def raise_floor(to: float, world: Facts, target: Target = CHECKOUT_LIVE) -> PlannedAction:
    return get_action("set_provisioned_concurrency").plan(target, {"concurrency": to}, world)[0]


def raise_bounds(low: float, high: float, world: Facts, target: Target = CHECKOUT_LIVE) -> PlannedAction:
    return get_action("set_autoscaling_bounds").plan(target, {"min": low, "max": high}, world)[0]


def advise(world: Facts, target: Target = CHECKOUT_LIVE) -> PlannedAction:
    return get_action("advise").plan(target, {}, world)[0]


def guards(refusals: list[Refusal]) -> list[str]:
    return [refusal.guard for refusal in refusals]


# --- a plan within every limit --------------------------------------------------------------------


def test_a_change_within_every_limit_passes_untouched() -> None:
    world = facts()
    action = raise_floor(72, world)

    refusals = check_plan([action], world, settings())

    assert refusals == []
    assert action.before == {"provisioned_concurrency": 20}
    assert action.after == {"provisioned_concurrency": 72}
    assert action.clamps == []
    assert action.text == "Provisioned concurrency on checkout:live: 20 → 72"


# --- opt-in by tag --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "managed", "observed"),
    [
        ({"team": "payments"}, False, None),
        ({"medic:managed": "false"}, False, "false"),
        ({"medic:managed": "TRUE"}, False, "TRUE"),
        (None, None, "unknown (tags not read)"),
    ],
    ids=["tag-missing", "tag-false", "tag-wrong-case", "tags-unknown"],
)
def test_a_function_that_is_not_opted_in_is_refused(
    tags: dict[str, str] | None, managed: bool | None, observed: str | None
) -> None:
    world = facts(tags=tags, managed=managed)
    action = raise_floor(72, world)

    refusals = check_plan([action], world, settings())

    assert refusals == [
        Refusal(
            guard="opt_in_tag", limit="medic:managed=true", observed=observed,
            message="checkout is not opted in to changes by tag",
        )
    ]  # fmt: skip


def test_the_opt_in_refusal_names_the_configured_tag() -> None:
    world = facts(tags={"remediate": "no"}, managed=False)

    refusals = check_plan([raise_floor(72, world)], world, settings(opt_in_tag="remediate=yes"))

    assert [(r.guard, r.limit, r.observed) for r in refusals] == [("opt_in_tag", "remediate=yes", "no")]


def test_advice_is_never_refused() -> None:
    """Advice changes nothing, so no guard applies: not opted in, no target, nothing left to change."""
    world = facts(tags=None, managed=None, unreserved_concurrency=0)

    assert check_plan([advise(world)], world, settings(max_provisioned_concurrency=1)) == []
    assert check_plan([advise(world, Target.none())], world, settings()) == []
    assert check_plan([], world, settings()) == []


def test_advice_next_to_a_change_does_not_exempt_the_change() -> None:
    world = facts(tags={}, managed=False)

    refusals = check_plan([advise(world), raise_floor(72, world)], world, settings())

    assert guards(refusals) == ["opt_in_tag"]


# --- the provisioned-concurrency cap --------------------------------------------------------------


def test_pc_is_clamped_to_max_provisioned_concurrency() -> None:
    world = facts()
    action = raise_floor(150, world)

    refusals = check_plan([action], world, settings(max_provisioned_concurrency=100))

    assert refusals == []
    assert action.after == {"provisioned_concurrency": 100}
    assert action.clamps == ["provisioned_concurrency 150 → 100: cap max_provisioned_concurrency=100"]


def test_the_pc_cap_never_turns_an_increase_into_a_decrease() -> None:
    world = facts(pc_requested=1200, pc_allocated=1200, unreserved_concurrency=8000)
    action = raise_floor(1500, world)

    refusals = check_plan([action], world, settings(max_provisioned_concurrency=1000))

    assert action.after["provisioned_concurrency"] >= 1200 or refusals  # type: ignore[operator]
    assert refusals, "nothing Medic may do within the cap: the plan must be refused, not reversed"


# --- reserved concurrency -------------------------------------------------------------------------


def test_pc_is_clamped_to_the_functions_reserved_concurrency() -> None:
    world = facts(has_reserved_concurrency=True, reserved_concurrency=80)
    action = raise_floor(150, world)

    refusals = check_plan([action], world, settings())

    assert refusals == []
    assert action.after == {"provisioned_concurrency": 80}
    assert action.clamps == ["provisioned_concurrency 150 → 80: PC never above reserved concurrency (80)"]


def test_a_function_with_reserved_concurrency_draws_pc_from_it_not_from_the_account_pool() -> None:
    """The unreserved pool is not touched by PC inside a function's own reservation."""
    world = facts(has_reserved_concurrency=True, reserved_concurrency=500, unreserved_concurrency=150)
    action = raise_floor(300, world)

    assert check_plan([action], world, settings()) == []
    assert action.after == {"provisioned_concurrency": 300}


# --- the account's unreserved pool ----------------------------------------------------------------


def test_a_pc_increase_leaves_at_least_100_unreserved_executions_in_the_account() -> None:
    """The pool is what GetAccountSettings reports unreserved (150) minus the PC already on the function (20): the
    alias's PC may grow by the 30 above AWS's minimum, to 50 (the 20 it holds is counted once, not twice or never)."""
    world = facts(unreserved_concurrency=150)
    action = raise_floor(200, world)

    refusals = check_plan([action], world, settings())

    assert refusals == []
    assert action.after == {"provisioned_concurrency": 50}
    assert MIN_UNRESERVED == 150 - 50, "exactly the minimum is left unreserved"
    assert action.clamps == [
        "provisioned_concurrency 200 → 50: leaves ≥ 100 unreserved executions in the account (unreserved now 150, "
        "20 of it provisioned on checkout)"
    ]


def test_an_increase_that_fits_in_the_headroom_is_not_clamped() -> None:
    world = facts(unreserved_concurrency=150)
    action = raise_floor(50, world)

    assert check_plan([action], world, settings()) == []
    assert action.after == {"provisioned_concurrency": 50}
    assert action.clamps == []


def test_the_clamps_compose_and_each_is_recorded() -> None:
    world = facts(unreserved_concurrency=400)  # headroom 280 above the current 20 (400 - 20 provisioned - 100)
    action = raise_floor(900, world)

    check_plan([action], world, settings(max_provisioned_concurrency=500))

    assert action.after == {"provisioned_concurrency": 300}
    assert [clamp.split(":")[0] for clamp in action.clamps] == [
        "provisioned_concurrency 900 → 500", "provisioned_concurrency 500 → 300",
    ]  # fmt: skip


# --- a clamp that leaves nothing to do ------------------------------------------------------------


@pytest.mark.parametrize(
    ("world", "config"),
    [
        (facts(unreserved_concurrency=90), settings()),  # already below AWS's 100: no headroom at all
        (facts(), settings(max_provisioned_concurrency=20)),
        (facts(has_reserved_concurrency=True, reserved_concurrency=20), settings()),
    ],
    ids=["no-unreserved-headroom", "at-the-cap", "at-reserved-concurrency"],
)
def test_a_clamp_that_leaves_nothing_to_change_refuses_the_plan(world: Facts, config: Settings) -> None:
    action = raise_floor(72, world)

    refusals = check_plan([action], world, config)

    assert refusals == [
        Refusal(
            guard="no_effective_change", limit=20, observed=20,
            message="after the guardrails' clamps nothing would change on checkout:live",
        )
    ]  # fmt: skip
    assert action.after == action.before == {"provisioned_concurrency": 20}
    assert action.clamps, "the clamp that ate the change is shown"


def test_both_refusals_are_reported_together() -> None:
    world = facts(tags={}, managed=False, unreserved_concurrency=90)

    refusals = check_plan([raise_floor(72, world)], world, settings())

    assert guards(refusals) == ["opt_in_tag", "no_effective_change"]


# --- autoscaling bounds ---------------------------------------------------------------------------


def autoscaled(**changes: Any) -> Facts:
    """`checkout:live` with target tracking on its PC, pinned at its maximum of 50."""
    pool: dict[str, Any] = {
        "has_autoscaling": True, "autoscaling_min": 10, "autoscaling_max": 50, "pc_requested": 50,
        "pc_allocated": 50, "peak_concurrency": 80.4,
    }  # fmt: skip
    return facts(**{**pool, **changes})


def test_autoscaling_bounds_within_limits_pass_untouched() -> None:
    world = autoscaled()
    action = raise_bounds(81, 101, world)

    assert check_plan([action], world, settings()) == []
    assert action.before == {"min_capacity": 10, "max_capacity": 50}
    assert action.after == {"min_capacity": 81, "max_capacity": 101}


def test_autoscaling_bounds_are_clamped_to_the_cap_and_max_stays_at_least_min() -> None:
    world = autoscaled()
    action = raise_bounds(81, 101, world)

    refusals = check_plan([action], world, settings(max_provisioned_concurrency=60))

    assert refusals == []
    assert action.after == {"min_capacity": 60, "max_capacity": 60}
    assert len(action.clamps) == 2


def test_autoscaling_min_is_clamped_by_the_unreserved_pool_and_max_stays_at_least_min() -> None:
    world = autoscaled(unreserved_concurrency=170)  # headroom 20 above the current 50 (170 - 50 provisioned - 100)
    action = raise_bounds(150, 190, world)

    refusals = check_plan([action], world, settings())

    assert refusals == []
    assert action.after == {"min_capacity": 70, "max_capacity": 70}
    assert action.after["min_capacity"] <= action.after["max_capacity"]  # type: ignore[operator]


def test_autoscaling_bounds_clamped_back_to_where_they_are_refuse_the_plan() -> None:
    world = autoscaled(has_reserved_concurrency=True, reserved_concurrency=50, autoscaling_min=50)
    action = raise_bounds(81, 101, world)

    refusals = check_plan([action], world, settings())

    assert guards(refusals) == ["no_effective_change"]
    assert refusals[0].limit == refusals[0].observed == 50


def test_autoscaling_plan_keeps_max_at_least_min_even_when_asked_otherwise() -> None:
    action = raise_bounds(120, 90, autoscaled())

    assert action.after == {"min_capacity": 120, "max_capacity": 120}


# --- targets: one alias or version, never $LATEST, never "all" ------------------------------------


@pytest.mark.parametrize("kind", ["set_provisioned_concurrency", "set_autoscaling_bounds"])
@pytest.mark.parametrize(
    ("target", "observed"),
    [
        (Target.function("checkout"), "(unqualified)"),
        (Target.function("checkout", "$LATEST"), "$LATEST"),
        (Target.none(), "(none)"),
        (Target.db_instance("orders-db"), "db orders-db"),
    ],
    ids=["unqualified", "latest", "none", "db-instance"],
)
def test_a_change_needs_one_alias_or_published_version(kind: str, target: Target, observed: str) -> None:
    params = {"concurrency": 72} if kind == "set_provisioned_concurrency" else {"min": 81, "max": 101}

    with pytest.raises(GuardrailRefused) as raised:
        get_action(kind).plan(target, params, facts())

    assert raised.value.guard == "target"
    assert raised.value.observed == observed
    assert kind in raised.value.message


def test_a_published_version_is_a_valid_target() -> None:
    action = raise_floor(72, facts(), Target.function("checkout", "42"))

    assert action.target == "checkout:42"
    assert (action.function_name, action.qualifier) == ("checkout", "42")


@pytest.mark.parametrize("value", [-1, float("inf"), float("nan")])
def test_a_count_that_is_not_a_finite_non_negative_number_is_refused(value: float) -> None:
    with pytest.raises(GuardrailRefused) as raised:
        raise_floor(value, facts())

    assert raised.value.guard == "valid_value"


def test_a_fractional_count_is_rounded_up() -> None:
    assert raise_floor(72.1, facts()).after == {"provisioned_concurrency": 73}


# --- one PC configuration per version --------------------------------------------------------------------------


def test_pc_on_an_alias_whose_version_another_alias_provisions_is_refused() -> None:
    """AWS: "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version" —
    refused at plan time, never sent to be refused after an approval."""
    world = facts(pc_requested=0, pc_allocated=0, pc_on_other_qualifiers=40, pc_version_taken=True,
                  pc_qualifiers="blue:40(READY)")  # fmt: skip

    refusals = check_plan([raise_floor(30, world)], world, settings())

    assert guards(refusals) == ["pc_version_taken"]
    assert "blue:40(READY)" in refusals[0].message


def test_pc_on_an_alias_of_its_own_version_passes() -> None:
    world = facts(pc_requested=0, pc_allocated=0, pc_on_other_qualifiers=40, pc_version_taken=False)

    assert check_plan([raise_floor(30, world)], world, settings()) == []
