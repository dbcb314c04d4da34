"""Provisioned-concurrency actions: the PC floor on an alias, and its autoscaling bounds."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from medic.actions.base import Action, PlannedAction, Scalar, TemplateProperty
from medic.actions.qualifiers import qualified
from medic.errors import ActionFailed, GuardrailRefused
from medic.planning.cost import (
    MB_PER_GB,
    SECONDS_PER_HOUR,
    Estimate,
    Rates,
    count_text,
    field_number,
    format_usd,
    gb_text,
    missing,
    price_text,
    signed_text,
    unknown_field,
)

if TYPE_CHECKING:
    from medic.alarms.signals import Target
    from medic.aws import AwsClients
    from medic.clock import Clock
    from medic.facts import Facts

PC_DIMENSION: Final = "lambda:function:ProvisionedConcurrency"
POLL_INTERVAL_S = 5.0


def _as_count(value: Any, name: str) -> int:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise GuardrailRefused("valid_value", ">= 0", value, f"{name} must be a finite count")
    return math.ceil(number)


def read_pc(clients: AwsClients, function_name: str, qualifier: str) -> dict[str, Scalar]:
    client = clients.lambda_
    try:
        config = client.get_provisioned_concurrency_config(FunctionName=function_name, Qualifier=qualifier)
    except client.exceptions.ProvisionedConcurrencyConfigNotFoundException:
        return {"provisioned_concurrency": 0, "allocated": 0, "status": "NONE", "status_reason": None}
    return {
        "provisioned_concurrency": config.get("RequestedProvisionedConcurrentExecutions", 0),
        "allocated": config.get("AllocatedProvisionedConcurrentExecutions", 0),
        "status": config.get("Status", "UNKNOWN"),
        "status_reason": config.get("StatusReason"),
    }


def wait_for_pc(
    clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float, at_least: int
) -> dict[str, Scalar]:
    """Poll the alias's PC until it is READY with at least `at_least` allocated, FAILED, or timed out."""
    assert action.function_name and action.qualifier
    deadline = clock.now().timestamp() + timeout_s
    while True:
        live = read_pc(clients, action.function_name, action.qualifier)
        allocated = int(live["allocated"] or 0)
        if live["status"] == "FAILED":
            raise ActionFailed(action.kind, action.target, f"provisioned concurrency FAILED: {live['status_reason']}")
        if live["status"] == "READY" and allocated >= at_least:
            return live
        if clock.now().timestamp() >= deadline:
            raise ActionFailed(
                action.kind,
                action.target,
                f"provisioned concurrency not READY after {timeout_s:.0f}s (status {live['status']}, "
                f"allocated {allocated} of {at_least})",
            )
        clock.sleep(POLL_INTERVAL_S)


