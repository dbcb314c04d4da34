"""The facts Medic knows about an alarm's target: one typed model, `None` for unknown (with the reason in `missing`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final, get_args

from pydantic import BaseModel, ConfigDict, Field

#: The window of recent metrics read for a decision, and its period.
METRIC_WINDOW: Final = timedelta(minutes=15)
METRIC_PERIOD_S: Final = 60
#: How far before the window the baseline of a p99 alarm's Duration is read (did the warm path change?).
BASELINE: Final = timedelta(hours=3)
VCPU_MB: Final = 1769  # "At 1,769 MB, a function has the equivalent of one vCPU" (Lambda developer guide)
#: Tags that carry facts by convention (documented in docs/RUNBOOK.md, "Tag conventions").
DATABASE_TAG: Final = "medic:database"
INVOCATION_TAG: Final = "medic:invocation"
SQS_BUFFER_TAG: Final = ("medic:sqs-buffer", "ready")


class EventSourceFacts(BaseModel):
    """One event source mapping of a function (`lambda:ListEventSourceMappings`)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    uuid: str
    source_arn: str
    kind: str  # "sqs" | "kinesis" | "dynamodb" | "kafka" | "mq" | "other"
    state: str = ""
    maximum_concurrency: int | None = None  # SQS ScalingConfig.MaximumConcurrency (None: not set)
    batch_size: int | None = None


