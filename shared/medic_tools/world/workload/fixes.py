"""Fixes as data, and the what-if replay that verifies them: the same workload (same seeds) rerun from the window's
start with the changed configuration.

A `Change` is one setting, named with the vocabulary's action kinds (docs/ARCHITECTURE.md §3) where one fits (plus
`pc_ready`: the provisioned concurrency reaches READY — the init failure fixed, or the allocation finished). `apply`
keeps AWS's rules: PC never above the function's reserved concurrency, the unreserved pool never below its minimum (the
change then carries the reserved or quota change AWS would require too — `with_requirements`).

>>> from medic_tools.world.workload.config import AccountConfig, FunctionConfig
>>> config = AccountConfig(limit=1000, functions=(FunctionConfig("api", 512, 10, reserved=50),))
>>> apply(config, [Change("set_reserved_concurrency", "api", 80)]).function("api").reserved
80
>>> [c.kind for c in with_requirements(config, [Change("set_reserved_concurrency", "api", 950)])]
['set_reserved_concurrency', 'request_quota_increase']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from medic_tools.world.workload.config import (
    LATEST,
    AccountConfig,
    AliasConfig,
    Autoscaling,
    EventSourceConfig,
    FunctionConfig,
    ProvisionedConcurrency,
    Scheduled,
)
from medic_tools.world.workload.model import AccountModel

if TYPE_CHECKING:
    from medic.actions.base import PlannedAction

ChangeKind = Literal[
    "set_reserved_concurrency",
    "request_quota_increase",
    "set_provisioned_concurrency",
    "set_autoscaling_bounds",
    "schedule_prewarm",
    "set_memory",
    "enable_sqs_buffer",
    "set_event_source_max_concurrency",
    "pc_ready",
]
BUFFER_SUFFIX = "-buffer"
NEW_ALIAS = "live"


@dataclass(frozen=True)
class Change:
    """One setting of a fix: `target` is a function, "function:alias", "function:queue" or "account"."""

    kind: ChangeKind
    target: str
    value: int | None = None
    minimum: int | None = None
    at_min: float | None = None

    def describe(self) -> str:
        words = {
            "set_reserved_concurrency": f"reserved concurrency of {self.target} ≥ {self.value}",
            "request_quota_increase": f"account concurrency quota ≥ {self.value}",
            "set_provisioned_concurrency": f"provisioned concurrency on {self.target} ≥ {self.value}",
            "set_autoscaling_bounds": f"autoscaling of {self.target}: min {self.minimum}, max ≥ {self.value}",
            "schedule_prewarm": f"pre-warm {self.target} to {self.value} at minute {self.at_min:g}"
            if self.at_min is not None
            else f"pre-warm {self.target} to {self.value}",
            "set_memory": f"memory of {self.target} ≥ {self.value} MB",
            "enable_sqs_buffer": f"an SQS buffer in front of {self.target} (maximum concurrency {self.value})",
            "set_event_source_max_concurrency": f"MaximumConcurrency of {self.target} ≤ {self.value}",
            "pc_ready": f"provisioned concurrency on {self.target} READY",
        }
        return words[self.kind]


def _split(target: str) -> tuple[str, str | None]:
    name, _, qualifier = target.partition(":")
    return name, qualifier or None


def _alias_for(function: FunctionConfig, alias: str | None) -> tuple[FunctionConfig, AliasConfig]:
    """The alias to put PC on (created when missing); traffic on $LATEST or a version moves to it: PC cannot go on
    $LATEST, and PC on an alias serves only the alias' invocations."""
    found = function.alias(alias) if alias else None
    workload = function.workload
    if found is None:
        version = function.versions[-1][0] if function.versions else "1"
        found = AliasConfig(alias or NEW_ALIAS, version)
        versions = function.versions or (("1", function.memory_mb),)
        function = replace(function, versions=versions, aliases=(*function.aliases, found))
    if workload is not None and (workload.invoke.qualifier == LATEST or workload.invoke.qualifier.isdigit()):
        invoke = workload.invoke.model_copy(update={"qualifier": found.name})
        function = replace(function, workload=workload.model_copy(update={"invoke": invoke}))
    return function, found


def apply(config: AccountConfig, changes: list[Change]) -> AccountConfig:
    """The configuration with the changes made (from the window's start)."""
    for change in changes:
        config = _apply(config, change)
    return config