class SetProvisionedConcurrency(Action):
    """Set the provisioned-concurrency floor of an alias (or version): at least 1 (Lambda's minimum; a plan for 0 is
    refused, as $LATEST or an unqualified target is: AWS would refuse the call).

    Runbook example::

        actions:
          - kind: set_provisioned_concurrency
            params: {concurrency: "ceil(peak_concurrency * 1.2)"}
    """

    kind = "set_provisioned_concurrency"
    read_permissions = ("lambda:GetProvisionedConcurrencyConfig",)
    must_change = True
    pc_fields = ("provisioned_concurrency",)
    permissions = (
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:PutProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
    )
    params = ("concurrency",)

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        function_name, qualifier = qualified(target, self.kind)
        after = _as_count(params["concurrency"], "concurrency")
        if after < 1:
            raise GuardrailRefused(
                "valid_value",
                ">= 1",
                after,
                f"{self.kind}: PutProvisionedConcurrencyConfig takes at least 1 execution; Medic never plans the "
                f"removal of {function_name}:{qualifier}'s provisioned concurrency",
            )
        before = facts.pc_requested or 0
        return [
            PlannedAction(
                kind=self.kind,
                target=f"{function_name}:{qualifier}",
                function_name=function_name,
                qualifier=qualifier,
                primary="provisioned_concurrency",
                before={"provisioned_concurrency": before},
                after={"provisioned_concurrency": after},
                text=f"Provisioned concurrency on {function_name}:{qualifier}: {before} → {after}",
            )
        ]

    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        assert action.function_name and action.qualifier
        live = read_pc(clients, action.function_name, action.qualifier)
        return {"provisioned_concurrency": live["provisioned_concurrency"]}

    def template_properties(self, action: PlannedAction) -> list[TemplateProperty]:
        qualifier = action.qualifier or ""
        version = qualifier.isdigit()
        sam = "{function}.ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions"
        sam += f" (with AutoPublishAlias: {qualifier})"
        return [
            TemplateProperty(
                resource_type="AWS::Lambda::Version" if version else "AWS::Lambda::Alias",
                resource=f"{{function}}'s {'version' if version else 'alias'} {qualifier}",
                property="ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions",
                field="provisioned_concurrency",
                value=action.after.get("provisioned_concurrency"),
                sam="" if version else sam,
            )
        ]

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        assert action.function_name and action.qualifier
        response = clients.lambda_.put_provisioned_concurrency_config(
            FunctionName=action.function_name,
            Qualifier=action.qualifier,
            ProvisionedConcurrentExecutions=int(action.after["provisioned_concurrency"] or 0),
        )
        return str(response["ResponseMetadata"].get("RequestId", ""))

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        live = wait_for_pc(clients, action, clock, timeout_s, int(action.after["provisioned_concurrency"] or 0))
        return {"provisioned_concurrency": live["allocated"]}

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        assert action.function_name and action.qualifier
        before = int(action.before["provisioned_concurrency"] or 0)
        if before == 0:
            response: Any = clients.lambda_.delete_provisioned_concurrency_config(
                FunctionName=action.function_name, Qualifier=action.qualifier
            )
        else:
            response = clients.lambda_.put_provisioned_concurrency_config(
                FunctionName=action.function_name, Qualifier=action.qualifier, ProvisionedConcurrentExecutions=before
            )
        return str(response["ResponseMetadata"].get("RequestId", ""))

    def estimate(self, action: PlannedAction, facts: Facts, rates: Rates) -> Estimate:
        before = field_number(action.before, "provisioned_concurrency")
        after = field_number(action.after, "provisioned_concurrency")
        if before is None or after is None:
            side = "before" if before is None else "after"
            return None, unknown_field(action, side, "provisioned_concurrency")
        if facts.memory_mb is None:
            return None, missing(facts, "memory_mb")
        prices, hours = rates.lambda_, rates.table.hours_per_month
        delta = after - before
        usd = delta * facts.memory_mb / MB_PER_GB * rates.month_s * prices.provisioned_gb_s
        return usd, (
            f"idle cost of the provisioned pool: {signed_text(delta)} executions × {gb_text(facts.memory_mb)} × "
            f"{count_text(hours)} h × {SECONDS_PER_HOUR} s × {price_text(prices.provisioned_gb_s)}/GB-s "
            f"({rates.label}); invocations served on it are billed "
            f"{price_text(prices.provisioned_duration_gb_s)}/GB-s instead of {price_text(prices.duration_gb_s)}/GB-s "
            "on demand, which offsets part of it"
        )


