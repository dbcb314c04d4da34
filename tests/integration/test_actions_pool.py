"""Plans AWS accepts, proven against the embedded AWS over HTTP.

* For many random account states (limit, reservations, PC on the target's aliases and inside another function's
  reservation, autoscaling) and random capacity changes, whatever the guardrails let through — clamped or not — is
  accepted by the world when the executor applies it, in order. The world validates with the same `medic.planning.pool`
  functions the guardrails clamp with; these states are built through the world's own API, so they are states AWS
  allows. (PC on *other* functions without a reservation is not among the facts; the states leave it out.)
* The world counts a qualifier's existing PC once when Application Auto Scaling raises its bounds, and refuses a
  minimum above the maximum.
* The new apply paths: memory on a function without an alias (and its rollback), and a cap toward a database of the
  opted-in consumers only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from test_actions import TIMEOUT_S, apply_twice, make_function, same

from medic.actions import PlannedAction, get_action
from medic.alarms.signals import Target
from medic.aws import AwsClients
from medic.clock import ManualClock
from medic.config import Settings
from medic.errors import ActionFailed
from medic.facts import ConsumerFacts, Facts
from medic.planning.guardrails import check_plan
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS

REGION = "us-east-1"
CHECKOUT = Target.function("checkout")
CHECKOUT_LIVE = Target.function("checkout", "live")
PC_DIMENSION = "lambda:function:ProvisionedConcurrency"


def settings_() -> Settings:
    return Settings(plans_table="p", events_table="e", max_provisioned_concurrency=3000, max_reserved_concurrency=3000)


# --- whatever the guardrails let through, the world accepts ---------------------------------------------------------


@st.composite
def account_states(draw: Any) -> dict[str, Any]:
    """An account AWS allows: reservations and PC on functions without one leave the unreserved minimum."""
    limit = draw(st.one_of(st.sampled_from([10, 50, 100, 101, 150, 300, 1000]), st.integers(10, 1500)))
    spare = limit - min(100, limit)  # what reservations and PC outside them may take
    other_reserved = draw(st.one_of(st.just(0), st.integers(0, spare)))
    reservable = spare - other_reserved
    reserved = draw(st.one_of(st.none(), st.integers(1, reservable))) if reservable >= 1 else None
    room = reserved if reserved is not None else reservable
    live = draw(st.integers(0, room))
    return {
        "limit": limit,
        "reserved": reserved,
        "other_reserved": other_reserved,
        "other_pc": draw(st.integers(0, other_reserved)),
        "live": live,
        "canary": draw(st.integers(0, room - live)),
        "autoscaling": draw(st.one_of(st.none(), st.integers(0, 200))),  # max above the live PC, or no target
        "usage": draw(st.one_of(st.none(), st.integers(0, limit))),
    }


changes = st.lists(
    st.one_of(
        st.builds(lambda n: ("set_provisioned_concurrency", {"concurrency": n}), st.integers(1, 2000)),
        st.builds(
            lambda a, b: ("set_autoscaling_bounds", {"min": a, "max": a + b}), st.integers(0, 2000), st.integers(0, 500)
        ),
        st.builds(
            lambda n: ("schedule_prewarm", {"concurrency": n, "start_minute_of_day": 480, "duration_min": 60}),
            st.integers(1, 2000),
        ),
        st.builds(lambda n: ("set_reserved_concurrency", {"concurrency": n}), st.integers(1, 2000)),
    ),
    min_size=1,
    max_size=3,
)


def build(aws: EmbeddedAWS, state: dict[str, Any]) -> None:
    """The account through the world's API (a setup call the world refuses is a state AWS does not allow)."""
    aws.reset()
    moto_ext.set_account_concurrency_limit(state["limit"])
    lam = make_function(aws, "checkout")
    lam.update_function_configuration(FunctionName="checkout", Description="v2")
    lam.publish_version(FunctionName="checkout")
    lam.create_alias(FunctionName="checkout", Name="canary", FunctionVersion="2")
    make_function(aws, "report")
    try:
        if state["other_reserved"]:
            lam.put_function_concurrency(FunctionName="report", ReservedConcurrentExecutions=state["other_reserved"])
            if state["other_pc"]:
                lam.put_provisioned_concurrency_config(FunctionName="report", Qualifier="live",
                                                       ProvisionedConcurrentExecutions=state["other_pc"])  # fmt: skip
        if state["reserved"] is not None:
            lam.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=state["reserved"])
        for alias in ("live", "canary"):
            if state[alias]:
                lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier=alias,
                                                       ProvisionedConcurrentExecutions=state[alias])  # fmt: skip
        if state["autoscaling"] is not None:
            aws.client("application-autoscaling").register_scalable_target(
                ServiceNamespace="lambda", ResourceId="function:checkout:live", ScalableDimension=PC_DIMENSION,
                MinCapacity=state["live"], MaxCapacity=state["live"] + state["autoscaling"],
            )  # fmt: skip
    except ClientError:
        assume(False)


