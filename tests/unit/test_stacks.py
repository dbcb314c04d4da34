"""A change to a function a CloudFormation stack manages is undone by the stack's next deploy: each action names the
template property that must hold its new value (`Action.template_properties`), and the plan carries the warnings."""

from __future__ import annotations

from medic.actions.base import PlannedAction
from medic.stacks import stack_of, template_warnings

TAGS = {
    "aws:cloudformation:stack-name": "orders",
    "aws:cloudformation:logical-id": "OrdersFunction",
    "aws:cloudformation:stack-id": "arn:aws:cloudformation:us-east-1:123456789012:stack/orders/1",
    "medic:managed": "true",
}


def _action(kind: str, field: str, before: object, after: object, **extra: object) -> PlannedAction:
    qualifier = extra.pop("qualifier", None)
    target = "orders-api" + (f":{qualifier}" if qualifier else "")
    return PlannedAction(kind=kind, target=target, function_name="orders-api", qualifier=qualifier, primary=field,
                         before={field: before}, after={field: after}, **extra)  # type: ignore[arg-type]  # fmt: skip


def test_no_stack_tags_no_warning() -> None:
    action = _action("set_reserved_concurrency", "reserved_concurrency", 100, 150)
    assert stack_of({"medic:managed": "true"}) is None
    assert template_warnings([action], "orders-api", {"medic:managed": "true"}) == []
    assert template_warnings([action], "orders-api", None) == []


def test_reserved_concurrency_names_the_function_property() -> None:
    action = _action("set_reserved_concurrency", "reserved_concurrency", 100, 150)
    [warning] = template_warnings([action], "orders-api", TAGS)
    assert (warning.stack, warning.logical_id, warning.resource_type) == ("orders", "OrdersFunction",
                                                                          "AWS::Lambda::Function")  # fmt: skip
    assert (warning.property, warning.value, warning.before) == ("ReservedConcurrentExecutions", 150, 100)
    assert warning.stack_id.endswith("stack/orders/1")
    assert warning.text().startswith(
        "The next deploy of stack orders will undo this: set OrdersFunction.ReservedConcurrentExecutions to 150"
    )


def test_each_action_declares_its_property() -> None:
    actions = [
        _action("set_provisioned_concurrency", "provisioned_concurrency", 5, 20, qualifier="live"),
        _action("set_memory", "memory_mb", 512, 1024, qualifier="live"),
        _action("set_event_source_max_concurrency", "maximum_concurrency", None, 40,
                resource={"uuid": "u-1", "event_source_arn": "arn:aws:sqs:us-east-1:123456789012:orders-q"}),
    ]  # fmt: skip
    autoscaling = PlannedAction(
        kind="set_autoscaling_bounds", target="orders-api:live", function_name="orders-api", qualifier="live",
        primary="max_capacity", before={"min_capacity": 5, "max_capacity": 10},
        after={"min_capacity": 5, "max_capacity": 30},
    )  # fmt: skip
    warnings = template_warnings([*actions, autoscaling], "orders-api", TAGS)
    found = [(w.resource_type, w.property, w.value) for w in warnings]
    assert found == [
        ("AWS::Lambda::Alias", "ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions", 20),
        ("AWS::Lambda::Function", "MemorySize", 1024),
        ("AWS::Lambda::EventSourceMapping", "ScalingConfig.MaximumConcurrency", 40),
        ("AWS::ApplicationAutoScaling::ScalableTarget", "MaxCapacity", 30),  # MinCapacity did not change
    ]
    assert "OrdersFunction's alias live (AWS::Lambda::Alias)" in warnings[0].text()
    assert "AutoPublishAlias: live" in warnings[0].text()  # SAM's shorthand on the function
    assert "orders-q" in warnings[2].text()


def test_other_functions_and_advice_are_not_judged_by_these_tags() -> None:
    other = _action("set_reserved_concurrency", "reserved_concurrency", 100, 50).model_copy(
        update={"function_name": "billing", "target": "billing"}
    )
    advice = PlannedAction(kind="advise", target="orders-api", function_name="orders-api", primary="advice")
    assert template_warnings([other, advice], "orders-api", TAGS) == []
