"""The workload part of a scenario (`world.functions[].workload` and friends): frozen pydantic models.

A function with a `workload` gets its metrics and REPORT lines from the model (`medic_tools.world.workload.model`)
instead of (or on top of) hand-written `metrics:`. Every field is documented in docs/WORKLOAD.md.

>>> WorkloadSpec.model_validate({"arrivals": {"shape": "spike", "base_rps": 20, "peak_rps": 900, "at_min": 15}})
... # doctest: +ELLIPSIS
WorkloadSpec(invoke=InvokeSpec(qualifier='$LATEST', path='sync', ...
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: CloudWatch Logs log group names: 1–512 characters of [.-_/#A-Za-z0-9] (CloudWatch Logs API, CreateLogGroup).
LOG_GROUP_PATTERN = r"^[.\-_/#A-Za-z0-9]{1,512}$"
#: "The Init phase is limited to 10 seconds" for on-demand environments (Lambda developer guide, "Understanding the
#: Lambda execution environment lifecycle").
MAX_INIT_MS = 10_000
#: The asynchronous event queue keeps an event "for up to 6 hours" by default (MaximumEventAgeInSeconds 60–21600,
#: Lambda developer guide, "Configuring error handling settings for Lambda asynchronous invocations").
MAX_EVENT_AGE_S = 21_600


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ArrivalsSpec(_Model):
    """Requests per second over the window (minutes counted from the window's start).

    flat: `base_rps` all along. step: `peak_rps` from `at_min` on. ramp: linear from `base_rps` at `at_min` to
    `peak_rps` `rise_s` later. spike: like ramp (over `rise_s`, default 5 s), held `hold_s` (default: to the end),
    then back to `base_rps`. diurnal: a cosine between `base_rps` and `peak_rps` of period `period_min`, peaking at
    `at_min`. With `poisson` (default) each second's count is a Poisson draw seeded by `seed`.
    """

    shape: Literal["flat", "step", "ramp", "spike", "diurnal"] = "flat"
    base_rps: float = Field(ge=0, le=1_000_000)
    peak_rps: float | None = Field(default=None, ge=0, le=1_000_000)
    at_min: float = Field(default=0, ge=0)
    rise_s: float | None = Field(default=None, ge=0)
    hold_s: float | None = Field(default=None, ge=0)
    period_min: float = Field(default=60, gt=0)
    seed: int = 0
    poisson: bool = True


class DurationSpec(_Model):
    """What one invocation costs: CPU work at one full vCPU, time waiting downstream, the cold-start parts."""

    cpu_ms: float = Field(default=50, ge=0, le=900_000)
    io_ms: float = Field(default=0, ge=0, le=900_000)
    parallelism: float = Field(default=1, ge=1, le=6, description="threads the code keeps busy (vCPUs it can use)")
    first_run_ms: float = Field(default=0, ge=0, le=900_000, description="lazy setup on an environment's first run")
    init_ms: float = Field(default=300, ge=0, le=MAX_INIT_MS, description="the init phase (REPORT Init Duration)")
    memory_used_mb: int | None = Field(default=None, ge=1, le=10240, description="default: half the memory")
    noise: float = Field(default=0.1, ge=0, le=1, description="sigma of the log-normal noise on each duration")


class DependencySpec(_Model):
    """A downstream dependency that slows down: the wait becomes `io_ms` from `slow_from_min` (to `slow_until_min`)."""

    slow_from_min: float = Field(ge=0)
    slow_until_min: float | None = Field(default=None, ge=0)
    io_ms: float = Field(ge=0, le=900_000)


class InvokeSpec(_Model):
    """How the traffic reaches the function: which qualifier, and which invocation path."""

    qualifier: str = Field(default="$LATEST", min_length=1, description="an alias, a version number or $LATEST")
    path: Literal["sync", "async", "sqs"] = "sync"
    queue: str | None = Field(default=None, description="sqs: the event source's queue (default: the first)")
    max_event_age_s: int = Field(default=MAX_EVENT_AGE_S, ge=60, le=MAX_EVENT_AGE_S)


class WorkloadSpec(_Model):
    invoke: InvokeSpec = Field(default_factory=InvokeSpec)
    arrivals: ArrivalsSpec
    duration: DurationSpec = Field(default_factory=DurationSpec)
    dependency: DependencySpec | None = None
    connections_per_env: int = Field(default=0, ge=0, le=100)
    report_lines: int = Field(default=400, ge=0, le=5000, description="REPORT lines sampled over the window")


class LoggingSpec(_Model):
    """Lambda's LoggingConfig: the log format and the log group (default /aws/lambda/<name>)."""

    format: Literal["Text", "JSON"] = "Text"
    log_group: str | None = Field(default=None, pattern=LOG_GROUP_PATTERN)

    @model_validator(mode="after")
    def _not_reserved(self) -> LoggingSpec:
        if self.log_group and self.log_group.startswith("aws/"):
            # "custom log group names mustn't begin with the string aws/" (Lambda developer guide, log groups)
            raise ValueError("log_group: custom log group names must not begin with aws/")
        return self


class ScheduledScalingSpec(_Model):
    """An Application Auto Scaling scheduled action: every day at the time of day `at_min` after the window's start,
    the PC bounds become [`min`, `max`] (a pre-warm)."""

    at_min: float = Field(ge=0)
    min: int = Field(ge=0)
    max: int | None = Field(default=None, ge=1)


class OmittedSeries(_Model):
    """Series the world does not emit (an account where they have no data): a metric, at the given dimension
    names only (default: at every dimension set)."""

    metric: str = Field(min_length=1)
    namespace: str = "AWS/Lambda"
    dimensions: list[str] | None = None


class ModelSpec(_Model):
    """The model's assumptions that AWS does not document (docs/WORKLOAD.md says why each default)."""

    keep_warm_s: int = Field(default=600, ge=60, le=7200, description="an idle environment is reclaimed after this")
    pc_allocation_s: int = Field(default=60, ge=0, le=900, description="time new provisioned concurrency takes")
    scale_out_periods: int = Field(default=3, ge=1, le=60, description="target tracking: minutes above target")
    scale_in_periods: int = Field(default=15, ge=1, le=120, description="target tracking: minutes below 90% target")
    report_streams: int = Field(default=100, ge=1, le=1000, description="most log streams the REPORT sample uses")
