"""Building the parts of a scenario's world that the workload format adds, through the AWS APIs as documented:
LoggingConfig on CreateFunction, published versions, weighted aliases (RoutingConfig), a partial PC allocation,
Application Auto Scaling scheduled actions, and the model's series and REPORT lines.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from medic_tools.world.workload.account import ModelledAccount, account_config
from medic_tools.world.workload.alarm import AlarmView
from medic_tools.world.workload.publish import put_report_lines, put_series

if TYPE_CHECKING:
    from medic_tools.scenario import AliasSpec, FunctionSpec, WorldSpec

PC_DIMENSION = "lambda:function:ProvisionedConcurrency"


def logging_config(spec: FunctionSpec) -> dict[str, Any]:
    """CreateFunction's LoggingConfig (LogFormat Text|JSON, LogGroup), or nothing for Lambda's defaults."""
    if spec.logging is None:
        return {}
    config: dict[str, Any] = {"LogFormat": spec.logging.format}
    if spec.logging.log_group:
        config["LogGroup"] = spec.logging.log_group
    return {"LoggingConfig": config}


def publish_versions(lam: Any, spec: FunctionSpec) -> list[str]:
    """Publish versions 1..spec.versions (each after a configuration change, or Lambda returns the same one)."""
    versions = [lam.publish_version(FunctionName=spec.name)["Version"]]
    for number in range(2, spec.versions + 1):
        lam.update_function_configuration(FunctionName=spec.name, Description=f"release {number}")
        versions.append(lam.publish_version(FunctionName=spec.name)["Version"])
    return versions


def alias_kwargs(spec: FunctionSpec, alias: AliasSpec, versions: list[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "FunctionName": spec.name,
        "Name": alias.name,
        "FunctionVersion": alias.version or versions[-1],
    }
    if alias.routing:
        kwargs["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.routing)}
    return kwargs


def scheduled_actions(aas: Any, spec: FunctionSpec, alias: AliasSpec, window_start: datetime) -> list[str]:
    """A daily scheduled action per pre-warm (cron at the time of day `at_min` after the window's start)."""
    created = []
    assert alias.autoscaling is not None
    for index, action in enumerate(alias.autoscaling.scheduled):
        moment = window_start + timedelta(minutes=action.at_min)
        target: dict[str, int] = {"MinCapacity": action.min}
        if action.max is not None:
            target["MaxCapacity"] = action.max
        name = f"{spec.name}-{alias.name}-prewarm-{index}"
        aas.put_scheduled_action(
            ServiceNamespace="lambda",
            ScheduledActionName=name,
            ResourceId=f"function:{spec.name}:{alias.name}",
            ScalableDimension=PC_DIMENSION,
            Schedule=f"cron({moment.minute} {moment.hour} * * ? *)",
            ScalableTargetAction=target,
        )
        created.append(f"{name} at {moment:%H:%M} UTC → min {action.min}")
    return created


def model_world(clients: Any, world: WorldSpec, window_end: datetime) -> ModelledAccount:
    """Run the model over the window and write its series and REPORT lines into the world; the PC that target
    tracking or a scheduled action changed during the window is put into the world too."""
    account = ModelledAccount(account_config(world), window_end=window_end)
    put_series(clients.cloudwatch, account.series(), account.start)
    put_report_lines(clients.client("logs"), account.reports())
    account.synced = sync_provisioned(clients, account)
    return account


def sync_provisioned(clients: Any, account: ModelledAccount) -> list[str]:
    """Make the world's PC what the model's Application Auto Scaling left at the window's end (the world serves
    the configuration, the model its dynamics); a value Lambda refuses stays as it was, as a failed scaling
    activity would. Returns what changed."""
    lam = clients.lambda_
    last = account.trace.provisioned.get(account.config.window_minutes - 1, {})
    changed = []
    for (function, alias), state in sorted(last.items()):
        configured = account.config.function(function).alias(alias)
        if configured is None or configured.pc is None or state.status == "FAILED":
            continue
        if state.requested == configured.pc.requested or state.requested < 1:
            continue
        try:
            lam.put_provisioned_concurrency_config(
                FunctionName=function, Qualifier=alias, ProvisionedConcurrentExecutions=state.requested
            )
        except lam.exceptions.InvalidParameterValueException:
            continue
        changed.append(f"{function}:{alias} {configured.pc.requested} → {state.requested}")
    return changed


def continue_world(clients: Any, account: ModelledAccount, fixed: Any, fix_at: datetime, until: datetime) -> None:
    """Model the time after the fix with the world's live configuration and write it."""
    first, last = account.continue_after_fix(fixed, fix_at, until)
    put_series(clients.cloudwatch, account.series(first, last), account.start)
    put_report_lines(clients.client("logs"), account.reports(first, last))


def run_world_on(clients: Any, account: ModelledAccount, until: datetime) -> None:
    """Model on, with the configuration it has, until `until`, and write it."""
    first, last = account.run_on(until)
    put_series(clients.cloudwatch, account.series(first, last), account.start)
    put_report_lines(clients.client("logs"), account.reports(first, last))


def alarm_view(spec: Any) -> AlarmView:
    """The truth's view of a scenario's `alarm:` (an AlarmSpec)."""
    return AlarmView(
        namespace=spec.namespace,
        metric=spec.metric,
        dimensions=tuple(spec.dimensions.items()),
        stat=spec.stat,
        period=spec.period,
        threshold=spec.threshold,
        comparison=spec.comparison,
        evaluation_periods=spec.evaluation_periods,
        datapoints_to_alarm=spec.datapoints_to_alarm,
    )
