"""The account's configuration read back from the world through boto3 (after Medic's executor ran), for the model
to continue with: what an action may have changed, read the way AWS serves it.

Read: the account's concurrency limit (GetAccountSettings), each function's memory (per version), reserved
concurrency, aliases (version, routing), PC per alias (Requested/Allocated/Status), the Application Auto Scaling
target (Min/MaxCapacity), its target-tracking TargetValue and scheduled actions (``cron(M H * * ? *)`` and
``at(...)`` schedules; others are ignored), the SQS event source mappings (MaximumConcurrency, BatchSize), and the
EventBridge rules' targets (an async function whose rule now targets an SQS queue its mapping reads has a buffer).
What the world does not hold (the workloads, the databases, the model's assumptions) comes from `base`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from medic_tools.world.workload.config import (
    AccountConfig,
    AliasConfig,
    Autoscaling,
    EventSourceConfig,
    FunctionConfig,
    ProvisionedConcurrency,
    Scheduled,
)
from medic_tools.world.workload.pools import SECONDS_PER_DAY

PC_DIMENSION = "lambda:function:ProvisionedConcurrency"
_CRON = re.compile(r"^cron\((\d{1,2}) (\d{1,2}) \S+ \S+ \S+(?: \S+)?\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


def schedule_offset(schedule: str, start: datetime) -> int | None:
    """Seconds after `start` (modulo a day) at which a scheduled action runs; None for a schedule we do not model.

    >>> from datetime import UTC
    >>> schedule_offset("cron(45 17 * * ? *)", datetime(2026, 1, 1, 17, 30, tzinfo=UTC))
    900
    """
    cron = _CRON.match(schedule)
    if cron:
        minute, hour = int(cron.group(1)), int(cron.group(2))
        day_start = start.replace(hour=0, minute=0, second=0, microsecond=0)
        return round((day_start + timedelta(hours=hour, minutes=minute) - start).total_seconds()) % SECONDS_PER_DAY
    at = _AT.match(schedule)
    if at:
        moment = datetime.fromisoformat(at.group(1)).replace(tzinfo=start.tzinfo)
        return round((moment - start).total_seconds()) % SECONDS_PER_DAY
    return None


def read_live_config(clients: Any, base: AccountConfig, start: datetime) -> AccountConfig:
    """`base` with what the world holds now (`clients`: Medic's AwsClients or anything with the same clients)."""
    lam, aas = clients.lambda_, clients.autoscaling
    limit = int(lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
    targets = {t["ResourceId"]: t for t in _pages(aas, "describe_scalable_targets", "ScalableTargets")}
    policies = {p["ResourceId"]: p for p in _pages(aas, "describe_scaling_policies", "ScalingPolicies")}
    scheduled: dict[str, list[dict[str, Any]]] = {}
    for action in _pages(aas, "describe_scheduled_actions", "ScheduledActions"):
        scheduled.setdefault(action["ResourceId"], []).append(action)
    functions = []
    for function in base.functions:
        functions.append(_function(clients, function, targets, policies, scheduled, start))
    return replace(base, limit=limit, functions=tuple(functions))


def _pages(client: Any, operation: str, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(ServiceNamespace="lambda"):
        found.extend(page.get(key, []))
    return found


def _function(
    clients: Any,
    base: FunctionConfig,
    targets: dict[str, Any],
    policies: dict[str, Any],
    scheduled: dict[str, list[dict[str, Any]]],
    start: datetime,
) -> FunctionConfig:
    lam = clients.lambda_
    name = base.name
    function = lam.get_function(FunctionName=name)
    configuration = function["Configuration"]
    reserved = (function.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    versions = tuple(
        (v["Version"], int(v["MemorySize"]))
        for v in lam.list_versions_by_function(FunctionName=name)["Versions"]
        if v["Version"] != "$LATEST"
    )
    aliases = []
    for alias in lam.list_aliases(FunctionName=name)["Aliases"]:
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        resource = f"function:{name}:{alias['Name']}"
        pc = _provisioned(
            lam, name, alias["Name"], targets.get(resource), policies.get(resource), scheduled.get(resource, []), start
        )
        aliases.append(AliasConfig(alias["Name"], alias["FunctionVersion"], tuple(weights.items()), pc))
    sources = []
    for mapping in lam.list_event_source_mappings(FunctionName=name).get("EventSourceMappings", []):
        queue = str(mapping.get("EventSourceArn", "")).rsplit(":", 1)[-1]
        maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
        sources.append(EventSourceConfig(queue, maximum, int(mapping.get("BatchSize") or 10)))
    path = _buffered_path(clients, base, {source.queue for source in sources})
    return replace(
        base,
        memory_mb=int(configuration["MemorySize"]),
        timeout_s=int(configuration["Timeout"]),
        reserved=None if reserved is None else int(reserved),
        versions=versions,
        aliases=tuple(aliases),
        event_sources=tuple(sources),
        path=path,
    )


def _provisioned(
    lam: Any,
    function: str,
    alias: str,
    target: dict[str, Any] | None,
    policy: dict[str, Any] | None,
    actions: list[dict[str, Any]],
    start: datetime,
) -> ProvisionedConcurrency | None:
    try:
        config = lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier=alias)
    except lam.exceptions.ProvisionedConcurrencyConfigNotFoundException:
        return None
    autoscaling = None
    if target is not None:
        value = (policy or {}).get("TargetTrackingScalingPolicyConfiguration", {}).get("TargetValue", 0.7)
        times = []
        for action in actions:
            offset = schedule_offset(action.get("Schedule", ""), start)
            bounds = action.get("ScalableTargetAction") or {}
            if offset is not None and bounds.get("MinCapacity") is not None:
                times.append(Scheduled(offset, int(bounds["MinCapacity"]), bounds.get("MaxCapacity")))
        autoscaling = Autoscaling(int(target["MinCapacity"]), int(target["MaxCapacity"]), float(value), tuple(times))
    return ProvisionedConcurrency(
        requested=int(config["RequestedProvisionedConcurrentExecutions"]),
        allocated=int(config.get("AllocatedProvisionedConcurrentExecutions") or 0),
        status=str(config.get("Status", "READY")),
        autoscaling=autoscaling,
    )


def _buffered_path(clients: Any, base: FunctionConfig, queues: set[str]) -> str | None:
    """`sqs` when an async function's traffic now goes through a queue its event source mapping reads."""
    if base.workload is None or base.workload.invoke.path != "async" or not queues:
        return base.path
    events = clients.client("events")
    for rule in events.list_rules().get("Rules", []):
        for target in events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", []):
            arn = str(target.get("Arn", ""))
            if ":sqs:" in arn and arn.rsplit(":", 1)[-1] in queues:
                return "sqs"
    return base.path