def collected(aws: EmbeddedAWS, state: dict[str, Any]) -> Facts:
    """What the collector reads about checkout:live (the usage of the pool is drawn: the world serves no metrics)."""
    lam = aws.client("lambda")
    limits = lam.get_account_settings()["AccountLimit"]
    reserved = lam.get_function_concurrency(FunctionName="checkout").get("ReservedConcurrentExecutions")
    configs = lam.list_provisioned_concurrency_configs(FunctionName="checkout")["ProvisionedConcurrencyConfigs"]
    pc = {c["FunctionArn"].rsplit(":", 1)[-1]: c["RequestedProvisionedConcurrentExecutions"] for c in configs}
    targets = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="lambda", ResourceIds=["function:checkout:live"], ScalableDimension=PC_DIMENSION
    )["ScalableTargets"]
    return Facts(
        function_name="checkout", qualifier="live", tags={"medic:managed": "true"}, managed=True,
        has_reserved_concurrency=reserved is not None, reserved_concurrency=reserved,
        account_limit=limits["ConcurrentExecutions"], unreserved_concurrency=limits["UnreservedConcurrentExecutions"],
        pc_requested=pc.get("live", 0), pc_on_other_qualifiers=sum(n for q, n in pc.items() if q != "live"),
        has_autoscaling=bool(targets), autoscaling_min=targets[0]["MinCapacity"] if targets else None,
        autoscaling_max=targets[0]["MaxCapacity"] if targets else None, unreserved_concurrency_peak=state["usage"],
    )  # fmt: skip


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(state=account_states(), calls=changes)
def test_whatever_the_guardrails_let_through_the_world_accepts(
    aws: EmbeddedAWS, state: dict[str, Any], calls: list[tuple[str, dict[str, Any]]]
) -> None:
    build(aws, state)
    facts = collected(aws, state)
    actions: list[PlannedAction] = []
    for kind, params in calls:
        actions += get_action(kind).plan(CHECKOUT if kind == "set_reserved_concurrency" else CHECKOUT_LIVE, params,
                                         facts)  # fmt: skip
    refusals = check_plan(actions, facts, settings_())
    event("blocked" if refusals else "clamped and applied" if any(a.clamps for a in actions) else "applied as asked")
    if refusals:
        return  # BLOCKED: nothing is sent to AWS
    clients = AwsClients(region=REGION)
    for action in actions:
        try:
            get_action(action.kind).apply(clients, action)
        except ClientError as error:  # pragma: no cover - the failure this test exists to catch
            pytest.fail(f"AWS refused {action.kind} {action.before} → {action.after} {action.clamps}: {error}")


# --- the world: Application Auto Scaling counts the PC a qualifier holds once ---------------------------------------


def register(aws: EmbeddedAWS, low: int, high: int) -> Any:
    return aws.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="lambda", ResourceId="function:checkout:live", ScalableDimension=PC_DIMENSION,
        MinCapacity=low, MaxCapacity=high,
    )  # fmt: skip


def test_raising_autoscaling_bounds_counts_the_pc_already_held_once(aws: EmbeddedAWS) -> None:
    """850 of 1,000 provisioned on live: the minimum may rise to 900 (100 left), not to 901."""
    lam = make_function(aws, "checkout")
    lam.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=850
    )

    with pytest.raises(ClientError) as refused:
        register(aws, 901, 950)
    register(aws, 900, 950)

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "below its minimum value of [100]" in refused.value.response["Error"]["Message"]
    config = lam.get_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live")
    assert config["RequestedProvisionedConcurrentExecutions"] == 900


def test_a_minimum_above_the_maximum_is_refused_and_nothing_registered(aws: EmbeddedAWS) -> None:
    make_function(aws, "checkout")

    with pytest.raises(ClientError) as refused:
        register(aws, 20, 10)

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    targets = aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="lambda")
    assert targets["ScalableTargets"] == []


