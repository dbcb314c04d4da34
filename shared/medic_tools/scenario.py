"""The scenario file of `medic simulate` (docs/SCENARIOS.md, a public contract): a whole world + an alarm."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medic import yaml_tree
from medic.errors import ScenarioError
from medic_tools.world.workload.spec import LoggingSpec, ModelSpec, OmittedSeries, ScheduledScalingSpec, WorkloadSpec


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AutoscalingSpec(_Model):
    min: int = Field(ge=0)
    max: int = Field(ge=1)
    target_utilization: float = Field(default=0.7, gt=0, le=1)
    scheduled: list[ScheduledScalingSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class AliasSpec(_Model):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]+$")
    version: str | None = Field(default=None, pattern=r"^[0-9]+$", description="default: the last published")
    routing: dict[str, float] = Field(default_factory=dict, description="RoutingConfig: {version: weight}")
    provisioned_concurrency: int | None = Field(default=None, ge=1)
    pc_status: Literal["READY", "IN_PROGRESS", "FAILED"] = Field(
        default="READY", description="where the PC allocation is when the alarm fires"
    )
    pc_status_reason: str = "FUNCTION_ERROR_INIT_FAILURE: the function's init code raised"
    pc_allocated: int | None = Field(default=None, ge=0, description="IN_PROGRESS: what is allocated so far")
    autoscaling: AutoscalingSpec | None = None

    @model_validator(mode="after")
    def _coherent(self) -> AliasSpec:
        if self.name.isdigit():
            raise ValueError("name: an alias name is not a number (that is a version)")
        if len(self.routing) > 1 or any(not 0 <= w < 1 for w in self.routing.values()):
            raise ValueError("routing: one additional version with a weight in [0, 1)")
        if self.routing and (self.provisioned_concurrency or self.autoscaling):
            # PutProvisionedConcurrencyConfig on a weighted alias fails with InvalidParameterValueException.
            raise ValueError("routing: Alias with weights can not be used with Provisioned Concurrency")
        if self.pc_allocated is not None and self.pc_allocated > (self.provisioned_concurrency or 0):
            raise ValueError("pc_allocated: above provisioned_concurrency")
        return self


class EventSourceSpec(_Model):
    queue: str = Field(min_length=1)
    maximum_concurrency: int | None = Field(default=None, ge=2, le=1000)
    batch_size: int = Field(default=10, ge=1, le=10000)


class InvokerSpec(_Model):
    """An asynchronous producer: an EventBridge rule targeting the function (with its invoke permission)."""

    eventbridge_rule: str = Field(min_length=1, max_length=64)
    event_pattern: dict[str, Any] = Field(default_factory=lambda: {"source": ["medic_tools.world"]})


class InvocationsSpec(_Model):
    count: int = Field(ge=0, le=10_000)
    cold: int = Field(default=0, ge=0)
    init_ms: float = Field(default=0, ge=0)
    duration_ms: float = Field(default=100, ge=0)
    cold_duration_ms: float | None = Field(
        default=None, ge=0, description="the handler's first run on a new environment (default: duration_ms)"
    )
    memory_used_mb: int | None = None


class FunctionSpec(_Model):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    memory_mb: int = Field(default=512, ge=128, le=10240)
    timeout_s: int = Field(default=10, ge=1, le=900)
    runtime: str = "python3.13"
    reserved_concurrency: int | None = Field(default=None, ge=0)
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[AliasSpec] = Field(default_factory=list)
    event_sources: list[EventSourceSpec] = Field(default_factory=list)
    invoked_by: list[InvokerSpec] = Field(default_factory=list)
    invocations: InvocationsSpec | None = None
    versions: int = Field(default=1, ge=1, le=20, description="published versions (1..versions)")
    logging: LoggingSpec | None = None
    workload: WorkloadSpec | None = None

    @model_validator(mode="after")
    def _qualifiers_exist(self) -> FunctionSpec:
        aliases = {alias.name for alias in self.aliases}
        for alias in self.aliases:
            for version in [alias.version, *alias.routing]:
                if version is not None and not 1 <= int(version) <= self.versions:
                    raise ValueError(f"aliases: {alias.name} names version {version}; versions are 1..{self.versions}")
        if self.workload is not None:
            qualifier = self.workload.invoke.qualifier
            known = (
                qualifier == "$LATEST"
                or qualifier in aliases
                or (qualifier.isdigit() and 1 <= int(qualifier) <= self.versions)
            )
            if not known:
                raise ValueError(f"workload.invoke.qualifier: {qualifier!r} is not $LATEST, an alias or a version")
            queues = [source.queue for source in self.event_sources]
            if self.workload.invoke.path == "sqs" and not queues:
                raise ValueError("workload.invoke.path: sqs needs an event source (event_sources)")
            if self.workload.invoke.queue is not None and self.workload.invoke.queue not in queues:
                raise ValueError(f"workload.invoke.queue: no event source reads {self.workload.invoke.queue!r}")
        return self


class DatabaseSpec(_Model):
    id: str = Field(min_length=1)
    max_connections: int = Field(ge=1)
    consumers: list[str] = Field(default_factory=list)
    engine: str = "postgres"
    instance_class: str = "db.t3.medium"


class MetricSpec(_Model):
    namespace: str
    name: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    period: int = Field(default=60, ge=1)
    stat: str = "Sum"
    values: list[float] = Field(min_length=1)
    unit: str | None = None


class WorldSpec(_Model):
    region: str = "us-east-1"
    # New accounts start at a quota of 10 (Lambda developer guide, "Lambda quotas").
    account_concurrency_limit: int = Field(default=1000, ge=1)
    functions: list[FunctionSpec] = Field(default_factory=list)
    databases: list[DatabaseSpec] = Field(default_factory=list)
    metrics: list[MetricSpec] = Field(default_factory=list)
    window_min: int = Field(default=20, ge=5, le=180, description="the modelled window before the alarm")
    after_fix_min: int = Field(default=10, ge=1, le=120, description="the modelled time after the fix")
    model: ModelSpec = Field(default_factory=ModelSpec)
    omit_series: list[OmittedSeries] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_unique(self) -> WorldSpec:
        names = [function.name for function in self.functions]
        if len(set(names)) != len(names):
            raise ValueError("functions: two functions have the same name")
        return self

    @property
    def has_workload(self) -> bool:
        return any(function.workload is not None for function in self.functions)


class AlarmSpec(_Model):
    name: str = Field(min_length=1)
    namespace: str
    metric: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    stat: str = "Sum"
    period: int = Field(default=60, ge=10)
    threshold: float
    comparison: Literal[
        "GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"
    ] = "GreaterThanThreshold"
    evaluation_periods: int = Field(default=1, ge=1)
    datapoints_to_alarm: int | None = Field(default=None, ge=1)
    treat_missing_data: Literal["missing", "notBreaching", "breaching", "ignore"] = "missing"
    description: str = ""


class AfterFixSpec(_Model):
    metrics: list[MetricSpec] = Field(default_factory=list)
    redeploy: bool = Field(
        default=False,
        description="once the fix is verified, the function's CloudFormation stack is deployed again: every field the "
        "fix changed is put back to its value before (the template's), then the verifier runs once more",
    )


class ExpectSpec(_Model):
    signal: str | None = None
    diagnosis: str | None = None
    actions: list[str] | None = None
    status: str | None = None
    mode: str | None = None


#: The `Settings` the simulator gives Medic itself (medic_tools.simulate.Simulation.setup): the world's own tables,
#: queue,
#: Slack app and actions role, and its region (`world.region`). A scenario's `settings:` may set any other.
SIMULATOR_SETTINGS = frozenset(
    {
        "plans_table",
        "events_table",
        "executor_queue_url",
        "slack_channel",
        "slack_signing_secret_arn",
        "slack_team_id",
        "slack_app_id",
        "actions_role_arn",
        "region",
    }
)


class Scenario(_Model):
    description: str = ""
    world: WorldSpec
    alarm: AlarmSpec | None = None
    alarm_event: str | None = None
    after_fix: AfterFixSpec | None = None
    settings: dict[str, Any] = Field(default_factory=dict, description="Settings overrides, e.g. dry_run: true")
    expect: ExpectSpec | None = None
    recurs: int = Field(
        default=0,
        ge=0,
        le=20,
        description="after the incident, it comes back this many times on the same world (the world's configuration "
        "set back, its metrics again): repeated incidents, e.g. for a promotion to auto (medic.promotions)",
    )

    @model_validator(mode="after")
    def _one_alarm(self) -> Scenario:
        if self.alarm is None and self.alarm_event is None:
            raise ValueError("give either `alarm` (an alarm to create and evaluate) or `alarm_event` (an event file)")
        return self


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (`medic schema scenario`): the models', with what the loader checks beyond
    them (`alarm` or `alarm_event`; the `settings:` a scenario may set)."""
    from medic.config import Settings

    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Medic scenario (medic simulate, medic explain)"
    schema["description"] = "A whole AWS world and an alarm; the format: docs/SCENARIOS.md."
    schema["anyOf"] = [
        {"required": [key], "properties": {key: {"not": {"type": "null"}}}} for key in ("alarm", "alarm_event")
    ]
    settable = sorted(set(Settings.model_fields) - SIMULATOR_SETTINGS)
    schema["properties"]["settings"]["propertyNames"] = {"enum": settable}
    return schema


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file; `ScenarioError` names the file and the first bad field."""
    source = str(path)
    try:
        raw = yaml_tree.load(Path(path).read_text(encoding="utf-8"))
    except yaml_tree.YamlRefused as exc:
        field = ".".join(str(part) for part in exc.path) or "(root)"
        raise ScenarioError(field=field, source=source, problem=f"line {exc.line}: {exc.problem}") from None
    except OSError as exc:
        raise ScenarioError(field="(root)", source=source, problem=f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ScenarioError(field="(root)", source=source, problem=problem) from None
    except RecursionError:
        raise ScenarioError(field="(root)", source=source, problem="not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ScenarioError(field="(root)", source=source, problem=f"{where}not valid YAML") from None
    if not isinstance(raw, dict):
        raise ScenarioError(field="(root)", source=source, problem="a scenario is a mapping with `world` and `alarm`")
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise ScenarioError(field=field, source=source, problem=first["msg"]) from None
    _check_settings(scenario.settings, source)
    return scenario


def _check_settings(settings: dict[str, Any], source: str) -> None:
    """`settings:` overrides Medic's `Settings` (e.g. `dry_run: true`) but not what the simulator builds for its world:
    refused here, before any world is started, naming `settings.<field>`."""
    from medic.config import Settings

    for name in settings:
        if name in SIMULATOR_SETTINGS:
            problem = "set by the simulator (its world's own resources and region); not a scenario setting"
            raise ScenarioError(field=f"settings.{name}", source=source, problem=problem)
        if name not in Settings.model_fields:
            known = ", ".join(sorted(set(Settings.model_fields) - SIMULATOR_SETTINGS))
            raise ScenarioError(field=f"settings.{name}", source=source, problem=f"unknown setting; known: {known}")
    try:
        Settings.model_validate({"plans_table": "-", "events_table": "-", **settings})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in ("settings", *first["loc"]))
        raise ScenarioError(field=field, source=source, problem=first["msg"]) from None
