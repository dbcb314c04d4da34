"""Functions without an alias: memory changes the unqualified function; provisioned concurrency is refused at plan
time with what a human must do (AWS never puts PC on $LATEST); and a PC floor of 0 is never planned."""

from __future__ import annotations

from typing import Any

import pytest

from medic.actions import get_action
from medic.alarms.signals import Target
from medic.config import Settings
from medic.errors import GuardrailRefused
from medic.facts import Facts
from medic.planning.guardrails import check_plan

CHECKOUT = Target.function("checkout")


def latest(**changes: Any) -> Facts:
    """`checkout`, opted in, no alias: the collector found the traffic on $LATEST (1024 MB)."""
    world: dict[str, Any] = {
        "function_name": "checkout", "qualifier": "$LATEST", "traffic_qualifier": "$LATEST",
        "tags": {"medic:managed": "true"}, "managed": True, "memory_mb": 1024, "alias_version": "$LATEST",
        "has_reserved_concurrency": False, "account_limit": 1000, "unreserved_concurrency": 1000, "pc_requested": 0,
    }  # fmt: skip
    world.update(changes)
    return Facts(**world)


@pytest.mark.parametrize("target", [CHECKOUT, Target.function("checkout", "$LATEST")], ids=["unqualified", "latest"])
def test_memory_of_a_function_without_an_alias_is_set_on_the_function(target: Target) -> None:
    [action] = get_action("set_memory").plan(target, {"memory_mb": 2048}, latest())

    assert (action.target, action.function_name, action.qualifier) == ("checkout", "checkout", None)
    assert (action.before, action.after) == ({"memory_mb": 1024}, {"memory_mb": 2048})
    assert action.text == (
        "Memory of checkout (no alias: its traffic runs on $LATEST): 1024 MB → 2048 MB (0.58 → 1.16 vCPU), set on the "
        "unqualified function"
    )
    assert check_plan([action], latest(), Settings(plans_table="p", events_table="e")) == []


def test_the_traffic_qualifier_alone_says_the_function_runs_unaliased() -> None:
    world = latest(qualifier=None)

    [action] = get_action("set_memory").plan(CHECKOUT, {"memory_mb": 64}, world)

    assert action.after == {"memory_mb": 128}
    assert action.clamps == ["memory_mb 64 → 128: Lambda's range is 128–10240 MB"]


def test_an_unqualified_alarm_whose_traffic_is_on_an_alias_still_needs_the_alias() -> None:
    with pytest.raises(GuardrailRefused) as raised:
        get_action("set_memory").plan(CHECKOUT, {"memory_mb": 2048}, latest(qualifier="live", traffic_qualifier="live"))

    assert (raised.value.guard, raised.value.observed) == ("target", "(unqualified)")


def test_unknown_memory_of_the_function_is_refused() -> None:
    with pytest.raises(GuardrailRefused) as raised:
        get_action("set_memory").plan(CHECKOUT, {"memory_mb": 2048}, latest(memory_mb=None))

    assert (raised.value.guard, raised.value.observed) == ("facts", "unknown: memory_mb")


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("set_provisioned_concurrency", {"concurrency": 10}),
        ("set_autoscaling_bounds", {"min": 1, "max": 10}),
        ("schedule_prewarm", {"concurrency": 10, "start_minute_of_day": 480, "duration_min": 60}),
    ],
)
@pytest.mark.parametrize("target", [CHECKOUT, Target.function("checkout", "$LATEST")], ids=["unqualified", "latest"])
def test_pc_on_a_function_without_an_alias_is_refused_with_what_to_do(
    kind: str, params: dict[str, Any], target: Target
) -> None:
    with pytest.raises(GuardrailRefused) as raised:
        get_action(kind).plan(target, params, latest())

    assert raised.value.guard == "target"
    assert raised.value.message.startswith(kind)
    assert "provisioned concurrency can never go on $LATEST (AWS refuses it)" in raised.value.message
    assert "Publish a version of checkout, point an alias at it and send the traffic to the alias" in (
        raised.value.message
    )


@pytest.mark.parametrize("concurrency", [0, 0.0])
def test_a_pc_floor_of_zero_is_never_planned(concurrency: float) -> None:
    with pytest.raises(GuardrailRefused) as raised:
        get_action("set_provisioned_concurrency").plan(
            Target.function("checkout", "live"), {"concurrency": concurrency}, latest(qualifier="live")
        )

    assert (raised.value.guard, raised.value.limit, raised.value.observed) == ("valid_value", ">= 1", 0)