def test_a_pc_clamp_is_exactly_what_aws_accepts(aws: EmbeddedAWS) -> None:
    """300 unreserved, 20 of it provisioned on live: 180 above the minimum, so the floor may rise to 200; AWS
    refuses 201."""
    moto_ext.set_account_concurrency_limit(300)
    lam = make_function(aws, "checkout")
    lam.put_provisioned_concurrency_config(
        FunctionName="checkout", Qualifier="live", ProvisionedConcurrentExecutions=20
    )
    facts = collected(aws, {"usage": None})
    [action] = get_action("set_provisioned_concurrency").plan(CHECKOUT_LIVE, {"concurrency": 500}, facts)

    assert check_plan([action], facts, settings_()) == []
    with pytest.raises(ClientError):
        lam.put_provisioned_concurrency_config(FunctionName="checkout", Qualifier="live",
                                               ProvisionedConcurrentExecutions=201)  # fmt: skip
    get_action(action.kind).apply(AwsClients(region=REGION), action)

    assert action.after == {"provisioned_concurrency": 200}


# --- memory of a function without an alias --------------------------------------------------------------------------


@pytest.fixture
def clients(aws: EmbeddedAWS) -> AwsClients:
    return AwsClients(region=REGION)


def unaliased(aws: EmbeddedAWS) -> tuple[Any, PlannedAction]:
    lam = make_function(aws, "pricing", memory=256, aliases=False)
    facts = Facts(function_name="pricing", qualifier="$LATEST", traffic_qualifier="$LATEST", memory_mb=256,
                  managed=True, tags={"medic:managed": "true"})  # fmt: skip
    [action] = get_action("set_memory").plan(Target.function("pricing"), {"memory_mb": 512}, facts)
    return lam, action


def test_memory_of_a_function_without_an_alias_is_set_on_it_and_restored(aws: EmbeddedAWS,
                                                                           clients: AwsClients) -> None:  # fmt: skip
    lam, action = unaliased(aws)
    impl = get_action("set_memory")

    apply_twice(clients, action)

    config = lam.get_function_configuration(FunctionName="pricing")
    assert (config["MemorySize"], config["LastUpdateStatus"]) == (512, "Successful")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="pricing")["Versions"]] == ["$LATEST"]
    assert same(impl.read_live(clients, action), action.after)
    clock = ManualClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    assert impl.wait(clients, action, clock, TIMEOUT_S) == {"memory_mb": 512}

    impl.rollback(clients, action)

    assert impl.read_live(clients, action) == action.before == {"memory_mb": 256}


def test_the_rollback_of_memory_someone_changed_since_leaves_it_and_fails(aws: EmbeddedAWS,
                                                                           clients: AwsClients) -> None:  # fmt: skip
    lam, action = unaliased(aws)
    get_action("set_memory").apply(clients, action)
    lam.update_function_configuration(FunctionName="pricing", MemorySize=1024)

    with pytest.raises(ActionFailed) as failed:
        get_action("set_memory").rollback(clients, action)

    assert "changed since Medic set 512 MB: not restored to 256 MB" in failed.value.reason
    assert lam.get_function_configuration(FunctionName="pricing")["MemorySize"] == 1024


# --- a database cap of the opted-in consumers only ------------------------------------------------------------------


def test_toward_a_database_only_the_opted_in_consumer_is_capped(aws: EmbeddedAWS, clients: AwsClients) -> None:
    lam = make_function(aws, "api")
    make_function(aws, "legacy", tags={"team": "payments"})
    facts = Facts(db_instance="orders-db", unreserved_concurrency=1000, unreserved_concurrency_peak=400.0, consumers=[
        ConsumerFacts(function_name="api", managed=True, peak_concurrency=300),
        ConsumerFacts(function_name="legacy", managed=False, peak_concurrency=100),
    ])  # fmt: skip
    actions = get_action("set_reserved_concurrency").plan(Target.db_instance("orders-db"), {"concurrency": 280}, facts)

    assert check_plan(actions, facts, settings_()) == []
    changes = [action for action in actions if action.kind != "advise"]
    for action in changes:
        apply_twice(clients, action)

    assert [(a.target, a.after) for a in changes] == [("api", {"reserved_concurrency": 180})]
    assert lam.get_function_concurrency(FunctionName="api")["ReservedConcurrentExecutions"] == 180
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="legacy")
    assert [(a.kind, a.target, a.resource) for a in actions if a.kind == "advise"] == [
        ("advise", "legacy", {"suggested_cap": 70, "counted": 100})
    ]
    get_action(changes[0].kind).rollback(clients, changes[0])
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="api")