class ConsumerFacts(BaseModel):
    """A function that talks to a database (tag `medic:database=<instance id>`)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    function_name: str
    managed: bool = False
    reserved_concurrency: int | None = None
    peak_concurrency: float | None = None
    event_sources: list[EventSourceFacts] = Field(default_factory=list)

    @property
    def sqs_sources(self) -> list[EventSourceFacts]:
        return [source for source in self.event_sources if source.kind == "sqs"]


class Facts(BaseModel):
    """Typed facts about one target. `None` means unknown; `missing` says why."""

    model_config = ConfigDict(extra="forbid")

    # The target
    function_name: str | None = None
    qualifier: str | None = None
    function_arn: str | None = None
    memory_mb: int | None = None
    timeout_s: int | None = None
    runtime: str | None = None
    architecture: str | None = None
    tags: dict[str, str] | None = None
    managed: bool | None = None
    alias_version: str | None = None
    # Concurrency
    has_reserved_concurrency: bool | None = None
    reserved_concurrency: int | None = None
    account_limit: int | None = None
    unreserved_concurrency: int | None = None
    minimum_unreserved: int | None = None  # AWS keeps min(100, account_limit) unreserved (medic.planning.pool)
    # Provisioned concurrency on the qualifier
    pc_requested: int | None = None
    pc_allocated: int | None = None
    pc_available: int | None = None
    pc_status: str | None = None
    pc_status_reason: str | None = None
    # Application Auto Scaling on the qualifier's PC
    has_autoscaling: bool | None = None
    autoscaling_min: int | None = None
    autoscaling_max: int | None = None
    target_utilization: float | None = None
    # Recent metrics (METRIC_WINDOW, METRIC_PERIOD_S)
    spillover_invocations: float | None = None
    spillover_peak: float | None = None
    peak_concurrency: float | None = None
    pc_utilization_max: float | None = None
    invocations: float | None = None
    throttles: float | None = None
    # Throttles: the account, the function, the ramp, what feeds the function
    account_concurrency_peak: float | None = None
    account_claimed_concurrency_peak: float | None = None
    account_utilization: float | None = None
    unreserved_concurrency_peak: float | None = None  # what functions without a reservation use (account-level)
    unreserved_pool_utilization: float | None = None  # unreserved_concurrency_peak / unreserved_concurrency
    function_peak_concurrency: float | None = None
    reserved_utilization: float | None = None
    concurrency_ramp_per_min: float | None = None
    ramp_start_minute_of_day: float | None = None  # UTC minute of the day the steepest one-minute climb began
    asked_concurrency_peak: float | None = None  # what the traffic asked for, served or throttled (Little's law)
    request_rate_peak: float | None = None  # requests/s the function was asked to serve (served + throttled)
    account_request_rate_peak: float | None = None  # the same for every function of the account
    async_events_received: float | None = None  # AsyncEventsReceived: events queued for asynchronous invocation
    demand_concurrency_peak: float | None = None  # invocations/s × Duration (no init): warm environments needed
    unreserved_headroom: float | None = None  # what a raise could take from the pool without squeezing anyone
    throttled_minutes: int | None = None  # minutes of the window with Throttles > 0
    climbing_when_throttled: bool | None = None  # concurrency still rising in the minutes it was throttled
    invocation_type: str | None = None  # "sync" | "async" | "sqs" | "stream"
    async_sources: str | None = None
    sqs_buffer_ready: bool | None = None  # tag medic:sqs-buffer=ready: the handler takes SQS batches too
    has_sqs_source: bool | None = None
    sqs_max_concurrency: int | None = None
    event_sources: list[EventSourceFacts] | None = None
    # The database a function talks to (tag medic:database), for "does this cap protect a downstream?"
    downstream_database: str | None = None
    is_db_consumer: bool | None = None
    downstream_db_connection_ratio: float | None = None
    # p99 latency: the function's REPORT lines, memory, PC on the qualifier the traffic hits
    log_group: str | None = None  # where the function's REPORT lines are (LoggingConfig.LogGroup)
    log_format: str | None = None  # "Text" | "JSON" (LoggingConfig.LogFormat)
    report_lines: int | None = None
    cold_starts: int | None = None
    cold_start_ratio: float | None = None
    init_duration_avg_ms: float | None = None
    duration_p99_ms: float | None = None
    warm_duration_avg_ms: float | None = None
    warm_duration_p99_ms: float | None = None
    duration_avg_ms: float | None = None  # Duration Average over the window (CloudWatch)
    duration_baseline_avg_ms: float | None = None  # ... over the hours before the window
    duration_change_ratio: float | None = None  # duration_avg_ms / duration_baseline_avg_ms
    cold_duration_avg_ms: float | None = None  # handler Duration of the cold invocations (Init Duration apart)
    slow_invocations: int | None = None  # REPORT lines whose Duration is above the alarm's threshold
    slow_cold_share: float | None = None  # the share of those that were cold starts
    max_memory_used_mb: float | None = None
    memory_used_ratio: float | None = None
    vcpus: float | None = None
    traffic_qualifier: str | None = None
    pc_qualifiers: str | None = None
    pc_on_other_qualifiers: int | None = None
    pc_version_taken: bool | None = None  # another alias of the same version holds PC: AWS refuses PC on this one
    claimed_utilization: float | None = None  # account_claimed_concurrency_peak / account_limit
    # db_connections: the instance and the functions that use it
    db_instance: str | None = None
    db_engine: str | None = None
    db_instance_class: str | None = None
    db_max_connections: int | None = None
    db_connections: float | None = None
    db_connection_ratio: float | None = None
    consumer_count: int | None = None
    queue_consumer_count: int | None = None
    managed_consumer_count: int | None = None
    consumers_peak_concurrency: float | None = None
    consumers: list[ConsumerFacts] | None = None
    # The alarm itself (from the event's reasonData: free)
    alarm_value: float | None = None
    alarm_threshold: float | None = None

    sources: dict[str, str] = Field(default_factory=dict)
    missing: dict[str, str] = Field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """The facts as an expression environment (name → value, None when unknown)."""
        return {name: getattr(self, name) for name in FACT_TYPES}

    def environment(self) -> Mapping[str, Any]:
        """What `decide` evaluates a table over: `values()` (facts read on demand override it to read as asked)."""
        return self.values()

    def target_tags(self) -> Mapping[str, str] | None:
        """The target's tags, as `decide` matches a row's scope against them."""
        return self.tags

    def recorded(self) -> dict[str, Any]:
        """The known facts, as a plan records them: every one read so far, without reading any more."""
        return {name: value for name in FACT_TYPES if (value := self.__dict__[name]) is not None}


def _fact_types() -> dict[str, type]:
    types: dict[str, type] = {}
    for name, field in Facts.model_fields.items():
        if name in ("sources", "missing"):
            continue  # bookkeeping, not facts
        scalar = [arg for arg in get_args(field.annotation) if arg in (bool, int, float, str)]
        if scalar:
            types[name] = float if scalar[0] is int else scalar[0]
    return types


#: Fact name → type, for typing runbook expressions (ints are numbers like floats there).
FACT_TYPES: dict[str, type] = _fact_types()
