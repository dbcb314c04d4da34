"""Pre-warm provisioned concurrency on a schedule, for a burst that recurs at the same time of day."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from medic.actions.base import Action, PlannedAction, Scalar
from medic.actions.provisioned import PC_DIMENSION, read_pc
from medic.actions.qualifiers import alias_of
from medic.aws import error_code, request_id
from medic.errors import ActionFailed, GuardrailRefused
from medic.planning.cost import (
    MB_PER_GB,
    PREWARM_DAYS_PER_MONTH,
    SECONDS_PER_HOUR,
    UNKNOWN,
    Estimate,
    Rates,
    count_text,
    daily_minute,
    field_number,
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

MINUTES_PER_DAY: Final = 1440
_NOT_FOUND = frozenset({"ObjectNotFoundException", "ValidationException"})


def daily_cron(minute_of_day: int) -> str:
    """An Application Auto Scaling daily schedule at a UTC minute of the day.

    >>> daily_cron(525)
    'cron(45 8 * * ? *)'
    """
    minute_of_day %= MINUTES_PER_DAY
    return f"cron({minute_of_day % 60} {minute_of_day // 60} * * ? *)"


def scheduled_action_names(function_name: str, alias: str) -> tuple[str, str]:
    base = f"medic-prewarm-{function_name}-{alias}"
    return f"{base}-up", f"{base}-down"


class SchedulePrewarm(Action):
    """Raise an alias's provisioned-concurrency floor every day before a recurring burst, and lower it after.

    Two Application Auto Scaling scheduled actions on the alias's ``lambda:function:ProvisionedConcurrency``
    scalable target, daily, in UTC (the default time zone of scheduled actions): ``medic-prewarm-<fn>-<alias>-up``
    at `start_minute_of_day` (modulo 1440) sets MinCapacity to `concurrency` (MaxCapacity to at least that), and
    ``…-down`` `duration_min` minutes later restores the previous minimum and maximum. Without a scalable target,
    one is registered (minimum: today's PC, maximum: `concurrency`) and deregistered again by rollback. Rollback
    deletes both scheduled actions and puts the bounds (or, for a target Medic created, the PC) back where they were,
    in case the "up" action already fired.

    ``before`` is ``{"prewarm_concurrency": None, "min_capacity", "max_capacity"}`` (the facts hold no scheduled
    actions, so an existing pre-warm shows as drift at apply time; the bounds are what "down" restores, so their
    drift is caught too); ``after`` is ``{"prewarm_concurrency", "schedule", "schedule_end"}``, all read back by
    `read_live` from the scheduled actions.

    Runbook example::

        actions:
          - kind: schedule_prewarm
            params: {concurrency: "ceil(function_peak_concurrency * 1.2)",
                     start_minute_of_day: "ramp_start_minute_of_day - 15", duration_min: 60}
    """

    kind = "schedule_prewarm"
    must_change = True
    pc_fields = ("prewarm_concurrency",)
    permissions = (
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:DescribeScheduledActions",
        "application-autoscaling:PutScheduledAction",
        "application-autoscaling:DeleteScheduledAction",
        # RegisterScalableTarget creates Application Auto Scaling's Lambda service-linked role the first time in an
        # account, with the caller's permission (template.yaml confines it to that role).
        "iam:CreateServiceLinkedRole",
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:PutProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
    )
    params = ("concurrency", "start_minute_of_day", "duration_min")

    def plan(self, target: Target, params: dict[str, Any], facts: Facts) -> list[PlannedAction]:
        function_name, alias = alias_of(target, self.kind)
        concurrency = math.ceil(_finite(params["concurrency"], "concurrency"))
        if concurrency < 1:
            raise GuardrailRefused("valid_value", ">= 1", concurrency, "concurrency to pre-warm must be at least 1")
        start = math.floor(_finite(params["start_minute_of_day"], "start_minute_of_day")) % MINUTES_PER_DAY
        duration = math.ceil(_finite(params["duration_min"], "duration_min"))
        if not 1 <= duration < MINUTES_PER_DAY:
            raise GuardrailRefused(
                "valid_value",
                f"1..{MINUTES_PER_DAY - 1}",
                duration,
                "duration_min must be under a day: an all-day pre-warm is a PC floor",
            )
        if facts.has_autoscaling is None or (
            facts.has_autoscaling and None in (facts.autoscaling_min, facts.autoscaling_max)
        ):
            raise GuardrailRefused(
                "facts",
                "the scalable target known",
                "unknown",
                f"{self.kind}: the autoscaling of {function_name}:{alias} could not be read",
            )
        existed = bool(facts.has_autoscaling)
        pc = facts.pc_requested or 0
        restore_min = int(facts.autoscaling_min or 0) if existed else pc
        restore_max = int(facts.autoscaling_max or 0) if existed else None
        up, down = scheduled_action_names(function_name, alias)
        schedule, schedule_end = daily_cron(start), daily_cron(start + duration)
        end = (start + duration) % MINUTES_PER_DAY
        created = "" if existed else f" (registers a scalable target {pc}–{concurrency}, removed by rollback)"
        return [
            PlannedAction(
                kind=self.kind,
                target=f"{function_name}:{alias}",
                function_name=function_name,
                qualifier=alias,
                primary="prewarm_concurrency",
                before={
                    "prewarm_concurrency": None,
                    "min_capacity": restore_min if existed else None,
                    "max_capacity": restore_max,
                },
                after={"prewarm_concurrency": concurrency, "schedule": schedule, "schedule_end": schedule_end},
                text=(
                    f"Pre-warm {function_name}:{alias} daily: provisioned concurrency ≥ {concurrency} from "
                    f"{start // 60:02d}:{start % 60:02d} to {end // 60:02d}:{end % 60:02d} UTC ({duration} min), "
                    f"then back to min {restore_min}{created}"
                ),
                resource={
                    "resource_id": f"function:{function_name}:{alias}",
                    "up_action": up,
                    "down_action": down,
                    "target_existed": existed,
                    "restore_min": restore_min,
                    "restore_max": restore_max,
                },
            )
        ]

    def read_live(self, clients: AwsClients, action: PlannedAction) -> dict[str, Scalar]:
        up, down = self._scheduled(clients, action)
        bounds = self._bounds(clients, action)
        return {
            "prewarm_concurrency": (up.get("ScalableTargetAction") or {}).get("MinCapacity") if up else None,
            "schedule": up.get("Schedule") if up else None,
            "schedule_end": down.get("Schedule") if down else None,
            "min_capacity": bounds[0] if bounds else None,
            "max_capacity": bounds[1] if bounds else None,
        }

    def apply(self, clients: AwsClients, action: PlannedAction) -> str:
        concurrency = int(action.after["prewarm_concurrency"] or 0)
        restore_min = int(action.resource["restore_min"] or 0)
        existed = bool(action.resource["target_existed"])
        if existed:
            restore_max = int(action.resource["restore_max"] or 0)
        else:
            restore_max = max(concurrency, restore_min)
            if self._bounds(clients, action) is None:
                self._register(clients, action, restore_min, restore_max)
        self._put(
            clients,
            action,
            str(action.resource["up_action"]),
            str(action.after["schedule"]),
            concurrency,
            max(restore_max, concurrency),
        )
        return self._put(
            clients,
            action,
            str(action.resource["down_action"]),
            str(action.after["schedule_end"]),
            restore_min,
            restore_max,
        )

    def wait(self, clients: AwsClients, action: PlannedAction, clock: Clock, timeout_s: float) -> dict[str, Scalar]:
        live = self.read_live(clients, action)
        wrong = {key: live.get(key) for key, value in action.after.items() if live.get(key) != value}
        if wrong:
            raise ActionFailed(self.kind, action.target, f"scheduled actions read back as {wrong}")
        return live

    def rollback(self, clients: AwsClients, action: PlannedAction) -> str:
        autoscaling = clients.autoscaling
        response: Any = {}
        for name in (action.resource["up_action"], action.resource["down_action"]):
            try:
                response = autoscaling.delete_scheduled_action(
                    ServiceNamespace="lambda",
                    ScheduledActionName=str(name),
                    ResourceId=str(action.resource["resource_id"]),
                    ScalableDimension=PC_DIMENSION,
                )
            except autoscaling.exceptions.ClientError as exc:
                if error_code(exc) not in _NOT_FOUND:
                    raise
        restore_min = int(action.resource["restore_min"] or 0)
        if action.resource["target_existed"]:
            # The "up" action may have fired: the bounds it set outlive it.
            return self._register(clients, action, restore_min, int(action.resource["restore_max"] or 0))
        try:
            response = autoscaling.deregister_scalable_target(
                ServiceNamespace="lambda",
                ResourceId=str(action.resource["resource_id"]),
                ScalableDimension=PC_DIMENSION,
            )
        except autoscaling.exceptions.ClientError as exc:
            if error_code(exc) not in _NOT_FOUND:
                raise
        self._restore_pc(clients, action, restore_min)
        return request_id(dict(response))

    def _restore_pc(self, clients: AwsClients, action: PlannedAction, pc: int) -> None:
        """Deregistering leaves PC where the "up" action put it: set it back to what it was before."""
        assert action.function_name and action.qualifier
        name, qualifier = action.function_name, action.qualifier
        if read_pc(clients, name, qualifier)["provisioned_concurrency"] == pc:
            return
        if pc:
            clients.lambda_.put_provisioned_concurrency_config(
                FunctionName=name, Qualifier=qualifier, ProvisionedConcurrentExecutions=pc
            )
        else:
            clients.lambda_.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)

    def _scheduled(self, clients: AwsClients, action: PlannedAction) -> tuple[dict[str, Any], dict[str, Any]]:
        up, down = str(action.resource["up_action"]), str(action.resource["down_action"])
        found = clients.autoscaling.describe_scheduled_actions(
            ServiceNamespace="lambda",
            ResourceId=str(action.resource["resource_id"]),
            ScalableDimension=PC_DIMENSION,
            ScheduledActionNames=[up, down],
        )["ScheduledActions"]
        by_name: dict[str, dict[str, Any]] = {str(a["ScheduledActionName"]): dict(a) for a in found}
        return by_name.get(up, {}), by_name.get(down, {})

    def _bounds(self, clients: AwsClients, action: PlannedAction) -> tuple[int, int] | None:
        targets = clients.autoscaling.describe_scalable_targets(
            ServiceNamespace="lambda", ResourceIds=[str(action.resource["resource_id"])], ScalableDimension=PC_DIMENSION
        )["ScalableTargets"]
        return (targets[0]["MinCapacity"], targets[0]["MaxCapacity"]) if targets else None

    def _register(self, clients: AwsClients, action: PlannedAction, low: int, high: int) -> str:
        response = clients.autoscaling.register_scalable_target(
            ServiceNamespace="lambda",
            ResourceId=str(action.resource["resource_id"]),
            ScalableDimension=PC_DIMENSION,
            MinCapacity=low,
            MaxCapacity=high,
        )
        return request_id(dict(response))

    def _put(self, clients: AwsClients, action: PlannedAction, name: str, schedule: str, low: int, high: int) -> str:
        response = clients.autoscaling.put_scheduled_action(
            ServiceNamespace="lambda",
            ScheduledActionName=name,
            ResourceId=str(action.resource["resource_id"]),
            ScalableDimension=PC_DIMENSION,
            Schedule=schedule,
            ScalableTargetAction={"MinCapacity": low, "MaxCapacity": high},
        )
        return request_id(dict(response))

    def estimate(self, action: PlannedAction, facts: Facts, rates: Rates) -> Estimate:
        """Needs after.prewarm_concurrency and the window: after.duration_min (or resource.duration_min), else the
        minutes between after.schedule and after.schedule_end (daily crons, as SchedulePrewarm plans them)."""
        concurrency = field_number(action.after, "prewarm_concurrency")
        if concurrency is None:
            return None, unknown_field(action, "after", "prewarm_concurrency")
        duration = field_number(action.after, "duration_min")
        if duration is None:
            duration = field_number(action.resource, "duration_min")
        if duration is None:
            start, end = (
                daily_minute(action.after.get("schedule")),
                daily_minute(action.after.get("schedule_end")),
            )
            if start is None or end is None:
                return (
                    None,
                    f"{UNKNOWN}the pre-warm window (after.duration_min, or after.schedule and schedule_end)",
                )
            duration = float((end - start) % (24 * 60))
        if facts.pc_requested is None:
            return None, missing(facts, "pc_requested")
        if facts.memory_mb is None:
            return None, missing(facts, "memory_mb")
        prices = rates.lambda_
        # The "up" action only ever raises the floor: below today's PC it adds nothing.
        added = max(0.0, concurrency - facts.pc_requested)
        hours = duration / 60
        usd = added * facts.memory_mb / MB_PER_GB * hours * PREWARM_DAYS_PER_MONTH * SECONDS_PER_HOUR
        usd *= prices.provisioned_gb_s
        return usd, (
            f"pre-warmed pool: {count_text(concurrency)} − {facts.pc_requested} provisioned today = "
            f"{signed_text(added)} executions × {gb_text(facts.memory_mb)} × {hours:g} h ({count_text(duration)} min) "
            f"a day × {PREWARM_DAYS_PER_MONTH} days × {SECONDS_PER_HOUR} s × "
            f"{price_text(prices.provisioned_gb_s)}/GB-s ({rates.label})"
        )


def _finite(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise GuardrailRefused("valid_value", "a finite number", value, f"{name} must be a finite number")
    return number
