"""The account's configuration as the model sees it: frozen dataclasses, built from a scenario or read back from the
world (`medic_tools.world.workload.live`), and changed by what-if replays (`medic_tools.world.workload.truth`).

>>> from medic_tools.scenario import WorldSpec
>>> config = account_config(WorldSpec.model_validate({"account_concurrency_limit": 10, "functions": [
...     {"name": "api", "reserved_concurrency": 5, "aliases": [{"name": "live", "provisioned_concurrency": 2}]}]}))
>>> config.limit, config.function("api").reserved, config.function("api").alias("live").pc.allocated
(10, 5, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from medic_tools.world.workload.spec import ModelSpec, OmittedSeries, WorkloadSpec

if TYPE_CHECKING:
    from medic_tools.scenario import AliasSpec, FunctionSpec, WorldSpec

LATEST = "$LATEST"


@dataclass(frozen=True)
class Scheduled:
    """A daily scheduled action: from `at_s` seconds after the timeline's start (its time of day) the PC bounds
    are [min, max]."""

    at_s: int
    min: int
    max: int | None = None


@dataclass(frozen=True)
class Autoscaling:
    min: int
    max: int
    target: float = 0.7
    scheduled: tuple[Scheduled, ...] = ()


@dataclass(frozen=True)
class ProvisionedConcurrency:
    """PC on an alias: what is requested, what is allocated (serving) at the start, its status."""

    requested: int
    allocated: int
    status: str = "READY"
    autoscaling: Autoscaling | None = None


@dataclass(frozen=True)
class AliasConfig:
    name: str
    version: str
    routing: tuple[tuple[str, float], ...] = ()
    pc: ProvisionedConcurrency | None = None


@dataclass(frozen=True)
class EventSourceConfig:
    queue: str
    maximum_concurrency: int | None = None
    batch_size: int = 10


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "Text"
    log_group: str | None = None


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    memory_mb: int
    timeout_s: int
    reserved: int | None = None
    versions: tuple[tuple[str, int], ...] = ()  # (version, its memory); $LATEST has `memory_mb`
    aliases: tuple[AliasConfig, ...] = ()
    event_sources: tuple[EventSourceConfig, ...] = ()
    workload: WorkloadSpec | None = None
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    path: str | None = None  # the invocation path now, when it differs from the workload's (a buffer was added)

    def alias(self, name: str) -> AliasConfig | None:
        return next((alias for alias in self.aliases if alias.name == name), None)

    def memory_of(self, version: str) -> int:
        return dict(self.versions).get(version, self.memory_mb)

    @property
    def pc_allocated(self) -> int:
        return sum(alias.pc.allocated for alias in self.aliases if alias.pc is not None)

    @property
    def invoke_path(self) -> str:
        if self.path is not None:
            return self.path
        return self.workload.invoke.path if self.workload is not None else "sync"

    @property
    def log_group(self) -> str:
        return self.logging.log_group or f"/aws/lambda/{self.name}"


@dataclass(frozen=True)
class DatabaseConfig:
    id: str
    max_connections: int
    consumers: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountConfig:
    limit: int
    functions: tuple[FunctionConfig, ...]
    databases: tuple[DatabaseConfig, ...] = ()
    model: ModelSpec = field(default_factory=ModelSpec)
    omit: tuple[OmittedSeries, ...] = ()
    window_minutes: int = 20

    @property
    def minimum_unreserved(self) -> int:
        """What AWS keeps unreserved: `medic.planning.pool`, the rule the guardrails and the world's Lambda use too."""
        from medic.planning import pool

        return pool.minimum_unreserved(self.limit)

    def function(self, name: str) -> FunctionConfig:
        for function in self.functions:
            if function.name == name:
                return function
        raise KeyError(name)

    def with_function(self, function: FunctionConfig) -> AccountConfig:
        return replace(self, functions=tuple(function if f.name == function.name else f for f in self.functions))

    def with_alias(self, function: str, alias: AliasConfig) -> AccountConfig:
        current = self.function(function)
        aliases = tuple(alias if a.name == alias.name else a for a in current.aliases)
        if current.alias(alias.name) is None:
            aliases += (alias,)
        return self.with_function(replace(current, aliases=aliases))


def _alias_config(spec: AliasSpec, versions: int) -> AliasConfig:
    pc = None
    requested = spec.provisioned_concurrency or 0
    if spec.autoscaling is not None:
        requested = min(max(requested, spec.autoscaling.min), spec.autoscaling.max)
    if requested > 0:
        allocated = {"READY": requested, "FAILED": 0}.get(spec.pc_status, spec.pc_allocated or 0)
        autoscaling = None
        if spec.autoscaling is not None:
            scheduled = tuple(
                Scheduled(at_s=round(s.at_min * 60), min=s.min, max=s.max) for s in spec.autoscaling.scheduled
            )
            autoscaling = Autoscaling(
                spec.autoscaling.min, spec.autoscaling.max, spec.autoscaling.target_utilization, scheduled
            )
        pc = ProvisionedConcurrency(requested, allocated, spec.pc_status, autoscaling)
    routing = tuple((version, weight) for version, weight in spec.routing.items())
    return AliasConfig(spec.name, spec.version or str(versions), routing, pc)


def function_config(spec: FunctionSpec) -> FunctionConfig:
    """The model's view of one scenario function."""
    logging = LoggingConfig(spec.logging.format, spec.logging.log_group) if spec.logging else LoggingConfig()
    return FunctionConfig(
        name=spec.name,
        memory_mb=spec.memory_mb,
        timeout_s=spec.timeout_s,
        reserved=spec.reserved_concurrency,
        versions=tuple((str(v), spec.memory_mb) for v in range(1, spec.versions + 1)),
        aliases=tuple(_alias_config(alias, spec.versions) for alias in spec.aliases),
        event_sources=tuple(
            EventSourceConfig(s.queue, s.maximum_concurrency, s.batch_size) for s in spec.event_sources
        ),
        workload=spec.workload,
        logging=logging,
    )


def account_config(world: WorldSpec) -> AccountConfig:
    """The model's view of a scenario's world."""
    databases = tuple(DatabaseConfig(d.id, d.max_connections, tuple(d.consumers)) for d in world.databases)
    return AccountConfig(
        limit=world.account_concurrency_limit,
        functions=tuple(function_config(f) for f in world.functions),
        databases=databases,
        model=world.model,
        omit=tuple(world.omit_series),
        window_minutes=world.window_min,
    )
