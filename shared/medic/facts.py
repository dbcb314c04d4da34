"""Facts: what Medic knows about the alarm's target, each fact with its source and window.

The collector issues the fewest calls it can, concurrently: one `GetFunction` (configuration, tags
and reserved concurrency together), the alias, its provisioned-concurrency config, the Application
Auto Scaling target and policies, the account settings, and a single `GetMetricData` request for
every metric the tables read. A call that fails leaves its facts unknown (never guessed) and the
reason is recorded; rules that need an unknown fact do not match.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Final, get_args

from pydantic import BaseModel, ConfigDict, Field

from medic.aws import AwsClients, error_code
from medic.events import AlarmStateChangeEvent
from medic.signals import Signal

#: The window of recent metrics read for a decision, and its period.
METRIC_WINDOW = timedelta(minutes=15)
METRIC_PERIOD_S = 60
PC_DIMENSION: Final = "lambda:function:ProvisionedConcurrency"


class EventSourceFacts(BaseModel):
    """One event source mapping of a function (`lambda:ListEventSourceMappings`)."""

    model_config = ConfigDict(extra="forbid")

    uuid: str
    source_arn: str
    kind: str  # "sqs" | "kinesis" | "dynamodb" | "kafka" | "mq" | "other"
    state: str = ""
    maximum_concurrency: int | None = None  # SQS ScalingConfig.MaximumConcurrency (None: not set)
    batch_size: int | None = None


class ConsumerFacts(BaseModel):
    """A function that talks to a database (tag `medic:database=<instance id>`)."""

    model_config = ConfigDict(extra="forbid")

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
    tags: dict[str, str] | None = None
    managed: bool | None = None
    alias_version: str | None = None
    # Concurrency
    has_reserved_concurrency: bool | None = None
    reserved_concurrency: int | None = None
    account_limit: int | None = None
    unreserved_concurrency: int | None = None
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
    function_peak_concurrency: float | None = None
    reserved_utilization: float | None = None
    concurrency_ramp_per_min: float | None = None
    invocation_type: str | None = None  # "sync" | "async" | "sqs" | "stream"
    async_sources: str | None = None
    has_sqs_source: bool | None = None
    sqs_max_concurrency: int | None = None
    event_sources: list[EventSourceFacts] | None = None
    # The database a function talks to (tag medic:database), for "does this cap protect a downstream?"
    downstream_database: str | None = None
    downstream_db_connection_ratio: float | None = None
    # p99 latency: the function's REPORT lines, memory, PC on the qualifier the traffic hits
    report_lines: int | None = None
    cold_starts: int | None = None
    cold_start_ratio: float | None = None
    init_duration_avg_ms: float | None = None
    duration_p99_ms: float | None = None
    warm_duration_avg_ms: float | None = None
    warm_duration_p99_ms: float | None = None
    max_memory_used_mb: float | None = None
    memory_used_ratio: float | None = None
    vcpus: float | None = None
    traffic_qualifier: str | None = None
    pc_qualifiers: str | None = None
    pc_on_other_qualifiers: int | None = None
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


def _fact_types() -> dict[str, type]:
    types: dict[str, type] = {}
    for name, field in Facts.model_fields.items():
        scalar = [arg for arg in get_args(field.annotation) if arg in (bool, int, float, str)]
        if scalar:
            types[name] = float if scalar[0] is int else scalar[0]
    return types


#: Fact name → type, for typing runbook expressions (ints are numbers like floats there).
FACT_TYPES: dict[str, type] = _fact_types()


class _Metric(BaseModel):
    fact: str
    namespace: str
    name: str
    dimensions: dict[str, str]
    stat: str
    reduce: str  # "sum" | "max" over the window


class FactCollector:
    """Collects `Facts` for a signal. Inject the clients; the clock decides the metric window."""

    def __init__(self, clients: AwsClients, opt_in_tag: tuple[str, str], max_workers: int = 6) -> None:
        self.clients = clients
        self.opt_in_tag = opt_in_tag
        self.max_workers = max_workers

    def collect(self, signal: Signal, event: AlarmStateChangeEvent, now: datetime) -> Facts:
        facts = Facts()
        self._alarm_facts(facts, event)
        target = signal.target
        if target.kind != "function" or not target.function_name:
            facts.missing["target"] = f"no function target ({target.display})"
            return facts
        name, qualifier = target.function_name, target.qualifier
        facts.function_name, facts.qualifier = name, qualifier

        jobs: list[tuple[str, tuple[str, ...], Callable[[], None]]] = [
            ("lambda:GetFunction", _FUNCTION_FACTS, lambda: self._function(facts, name)),
            ("lambda:GetAccountSettings", ("account_limit", "unreserved_concurrency"), lambda: self._account(facts)),
            ("cloudwatch:GetMetricData", _METRIC_FACTS, lambda: self._metrics(facts, name, qualifier, now)),
        ]
        if qualifier:
            jobs += [
                ("lambda:GetAlias", ("alias_version",), lambda: self._alias(facts, name, qualifier)),
                ("lambda:GetProvisionedConcurrencyConfig", _PC_FACTS, lambda: self._pc(facts, name, qualifier)),
                (
                    "application-autoscaling:DescribeScalableTargets",
                    _AUTOSCALING_FACTS,
                    lambda: self._autoscaling(facts, name, qualifier),
                ),
            ]
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            futures = [(source, names, pool.submit(job)) for source, names, job in jobs]
        for source, names, future in futures:
            exc = future.exception()
            if exc is not None:
                for fact in names:
                    setattr(facts, fact, None)
                    facts.missing[fact] = f"{source} failed: {error_code(exc)}"
        return facts

    # -- the alarm ----------------------------------------------------------------------------------
    def _alarm_facts(self, facts: Facts, event: AlarmStateChangeEvent) -> None:
        data = event.detail.state.reason_data
        if data is None:
            return
        if data.recent_datapoints:
            facts.alarm_value = float(data.recent_datapoints[-1])
            facts.sources["alarm_value"] = "event:state.reasonData.recentDatapoints"
        if data.threshold is not None:
            facts.alarm_threshold = float(data.threshold)
            facts.sources["alarm_threshold"] = "event:state.reasonData.threshold"

    # -- Lambda -------------------------------------------------------------------------------------
    def _function(self, facts: Facts, name: str) -> None:
        response = self.clients.lambda_.get_function(FunctionName=name)
        config = response["Configuration"]
        facts.function_arn = config.get("FunctionArn")
        facts.memory_mb = config.get("MemorySize")
        facts.timeout_s = config.get("Timeout")
        facts.runtime = config.get("Runtime")
        tags = dict(response.get("Tags") or {})
        facts.tags = tags
        key, value = self.opt_in_tag
        facts.managed = tags.get(key) == value
        reserved = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        facts.has_reserved_concurrency = reserved is not None
        facts.reserved_concurrency = int(reserved) if reserved is not None else None
        for fact in _FUNCTION_FACTS:
            facts.sources[fact] = "lambda:GetFunction"

    def _alias(self, facts: Facts, name: str, qualifier: str) -> None:
        if qualifier.isdigit() or qualifier == "$LATEST":
            facts.alias_version = qualifier
        else:
            facts.alias_version = self.clients.lambda_.get_alias(FunctionName=name, Name=qualifier)["FunctionVersion"]
        facts.sources["alias_version"] = "lambda:GetAlias"

    def _pc(self, facts: Facts, name: str, qualifier: str) -> None:
        client = self.clients.lambda_
        try:
            config = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        except client.exceptions.ProvisionedConcurrencyConfigNotFoundException:
            facts.pc_requested = facts.pc_allocated = facts.pc_available = 0
            facts.pc_status = "NONE"
        else:
            facts.pc_requested = config.get("RequestedProvisionedConcurrentExecutions", 0)
            facts.pc_allocated = config.get("AllocatedProvisionedConcurrentExecutions", 0)
            facts.pc_available = config.get("AvailableProvisionedConcurrentExecutions", 0)
            facts.pc_status = config.get("Status", "UNKNOWN")
            facts.pc_status_reason = config.get("StatusReason")
        for fact in _PC_FACTS:
            facts.sources[fact] = "lambda:GetProvisionedConcurrencyConfig"

    def _account(self, facts: Facts) -> None:
        limits = self.clients.lambda_.get_account_settings()["AccountLimit"]
        facts.account_limit = limits.get("ConcurrentExecutions")
        facts.unreserved_concurrency = limits.get("UnreservedConcurrentExecutions")
        facts.sources["account_limit"] = facts.sources["unreserved_concurrency"] = "lambda:GetAccountSettings"

    # -- Application Auto Scaling -------------------------------------------------------------------
    def _autoscaling(self, facts: Facts, name: str, qualifier: str) -> None:
        client = self.clients.autoscaling
        resource_id = f"function:{name}:{qualifier}"
        targets = client.describe_scalable_targets(
            ServiceNamespace="lambda", ResourceIds=[resource_id], ScalableDimension=PC_DIMENSION
        )["ScalableTargets"]
        facts.has_autoscaling = bool(targets)
        if targets:
            facts.autoscaling_min = targets[0]["MinCapacity"]
            facts.autoscaling_max = targets[0]["MaxCapacity"]
            policies = client.describe_scaling_policies(
                ServiceNamespace="lambda", ResourceId=resource_id, ScalableDimension=PC_DIMENSION
            )["ScalingPolicies"]
            for policy in policies:
                tracking = policy.get("TargetTrackingScalingPolicyConfiguration")
                if tracking:
                    facts.target_utilization = float(tracking["TargetValue"])
        for fact in _AUTOSCALING_FACTS:
            facts.sources[fact] = "application-autoscaling:DescribeScalableTargets/DescribeScalingPolicies"

    # -- CloudWatch ---------------------------------------------------------------------------------
    def _metrics(self, facts: Facts, name: str, qualifier: str | None, now: datetime) -> None:
        resource = {"FunctionName": name, "Resource": f"{name}:{qualifier}"} if qualifier else {"FunctionName": name}
        function = {"FunctionName": name}
        wanted = [
            _Metric(fact="invocations", namespace="AWS/Lambda", name="Invocations", dimensions=resource,
                    stat="Sum", reduce="sum"),
            _Metric(fact="throttles", namespace="AWS/Lambda", name="Throttles", dimensions=function,
                    stat="Sum", reduce="sum"),
            _Metric(fact="peak_concurrency", namespace="AWS/Lambda", name="ConcurrentExecutions",
                    dimensions=resource, stat="Maximum", reduce="max"),
        ]  # fmt: skip
        if qualifier:
            wanted += [
                _Metric(fact="spillover_invocations", namespace="AWS/Lambda",
                        name="ProvisionedConcurrencySpilloverInvocations", dimensions=resource, stat="Sum",
                        reduce="sum"),
                _Metric(fact="spillover_peak", namespace="AWS/Lambda",
                        name="ProvisionedConcurrencySpilloverInvocations", dimensions=resource, stat="Sum",
                        reduce="max"),
                _Metric(fact="pc_utilization_max", namespace="AWS/Lambda",
                        name="ProvisionedConcurrencyUtilization", dimensions=resource, stat="Maximum",
                        reduce="max"),
            ]  # fmt: skip
        end = _align_up(now, METRIC_PERIOD_S)
        start = end - METRIC_WINDOW
        # One query per distinct series: several facts may reduce the same series differently.
        series: dict[tuple[str, str, tuple[tuple[str, str], ...], str], str] = {}
        by_query: dict[str, _Metric] = {}
        for metric in wanted:
            query_id = series.setdefault(_series_key(metric), f"m{len(series)}")
            by_query.setdefault(query_id, metric)
        queries = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": metric.namespace,
                        "MetricName": metric.name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions.items()],
                    },
                    "Period": METRIC_PERIOD_S,
                    "Stat": metric.stat,
                },
                "ReturnData": True,
            }
            for query_id, metric in by_query.items()
        ]
        results: dict[str, list[float]] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
            if token:
                kwargs["NextToken"] = token
            response = self.clients.cloudwatch.get_metric_data(**kwargs)
            for result in response["MetricDataResults"]:
                results.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
            token = response.get("NextToken")
            if not token:
                break
        window = f"{int(METRIC_WINDOW.total_seconds() // 60)}m@{METRIC_PERIOD_S}s"
        for metric in wanted:
            values = results.get(series[_series_key(metric)], [])
            source = f"cloudwatch:GetMetricData {metric.name} {metric.stat} [{window}]"
            facts.sources[metric.fact] = source
            if metric.fact == "peak_concurrency" and not values:
                facts.missing[metric.fact] = f"no datapoints for {metric.name} in the last {window}"
                continue
            value = (sum(values) if metric.reduce == "sum" else max(values)) if values else 0.0
            setattr(facts, metric.fact, value)


def _series_key(metric: _Metric) -> tuple[str, str, tuple[tuple[str, str], ...], str]:
    return (metric.namespace, metric.name, tuple(metric.dimensions.items()), metric.stat)


def _align_up(when: datetime, period_s: int) -> datetime:
    epoch = when.timestamp()
    return datetime.fromtimestamp(math.ceil(epoch / period_s) * period_s, tz=when.tzinfo)


_FUNCTION_FACTS = (
    "function_arn", "memory_mb", "timeout_s", "runtime", "tags", "managed",
    "has_reserved_concurrency", "reserved_concurrency",
)  # fmt: skip
_PC_FACTS = ("pc_requested", "pc_allocated", "pc_available", "pc_status", "pc_status_reason")
_AUTOSCALING_FACTS = ("has_autoscaling", "autoscaling_min", "autoscaling_max", "target_utilization")
_METRIC_FACTS = (
    "invocations", "throttles", "peak_concurrency", "spillover_invocations", "spillover_peak", "pc_utilization_max",
)  # fmt: skip