def _apply(config: AccountConfig, change: Change) -> AccountConfig:
    if change.kind == "request_quota_increase":
        return replace(config, limit=max(config.limit, change.value or 0))
    name, qualifier = _split(change.target)
    function = config.function(name)
    value = change.value or 0
    if change.kind == "set_reserved_concurrency":
        return config.with_function(replace(function, reserved=value))
    if change.kind == "set_memory":
        versions = tuple((version, value) for version, _ in function.versions)
        return config.with_function(replace(function, memory_mb=value, versions=versions))
    if change.kind in ("enable_sqs_buffer", "set_event_source_max_concurrency"):
        queue = qualifier or f"{name}{BUFFER_SUFFIX}"
        sources = tuple(s for s in function.event_sources if s.queue != queue)
        batch = next((s.batch_size for s in function.event_sources if s.queue == queue), 1)
        sources += (EventSourceConfig(queue, max(2, value), batch),)
        path = "sqs" if change.kind == "enable_sqs_buffer" else function.path
        if change.kind == "enable_sqs_buffer" and function.workload is not None:
            invoke = function.workload.invoke.model_copy(update={"queue": queue})
            function = replace(function, workload=function.workload.model_copy(update={"invoke": invoke}))
        return config.with_function(replace(function, event_sources=sources, path=path))
    function, alias = _alias_for(function, qualifier)
    pc = alias.pc
    if change.kind == "pc_ready":
        assert pc is not None
        pc = replace(pc, allocated=pc.requested, status="READY")
    elif change.kind == "set_provisioned_concurrency":
        bounds = pc.autoscaling if pc else None
        if bounds is not None:
            bounds = replace(bounds, min=max(bounds.min, value), max=max(bounds.max, value))
        pc = ProvisionedConcurrency(value, value, "READY", bounds)
    elif change.kind == "set_autoscaling_bounds":
        low = change.minimum if change.minimum is not None else (pc.autoscaling.min if pc and pc.autoscaling else 1)
        old = pc.autoscaling if pc and pc.autoscaling else Autoscaling(low, value)
        bounds = replace(old, min=low, max=value)
        current = min(max(pc.requested if pc else low, low), value)
        pc = ProvisionedConcurrency(current, current, "READY", bounds)
    elif change.kind == "schedule_prewarm":
        at_s = round((change.at_min or 0) * 60)
        old = pc.autoscaling if pc and pc.autoscaling else Autoscaling(0, max(value, 1))
        bounds = replace(old, max=max(old.max, value), scheduled=(*old.scheduled, Scheduled(at_s, value, None)))
        pc = ProvisionedConcurrency(pc.requested if pc else 0, pc.allocated if pc else 0, "READY", bounds)
    config = config.with_function(function)
    return config.with_alias(name, replace(alias, pc=pc))


def with_requirements(config: AccountConfig, changes: list[Change]) -> list[Change]:
    """The changes plus what AWS requires for them: reserved ≥ the function's PC, the unreserved pool ≥ its
    minimum (a quota increase)."""
    changed = apply(config, changes)
    extra: list[Change] = []
    for function in changed.functions:
        pc = sum(a.pc.requested for a in function.aliases if a.pc is not None)
        if function.reserved is not None and pc > function.reserved:
            extra.append(Change("set_reserved_concurrency", function.name, pc))
    changed = apply(changed, extra)
    from medic.planning import pool

    reserved = sum(f.reserved for f in changed.functions if f.reserved is not None)
    pc_unreserved = sum(
        a.pc.requested for f in changed.functions if f.reserved is None for a in f.aliases if a.pc is not None
    )
    unreserved = pool.UnreservedPool(changed.limit - reserved, pc_unreserved, changed.minimum_unreserved)
    if unreserved.left < unreserved.minimum:  # AWS would refuse the changes: the quota must grow by the shortfall
        extra.append(Change("request_quota_increase", "account", changed.limit + unreserved.minimum - unreserved.left))
    return [*changes, *extra]


def replay(config: AccountConfig, until_s: int, *, limitless: bool = False) -> AccountModel:
    """Run the model from the start with `config`; `limitless` lifts every concurrency limit (the demand)."""
    if limitless:
        functions = tuple(replace(f, reserved=None) for f in config.functions)
        config = replace(config, limit=10**7, functions=functions)
    model = AccountModel(config, limitless=limitless)
    model.run(until_s)
    return model


def changes_of(actions: list[PlannedAction]) -> list[Change]:
    """A plan's changes as the model's `Change`s (what the card proposes, to replay it): reserved concurrency, PC,
    autoscaling bounds, memory, the quota, a buffer, an SQS cap. A pre-warm has no time in the modelled window and
    advice changes nothing: both are left out."""
    changes: list[Change] = []
    for action in actions:
        after, name = action.after, action.function_name or ""
        target = f"{name}:{action.qualifier}" if action.qualifier else name
        if action.kind == "set_reserved_concurrency" and after.get("reserved_concurrency") is not None:
            changes.append(Change("set_reserved_concurrency", name, int(after["reserved_concurrency"] or 0)))
        elif action.kind == "set_provisioned_concurrency":
            changes.append(Change("set_provisioned_concurrency", target, int(after["provisioned_concurrency"] or 0)))
        elif action.kind == "set_autoscaling_bounds":
            changes.append(
                Change(
                    "set_autoscaling_bounds",
                    target,
                    int(after["max_capacity"] or 0),
                    minimum=int(after["min_capacity"] or 0),
                )
            )
        elif action.kind == "set_memory":
            changes.append(Change("set_memory", name, int(after["memory_mb"] or 0)))
        elif action.kind == "request_quota_increase":
            changes.append(Change("request_quota_increase", "account", int(after["account_concurrency_limit"] or 0)))
        elif action.kind == "enable_sqs_buffer":
            changes.append(Change("enable_sqs_buffer", name, int(after.get("maximum_concurrency") or 0) or None))
        elif action.kind == "set_event_source_max_concurrency":
            queue = str(action.resource.get("event_source_arn", "")).rsplit(":", 1)[-1]
            changes.append(
                Change("set_event_source_max_concurrency", f"{name}:{queue}", int(after["maximum_concurrency"] or 0))
            )
    return changes