class SetAutoscalingBounds(Action):
    """Set min/max of the alias's `lambda:function:ProvisionedConcurrency` scalable target.

    Raising both together stops target tracking from scaling back below today's demand; Application
    Auto Scaling scales PC out to a new minimum at once. On an alias with a fixed floor (no scalable target
    yet), the action *enables* autoscaling: it registers the target with the new bounds and adds a target
    tracking policy on `LambdaProvisionedConcurrencyUtilization` at 70% (the cost lever for an idle flat
    pool); rollback removes both and puts the fixed floor back.

    Runbook example::

        actions:
          - kind: set_autoscaling_bounds
            params: {min: "max(autoscaling_min, ceil(peak_concurrency))", max: "ceil(peak_concurrency * 1.25)"}
    """

    kind = "set_autoscaling_bounds"
    read_permissions = ("application-autoscaling:DescribeScalableTargets",)
    must_change = True
    pc_fields = ("min_capacity", "max_capacity")
    permissions = (
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeleteScalingPolicy",
        # RegisterScalableTarget creates Application Auto Scaling's Lambda service-linked role the first time in an
        # account, with the caller's permission (template.yaml confines it to that role).
        "iam:CreateServiceLinkedRole",
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:PutProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
    )
    params = ("min", "max")
    #: Target utilization of the policy added when autoscaling is enabled (AWS's documented example value).
    TARGET_UTILIZATION = 0.7

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        function_name, qualifier = qualified(target, self.kind)
        new_min, new_max = _as_count(params["min"], "min"), _as_count(params["max"], "max")
        new_max = max(new_max, new_min)
        resource: dict[str, Scalar] = {}
        text = (
            f"Autoscaling of PC on {function_name}:{qualifier}: min {facts.autoscaling_min} → {new_min}, "
            f"max {facts.autoscaling_max} → {new_max}"
        )
        if facts.has_autoscaling is False:
            floor = facts.pc_requested or 0
            resource = {"creates_target": True, "fixed_floor": floor, "target_utilization": self.TARGET_UTILIZATION}
            text = (
                f"Enable autoscaling of PC on {function_name}:{qualifier} (today a fixed floor of {floor}): "
                f"min {new_min}, max {new_max}, target tracking at {self.TARGET_UTILIZATION:.0%} utilization"
            )
        return [
            PlannedAction(
                kind=self.kind,
                target=f"{function_name}:{qualifier}",
                function_name=function_name,
                qualifier=qualifier,
                primary="max_capacity",
                before={"min_capacity": facts.autoscaling_min, "max_capacity": facts.autoscaling_max},
                after={"min_capacity": new_min, "max_capacity": new_max},
                resource=resource,
                text=text,
            )
        ]

    def template_properties(self, action: PlannedAction) -> list[TemplateProperty]:
        return [
            TemplateProperty(
                resource_type="AWS::ApplicationAutoScaling::ScalableTarget",
                resource=f"the scalable target of {{function}}:{action.qualifier}",
                property=prop,
                field=field,
                value=action.after.get(field),
            )
            for field, prop in (("min_capacity", "MinCapacity"), ("max_capacity", "MaxCapacity"))
        ]

    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        targets = clients.autoscaling.describe_scalable_targets(
            ServiceNamespace="lambda", ResourceIds=[self._resource(action)], ScalableDimension=PC_DIMENSION
        )["ScalableTargets"]
        if not targets:
            return {"min_capacity": None, "max_capacity": None}
        return {"min_capacity": targets[0]["MinCapacity"], "max_capacity": targets[0]["MaxCapacity"]}

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        request = self._register(clients, action, action.after)
        if action.resource.get("creates_target"):
            clients.autoscaling.put_scaling_policy(  # same name: idempotent
                PolicyName=self._policy(action),
                ServiceNamespace="lambda",
                ResourceId=self._resource(action),
                ScalableDimension=PC_DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": float(action.resource.get("target_utilization") or self.TARGET_UTILIZATION),
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"
                    },
                },
            )
        return request

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        live = wait_for_pc(clients, action, clock, timeout_s, int(action.after["min_capacity"] or 0))
        observed = self.read_live(clients, action)
        observed["provisioned_concurrency"] = live["allocated"]
        return observed

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        if action.resource.get("creates_target"):
            return self._disable(clients, action)
        if action.before.get("min_capacity") is None:
            raise ActionFailed(self.kind, action.target, "no scalable target existed before; nothing to restore")
        return self._register(clients, action, action.before)

    def _disable(self, clients: AwsClients, action: PlannedAction) -> str:
        """Undo enabling: delete the policy and the target, and put the fixed floor back."""
        from botocore.exceptions import ClientError

        aas = clients.autoscaling
        resource_id = self._resource(action)
        for step in ("delete_scaling_policy", "deregister_scalable_target"):
            kwargs: dict[str, Any] = {
                "ServiceNamespace": "lambda",
                "ResourceId": resource_id,
                "ScalableDimension": PC_DIMENSION,
            }
            if step == "delete_scaling_policy":
                kwargs["PolicyName"] = self._policy(action)
            try:
                getattr(aas, step)(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("ObjectNotFoundException", "ValidationException"):
                    raise
        assert action.function_name and action.qualifier
        floor = int(action.resource.get("fixed_floor") or 0)
        if floor:
            response: Any = clients.lambda_.put_provisioned_concurrency_config(
                FunctionName=action.function_name, Qualifier=action.qualifier, ProvisionedConcurrentExecutions=floor
            )
        else:
            response = clients.lambda_.delete_provisioned_concurrency_config(
                FunctionName=action.function_name, Qualifier=action.qualifier
            )
        return str(response["ResponseMetadata"].get("RequestId", ""))

    def _register(self, clients: AwsClients, action: PlannedAction, bounds: dict[str, Scalar]) -> str:
        response = clients.autoscaling.register_scalable_target(
            ServiceNamespace="lambda",
            ResourceId=self._resource(action),
            ScalableDimension=PC_DIMENSION,
            MinCapacity=int(bounds["min_capacity"] or 0),
            MaxCapacity=int(bounds["max_capacity"] or 0),
        )
        return str(response["ResponseMetadata"].get("RequestId", ""))

    @staticmethod
    def _policy(action: PlannedAction) -> str:
        return f"medic-{action.function_name}-{action.qualifier}-utilization"

    @staticmethod
    def _resource(action: PlannedAction) -> str:
        return f"function:{action.function_name}:{action.qualifier}"

    def estimate(self, action: PlannedAction, facts: Facts, rates: Rates) -> Estimate:
        new_min, new_max = field_number(action.after, "min_capacity"), field_number(action.after, "max_capacity")
        if new_min is None or new_max is None:
            return None, unknown_field(action, "after", "min_capacity" if new_min is None else "max_capacity")
        # Without a scalable target today, the floor and the ceiling are both the fixed PC.
        fixed = float(facts.pc_requested) if facts.pc_requested is not None else None
        old_min = field_number(action.before, "min_capacity")
        old_max = field_number(action.before, "max_capacity")
        old_min = fixed if old_min is None else old_min
        old_max = fixed if old_max is None else old_max
        if old_min is None or old_max is None:
            return None, missing(facts, "autoscaling_min" if old_min is None else "autoscaling_max", "pc_requested")
        if facts.memory_mb is None:
            return None, missing(facts, "memory_mb")
        prices, hours = rates.lambda_, rates.table.hours_per_month
        per_execution = facts.memory_mb / MB_PER_GB * rates.month_s * prices.provisioned_gb_s
        usd = (new_min - old_min) * per_execution
        basis = (
            f"the floor you now always pay: min {count_text(old_min)} → {count_text(new_min)} "
            f"({signed_text(new_min - old_min)} executions) × {gb_text(facts.memory_mb)} × {count_text(hours)} h × "
            f"{SECONDS_PER_HOUR} s × {price_text(prices.provisioned_gb_s)}/GB-s"
        )
        if new_max > old_max:
            basis += (
                f"; up to {format_usd((new_max - old_max) * per_execution)} more if it scales to the new max "
                f"(max {count_text(old_max)} → {count_text(new_max)})"
            )
        return usd, f"{basis} ({rates.label})"
