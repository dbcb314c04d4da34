"""set_autoscaling_bounds on a fixed floor enables autoscaling (target + target tracking policy); rollback removes
both and puts the fixed floor back. Over HTTP against the embedded AWS."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from medic.actions import get_action
from medic.actions.provisioned import PC_DIMENSION
from medic.alarms.signals import Target
from medic.aws import AwsClients
from medic.clock import ManualClock
from medic.facts import Facts
from medic_tools.world.server import EmbeddedAWS

REGION = "us-east-1"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))


def make_function(aws: EmbeddedAWS, name: str) -> Any:
    """A function opted in, version 1 published, alias live → 1; returns a Lambda client."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    role = aws.client("iam").create_role(RoleName="catalog-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = aws.client("lambda")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": buffer.getvalue()}, Tags={"medic:managed": "true"})  # fmt: skip
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    return lam


def _target(aws: EmbeddedAWS) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="lambda", ResourceIds=["function:catalog:live"], ScalableDimension=PC_DIMENSION
    )["ScalableTargets"]
    return targets


def test_enabling_autoscaling_on_a_fixed_floor_and_rolling_it_back(aws: EmbeddedAWS, clock: ManualClock) -> None:
    lam = make_function(aws, "catalog")
    lam.put_provisioned_concurrency_config(
        FunctionName="catalog", Qualifier="live", ProvisionedConcurrentExecutions=100
    )
    clients = AwsClients(region=REGION)
    action = get_action("set_autoscaling_bounds")
    facts = Facts(function_name="catalog", qualifier="live", has_autoscaling=False, pc_requested=100)

    [planned] = action.plan(Target.function("catalog", "live"), {"min": 15, "max": 100}, facts)

    assert planned.before == {"min_capacity": None, "max_capacity": None}
    assert planned.after == {"min_capacity": 15, "max_capacity": 100}
    assert planned.resource == {"creates_target": True, "fixed_floor": 100, "target_utilization": 0.7}
    assert planned.text.startswith("Enable autoscaling of PC on catalog:live (today a fixed floor of 100)")
    assert action.read_live(clients, planned) == planned.before

    action.apply(clients, planned)
    action.apply(clients, planned)  # idempotent: one target, one policy

    assert action.read_live(clients, planned) == planned.after
    policies = aws.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="lambda", ResourceId="function:catalog:live"
    )["ScalingPolicies"]
    assert [(p["PolicyName"], p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]) for p in policies] == [
        ("medic-catalog-live-utilization", 0.7)
    ]
    assert action.wait(clients, planned, clock, 60)["provisioned_concurrency"] == 100  # within [15, 100]: kept

    action.rollback(clients, planned)

    assert _target(aws) == []
    assert (
        aws.client("application-autoscaling").describe_scaling_policies(
            ServiceNamespace="lambda", ResourceId="function:catalog:live"
        )["ScalingPolicies"]
        == []
    )
    pc = lam.get_provisioned_concurrency_config(FunctionName="catalog", Qualifier="live")
    assert pc["RequestedProvisionedConcurrentExecutions"] == 100


def test_raising_existing_bounds_does_not_add_a_policy(aws: EmbeddedAWS) -> None:
    make_function(aws, "catalog")
    aas = aws.client("application-autoscaling")
    aas.register_scalable_target(ServiceNamespace="lambda", ResourceId="function:catalog:live",
                                 ScalableDimension=PC_DIMENSION, MinCapacity=5, MaxCapacity=10)  # fmt: skip
    clients = AwsClients(region=REGION)
    action = get_action("set_autoscaling_bounds")
    facts = Facts(has_autoscaling=True, autoscaling_min=5, autoscaling_max=10, pc_requested=5)

    [planned] = action.plan(Target.function("catalog", "live"), {"min": 8, "max": 20}, facts)
    action.apply(clients, planned)

    assert planned.resource == {}
    assert aas.describe_scaling_policies(ServiceNamespace="lambda")["ScalingPolicies"] == []
    action.rollback(clients, planned)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in _target(aws)] == [(5, 10)]
