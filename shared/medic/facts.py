"""Facts: what Medic knows about the alarm's target, each fact with its source and window.

The collector issues the fewest calls it can, concurrently: one `GetFunction` (configuration, tags
and reserved concurrency together), the alias, its provisioned-concurrency config, the Application
Auto Scaling target and policies, the account settings, and a single `GetMetricData` request for
every metric the tables read. A call that fails leaves its facts unknown (never guessed) and the
reason is recorded; rules that need an unknown fact do not match.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
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
    minimum_unreserved: int | None = None  # AWS keeps min(100, account_limit) unreserved (medic.pool)
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
    throttled_minutes: int | None = None  # minutes of the window with Throttles > 0
    climbing_when_throttled: bool | None = None  # concurrency still rising in the minutes it was throttled
    invocation_type: str | None = None  # "sync" | "async" | "sqs" | "stream"
    async_sources: str | None = None
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
    cold_duration_avg_ms: float | None = None  # handler Duration of the cold invocations (Init Duration apart)
    slow_invocations: int | None = None  # REPORT lines whose Duration is above the alarm's threshold
    slow_cold_share: float | None = None  # the share of those that were cold starts
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
        if name in ("sources", "missing"):
            continue  # bookkeeping, not facts
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
    reduce: str = "max"  # "sum" | "max" | "series" (kept whole, oldest first)


#: An unqualified alarm's candidates (aliases + $LATEST) whose metrics are read with the traffic split, in one request
#: (about 6 series each, under GetMetricData's 500); a function with more aliases reads its metrics afterwards.
_PREFETCH_ALIASES: Final = 40
_SEP: Final = "\x00"  # candidate / fact, in the prefetched series' keys

#: Tags that carry facts by convention (documented in docs/ARCHITECTURE.md, "Facts").
DATABASE_TAG = "medic:database"
INVOCATION_TAG = "medic:invocation"
#: Memory (GiB) of common RDS instance classes, for engine-default max_connections.
DB_CLASS_MEMORY_GIB: Final[dict[str, float]] = {
    "db.t3.micro": 1, "db.t3.small": 2, "db.t3.medium": 4, "db.t3.large": 8, "db.t3.xlarge": 16,
    "db.t3.2xlarge": 32, "db.t4g.micro": 1, "db.t4g.small": 2, "db.t4g.medium": 4, "db.t4g.large": 8,
    "db.t4g.xlarge": 16, "db.t4g.2xlarge": 32, "db.m5.large": 8, "db.m5.xlarge": 16, "db.m5.2xlarge": 32,
    "db.m5.4xlarge": 64, "db.m6g.large": 8, "db.m6g.xlarge": 16, "db.m6g.2xlarge": 32, "db.m6g.4xlarge": 64,
    "db.m6i.large": 8, "db.m6i.xlarge": 16, "db.m6i.2xlarge": 32, "db.m7g.large": 8, "db.m7g.xlarge": 16,
    "db.r5.large": 16, "db.r5.xlarge": 32, "db.r5.2xlarge": 64, "db.r6g.large": 16, "db.r6g.xlarge": 32,
    "db.r6g.2xlarge": 64, "db.r6i.large": 16, "db.r6i.xlarge": 32, "db.r7g.large": 16, "db.r7g.xlarge": 32,
}  # fmt: skip
#: Logs Insights queries over the REPORT lines (Lambda's auto-discovered fields).
REPORT_QUERY = (
    'filter @type = "REPORT" | stats count(*) as invocations, count(@initDuration) as cold, '
    "avg(@initDuration) as init_avg, pct(@duration, 99) as p99, max(@maxMemoryUsed) as memory_used, "
    "max(@memorySize) as memory_size"
)
WARM_QUERY = (
    'filter @type = "REPORT" and not ispresent(@initDuration) | stats avg(@duration) as warm_avg, '
    "pct(@duration, 99) as warm_p99"
)
#: Bounds of the fallback when Logs Insights is unavailable: FilterLogEvents, at most this many REPORT lines.
REPORT_FALLBACK_MAX_LINES = 2000
INSIGHTS_TIMEOUT_S = 10.0
VCPU_MB: Final = 1769  # "At 1,769 MB, a function has the equivalent of one vCPU" (Lambda developer guide)

Job = tuple[str, tuple[str, ...], Callable[[], None]]


class FactCollector:
    """Collects `Facts` for a signal. Inject the clients; the clock decides the metric window.

    Calls run concurrently in phases: the target's configuration, account and metrics first; what depends
    on their answers (the consumers of a database, the database behind a function) after.
    """

    #: The IAM actions these calls need: the triage role grants them (tests/unit/test_template.py checks both ways).
    permissions: tuple[str, ...] = (
        "lambda:GetFunction",
        "lambda:ListTags",  # GetFunction returns Tags only to callers allowed lambda:ListTags
        "lambda:GetAlias",
        "lambda:ListAliases",
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:ListProvisionedConcurrencyConfigs",
        "lambda:GetPolicy",
        "lambda:GetAccountSettings",
        "lambda:ListEventSourceMappings",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
        "cloudwatch:GetMetricData",
        "logs:StartQuery",
        "logs:GetQueryResults",
        "logs:FilterLogEvents",
        "rds:DescribeDBInstances",
        "rds:DescribeDBParameters",
        "tag:GetResources",
    )

    def __init__(
        self, clients: AwsClients, opt_in_tag: tuple[str, str], max_workers: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:  # fmt: skip
        self.clients = clients
        self.opt_in_tag = opt_in_tag
        self.max_workers = max_workers
        self.sleep = sleep

    def collect(self, signal: Signal, event: AlarmStateChangeEvent | None, now: datetime) -> Facts:
        """Facts about the signal's target; `event` (when given) adds the alarm's own datapoints for free."""
        facts = Facts()
        if event is not None:
            self._alarm_facts(facts, event)
        target = signal.target
        if target.kind == "db_instance" and target.db_instance_id:
            return self._collect_database(facts, signal, target.db_instance_id, now)
        if target.kind != "function" or not target.function_name:
            facts.missing["target"] = f"no function target ({target.display})"
            return facts
        name, qualifier = target.function_name, target.qualifier
        series: dict[str, list[tuple[datetime, float]]] | None = None
        if signal.kind in ("p99_latency", "throttles") and not qualifier:
            qualifier, series = self._traffic_qualifier(facts, name, now, signal.kind)
        else:
            facts.traffic_qualifier = qualifier
        facts.function_name, facts.qualifier = name, qualifier
        jobs: list[Job] = [
            ("lambda:GetFunction", _FUNCTION_FACTS, lambda: self._function(facts, name, qualifier)),
            ("lambda:GetAccountSettings", ("account_limit", "unreserved_concurrency"), lambda: self._account(facts)),
            ("cloudwatch:GetMetricData", _metric_facts(signal.kind),
             lambda: self._function_metrics(facts, signal.kind, name, qualifier, now, series)),
        ]  # fmt: skip
        if qualifier and qualifier != "$LATEST":
            jobs += [
                ("lambda:GetAlias", ("alias_version",), lambda: self._alias(facts, name, qualifier)),
                ("lambda:GetProvisionedConcurrencyConfig", _PC_FACTS, lambda: self._pc(facts, name, qualifier)),
                ("application-autoscaling:DescribeScalableTargets", _AUTOSCALING_FACTS,
                 lambda: self._autoscaling(facts, name, qualifier)),
            ]  # fmt: skip
        elif qualifier == "$LATEST":
            facts.pc_requested = facts.pc_allocated = facts.pc_available = 0
            facts.pc_status = "NONE"
            facts.has_autoscaling = False
        if signal.kind in ("throttles", "p99_latency"):
            jobs += [
                ("lambda:ListEventSourceMappings", _ESM_FACTS, lambda: self._event_sources(facts, name)),
                ("lambda:GetPolicy", ("async_sources",), lambda: self._async_sources(facts, name, qualifier)),
            ]
        if signal.kind == "p99_latency":
            jobs += [
                ("logs:StartQuery", _REPORT_FACTS, lambda: self._report_lines(facts, name, now)),
                ("lambda:ListProvisionedConcurrencyConfigs", ("pc_qualifiers", "pc_on_other_qualifiers"),
                 lambda: self._pc_elsewhere(facts, name, qualifier)),
            ]  # fmt: skip
        self._run(facts, jobs)
        self._derive(facts, signal.kind)
        if signal.kind == "throttles" and facts.tags and facts.tags.get(DATABASE_TAG):
            database = str(facts.tags[DATABASE_TAG])
            downstream = ("downstream_db_connection_ratio",)
            self._run(facts, [("rds:DescribeDBInstances", downstream, lambda: self._downstream(facts, database, now))])
        return facts

    def _run(self, facts: Facts, jobs: list[Job]) -> None:
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            futures = [(source, names, pool.submit(job)) for source, names, job in jobs]
        for source, names, future in futures:
            exc = future.exception()
            if exc is not None:
                for fact in names:
                    setattr(facts, fact, None)
                    facts.missing[fact] = f"{source} failed: {error_code(exc)}"

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
    def _function(self, facts: Facts, name: str, qualifier: str | None) -> None:
        kwargs = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        response = self.clients.lambda_.get_function(**kwargs)
        config = response["Configuration"]
        facts.function_arn = config.get("FunctionArn")
        facts.memory_mb = config.get("MemorySize")
        facts.timeout_s = config.get("Timeout")
        facts.runtime = config.get("Runtime")
        facts.architecture = (config.get("Architectures") or ["x86_64"])[0]
        tags = dict(response.get("Tags") or {})
        facts.tags = tags
        key, value = self.opt_in_tag
        facts.managed = tags.get(key) == value
        reserved = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        facts.has_reserved_concurrency = reserved is not None
        facts.reserved_concurrency = int(reserved) if reserved is not None else None
        if facts.memory_mb:
            facts.vcpus = round(facts.memory_mb / VCPU_MB, 3)
        facts.downstream_database = tags.get(DATABASE_TAG)
        facts.is_db_consumer = facts.downstream_database is not None
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

    def _pc_elsewhere(self, facts: Facts, name: str, qualifier: str | None) -> None:
        """PC configured on other qualifiers than the one the traffic hits (a misconfiguration of its own)."""
        configs: list[Any] = []
        paginator = self.clients.lambda_.get_paginator("list_provisioned_concurrency_configs")
        for page in paginator.paginate(FunctionName=name):
            configs.extend(page.get("ProvisionedConcurrencyConfigs", []))
        described, elsewhere = [], 0
        for config in configs:
            other = str(config.get("FunctionArn", "")).rsplit(":", 1)[-1]
            requested = int(config.get("RequestedProvisionedConcurrentExecutions", 0))
            described.append(f"{other}:{requested}({config.get('Status', '?')})")
            if other != qualifier:
                elsewhere += requested
        facts.pc_qualifiers = ", ".join(sorted(described)) or "none"
        facts.pc_on_other_qualifiers = elsewhere
        source = "lambda:ListProvisionedConcurrencyConfigs"
        facts.sources["pc_qualifiers"] = facts.sources["pc_on_other_qualifiers"] = source

    def _account(self, facts: Facts) -> None:
        limits = self.clients.lambda_.get_account_settings()["AccountLimit"]
        facts.account_limit = limits.get("ConcurrentExecutions")
        facts.unreserved_concurrency = limits.get("UnreservedConcurrentExecutions")
        facts.sources["account_limit"] = facts.sources["unreserved_concurrency"] = "lambda:GetAccountSettings"

    def _event_sources(self, facts: Facts, name: str) -> None:
        facts.event_sources = self._mappings(name)
        sqs = [source for source in facts.event_sources if source.kind == "sqs"]
        facts.has_sqs_source = bool(sqs)
        caps = [source.maximum_concurrency for source in sqs if source.maximum_concurrency is not None]
        facts.sqs_max_concurrency = min(caps) if caps else None
        for fact in _ESM_FACTS:
            facts.sources[fact] = "lambda:ListEventSourceMappings"

    def _mappings(self, name: str) -> list[EventSourceFacts]:
        mappings: list[EventSourceFacts] = []
        paginator = self.clients.lambda_.get_paginator("list_event_source_mappings")
        for page in paginator.paginate(FunctionName=name):
            for mapping in page.get("EventSourceMappings", []):
                arn = str(mapping.get("EventSourceArn", ""))
                service = arn.split(":")[2] if arn.count(":") >= 2 else ""
                kind = {"sqs": "sqs", "kinesis": "kinesis", "dynamodb": "dynamodb", "kafka": "kafka", "mq": "mq"}
                mappings.append(EventSourceFacts(
                    uuid=str(mapping["UUID"]), source_arn=arn, kind=kind.get(service, "other"),
                    state=str(mapping.get("State", "")),
                    maximum_concurrency=(mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"),
                    batch_size=mapping.get("BatchSize"),
                ))  # fmt: skip
        return mappings

    def _async_sources(self, facts: Facts, name: str, qualifier: str | None) -> None:
        """Who may invoke the function asynchronously, from its resource-based policies (function and alias)."""
        client = self.clients.lambda_
        sources: list[str] = []
        for kwargs in (
            {"FunctionName": name},
            *([{"FunctionName": name, "Qualifier": qualifier}] if qualifier else []),
        ):
            try:
                policy = json.loads(client.get_policy(**kwargs)["Policy"])
            except client.exceptions.ResourceNotFoundException:
                continue
            for statement in policy.get("Statement", []):
                principal = statement.get("Principal", {})
                service = principal.get("Service", "") if isinstance(principal, dict) else ""
                source_arn = str(_condition_value(statement, "AWS:SourceArn") or "")
                if service == "events.amazonaws.com":
                    sources.append(f"events:rule/{source_arn.rsplit('/', 1)[-1]}" if source_arn else "events:*")
                elif service == "sns.amazonaws.com":
                    sources.append(f"sns:{source_arn or '*'}")
                elif service == "s3.amazonaws.com":
                    sources.append(f"s3:{source_arn.rsplit(':', 1)[-1] or '*'}")
        facts.async_sources = ", ".join(dict.fromkeys(sources))
        facts.sources["async_sources"] = "lambda:GetPolicy (resource-based policy principals)"

    def _traffic_qualifier(
        self, facts: Facts, name: str, now: datetime, kind: str
    ) -> tuple[str | None, dict[str, list[tuple[datetime, float]]] | None]:
        """Which qualifier an unqualified alarm's traffic hits: the alias with most invocations, else $LATEST.

        The same GetMetricData also reads every candidate's own metrics (each alias's, and the unqualified ones), so
        the triage reads all its metrics in one request; returned with the qualifier (None: read them afterwards)."""
        try:
            aliases = [a["Name"] for a in self.clients.lambda_.list_aliases(FunctionName=name).get("Aliases", [])]
            metrics = [_Metric(fact="*", namespace="AWS/Lambda", name="Invocations",
                               dimensions={"FunctionName": name}, stat="Sum", reduce="sum")]  # fmt: skip
            metrics += [
                _Metric(fact=alias, namespace="AWS/Lambda", name="Invocations",
                        dimensions={"FunctionName": name, "Resource": f"{name}:{alias}"}, stat="Sum", reduce="sum")
                for alias in aliases
            ]  # fmt: skip
            candidates = [*aliases, "$LATEST"] if len(aliases) <= _PREFETCH_ALIASES else []
            for candidate in candidates:
                metrics += [metric.model_copy(update={"fact": f"{candidate}{_SEP}{metric.fact}"})
                            for metric in _function_wanted(kind, name, candidate)]  # fmt: skip
            points = self._query_points(metrics, now)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the fact unknown, with the reason
            facts.missing["traffic_qualifier"] = (
                f"lambda:ListAliases/cloudwatch:GetMetricData failed: {error_code(exc)}"
            )
            return None, None
        values = {fact: [value for _, value in found] for fact, found in points.items()}
        total = sum(values.get("*", []))
        by_alias = {alias: sum(values.get(alias, [])) for alias in aliases}
        facts.sources["traffic_qualifier"] = "lambda:ListAliases + cloudwatch:GetMetricData Invocations by Resource"
        busiest = max(by_alias, key=by_alias.__getitem__, default=None)
        chosen: str | None = None
        if busiest is not None and by_alias[busiest] > 0 and by_alias[busiest] >= total / 2:
            chosen = busiest
        elif total > 0:
            chosen = "$LATEST"  # invoked unqualified: $LATEST, where PC cannot be configured
        else:
            facts.missing["traffic_qualifier"] = "no Invocations datapoints for the function or its aliases"
        if chosen is not None:
            facts.traffic_qualifier = chosen
        prefix = f"{chosen or '$LATEST'}{_SEP}"
        series = {fact.removeprefix(prefix): found for fact, found in points.items() if fact.startswith(prefix)}
        return chosen, (series if candidates else None)

    # -- Logs: REPORT lines ---------------------------------------------------------------------------
    def _report_lines(self, facts: Facts, name: str, now: datetime) -> None:
        group = f"/aws/lambda/{name}"
        start, end = now - METRIC_WINDOW, now
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:  # both queries run at once: one wait, not two
                both = [pool.submit(self._insights, group, query, start, end) for query in (REPORT_QUERY, WARM_QUERY)]
            stats, warm = (future.result() for future in both)
            source = f"logs:StartQuery (Logs Insights) {group} REPORT lines [{_window()}]"
        except _InsightsUnavailable as unavailable:
            stats, warm = self._report_fallback(group, start, end)
            source = (f"logs:FilterLogEvents {group} REPORT lines [{_window()}], at most "
                      f"{REPORT_FALLBACK_MAX_LINES} (Logs Insights unavailable: {unavailable})")  # fmt: skip
        count = int(stats.get("invocations") or 0)
        facts.report_lines = count
        if count:
            facts.cold_starts = int(stats.get("cold") or 0)
            facts.cold_start_ratio = facts.cold_starts / count
            facts.init_duration_avg_ms = stats.get("init_avg") if facts.cold_starts else 0.0
            facts.duration_p99_ms = stats.get("p99")
            facts.warm_duration_avg_ms = warm.get("warm_avg")
            facts.warm_duration_p99_ms = warm.get("warm_p99")
            used, size = stats.get("memory_used"), stats.get("memory_size")
            if used is not None:
                facts.max_memory_used_mb = used / 1_000_000  # Logs Insights reports bytes (decimal MB)
                if size:
                    facts.memory_used_ratio = used / size
        else:
            for fact in _REPORT_FACTS[1:]:
                facts.missing[fact] = f"no REPORT lines in {group} in the last {_window()}"
        for fact in _REPORT_FACTS:
            facts.sources[fact] = source

    def _insights(self, group: str, query: str, start: datetime, end: datetime) -> dict[str, float | None]:
        logs = self.clients.client("logs")
        try:
            query_id = logs.start_query(logGroupName=group, startTime=int(start.timestamp()),
                                        endTime=int(end.timestamp()), queryString=query)["queryId"]  # fmt: skip
            deadline = time.monotonic() + INSIGHTS_TIMEOUT_S
            while True:
                response = logs.get_query_results(queryId=query_id)
                if response.get("status") == "Complete":
                    break
                if response.get("status") in ("Failed", "Cancelled", "Timeout", "Unknown"):
                    raise _InsightsUnavailable(f"query {response.get('status')}")
                if time.monotonic() > deadline:
                    raise _InsightsUnavailable(f"no result within {INSIGHTS_TIMEOUT_S:.0f}s")
                self.sleep(0.5)
        except _client_error() as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return {}
            raise _InsightsUnavailable(error_code(exc)) from exc
        rows = response.get("results") or []
        values: dict[str, float | None] = {}
        fields = {str(cell.get("field")) for cell in rows[0]} if rows else set()
        wanted = set(re.findall(r" as (\w+)", query))
        if rows and not wanted <= fields:
            raise _InsightsUnavailable(f"the answer lacks {', '.join(sorted(wanted - fields))}")
        for cell in rows[0] if rows else []:
            try:
                values[cell["field"]] = float(cell["value"])
            except (KeyError, TypeError, ValueError):
                values[str(cell.get("field"))] = None
        return values

    def _report_fallback(
        self, group: str, start: datetime, end: datetime
    ) -> tuple[dict[str, float | None], dict[str, float | None]]:
        logs = self.clients.client("logs")
        lines: list[ReportLine] = []
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "startTime": int(start.timestamp() * 1000),
            "endTime": int(end.timestamp() * 1000),
            "filterPattern": '"REPORT RequestId"',
        }
        try:
            while len(lines) < REPORT_FALLBACK_MAX_LINES:
                page = logs.filter_log_events(**kwargs)
                lines += [line for e in page.get("events", []) if (line := parse_report_line(e.get("message", "")))]
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except _client_error() as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return {}, {}
            raise
        return summarize_report_lines(lines[:REPORT_FALLBACK_MAX_LINES])

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
    def _function_metrics(
        self, facts: Facts, kind: str, name: str, qualifier: str | None, now: datetime,
        series: dict[str, list[tuple[datetime, float]]] | None = None,
    ) -> None:  # fmt: skip
        """The function's metrics: from `series` when an earlier request read them already, else one request."""
        wanted = _function_wanted(kind, name, qualifier)
        if series is None:
            series = self._query_points(wanted, now)
        source = f"cloudwatch:GetMetricData [{_window()}]"
        optional = {"peak_concurrency", "account_concurrency_peak", "account_claimed_concurrency_peak"}
        for metric in wanted:
            points = series.get(metric.fact, [])
            values = [value for _, value in points]
            facts.sources[metric.fact] = f"{source} {metric.name} {metric.stat}"
            if metric.reduce == "series":
                self._ramp(facts, points, facts.sources[metric.fact])
                continue
            if metric.fact in optional and not values:
                facts.missing[metric.fact] = f"no datapoints for {metric.name} in the last {_window()}"
                continue
            value = (sum(values) if metric.reduce == "sum" else max(values)) if values else 0.0
            setattr(facts, metric.fact, value)
        facts.sources.pop("function_concurrency_series", None)

    def _ramp(self, facts: Facts, points: list[tuple[datetime, float]], source: str) -> None:
        if not points:
            facts.missing["function_peak_concurrency"] = f"no ConcurrentExecutions datapoints in the last {_window()}"
            return
        facts.function_peak_concurrency = max(value for _, value in points)
        steps = [(later[1] - earlier[1], earlier[0]) for earlier, later in itertools.pairwise(points)]
        climb, began = max(steps, default=(0.0, points[0][0]), key=lambda step: step[0])
        facts.concurrency_ramp_per_min = max(0.0, climb) * (60 / METRIC_PERIOD_S)
        facts.ramp_start_minute_of_day = float(began.hour * 60 + began.minute) if climb > 0 else None
        for fact in ("function_peak_concurrency", "concurrency_ramp_per_min", "ramp_start_minute_of_day"):
            facts.sources[fact] = source

    def _query(self, wanted: list[_Metric], now: datetime) -> dict[str, list[float]]:
        """One GetMetricData (paginated) for every metric: fact → values, oldest first."""
        return {fact: [value for _, value in points] for fact, points in self._query_points(wanted, now).items()}

    def _query_points(self, wanted: list[_Metric], now: datetime) -> dict[str, list[tuple[datetime, float]]]:
        """One GetMetricData (paginated) for every metric: fact → (timestamp, value), oldest first.

        One query per distinct series: several facts may reduce the same series differently."""
        end = align_up(now, METRIC_PERIOD_S)
        start = end - METRIC_WINDOW
        ids: dict[tuple[str, str, tuple[tuple[str, str], ...], str], str] = {}
        by_query: dict[str, _Metric] = {}
        for metric in wanted:
            query_id = ids.setdefault(_series_key(metric), f"m{len(ids)}")
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
        results: dict[str, list[tuple[datetime, float]]] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end,
                                      "ScanBy": "TimestampAscending"}  # fmt: skip
            if token:
                kwargs["NextToken"] = token
            response = self.clients.cloudwatch.get_metric_data(**kwargs)
            for result in response["MetricDataResults"]:
                pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                results.setdefault(result["Id"], []).extend((t, float(v)) for t, v in pairs)
            token = response.get("NextToken")
            if not token:
                break
        return {metric.fact: sorted(results.get(ids[_series_key(metric)], [])) for metric in wanted}

    # -- derived facts ------------------------------------------------------------------------------
    def _derive(self, facts: Facts, kind: str) -> None:
        if facts.account_concurrency_peak is not None and facts.account_limit:
            facts.account_utilization = facts.account_concurrency_peak / facts.account_limit
            facts.sources["account_utilization"] = "account_concurrency_peak / account_limit"
        peak = facts.function_peak_concurrency
        if peak is not None and facts.reserved_concurrency:
            facts.reserved_utilization = peak / facts.reserved_concurrency
            facts.sources["reserved_utilization"] = "function_peak_concurrency / reserved_concurrency"
        if (
            kind in ("throttles", "p99_latency")
            and "async_sources" not in facts.missing
            and "event_sources" not in facts.missing
        ):
            facts.invocation_type = _invocation_type(facts)
            facts.sources["invocation_type"] = (
                f"tag {INVOCATION_TAG}" if (facts.tags or {}).get(INVOCATION_TAG) in _INVOCATION_TYPES
                else "event source mappings + resource-based policy"
            )  # fmt: skip
        if facts.max_memory_used_mb is not None and facts.memory_mb and facts.memory_used_ratio is None:
            facts.memory_used_ratio = facts.max_memory_used_mb / facts.memory_mb

    # -- the database ---------------------------------------------------------------------------------
    def _database(self, facts: Facts, instance_id: str) -> None:
        """Engine, class and max_connections (the parameter group's value, else the engine default)."""
        rds = self.clients.client("rds")
        instance = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
        facts.db_instance = instance_id
        facts.db_engine = str(instance.get("Engine", ""))
        facts.db_instance_class = str(instance.get("DBInstanceClass", ""))
        value: int | None = None
        source = "rds:DescribeDBInstances"
        for group in instance.get("DBParameterGroups", []):
            name = group.get("DBParameterGroupName", "")
            paginator = rds.get_paginator("describe_db_parameters")
            for page in paginator.paginate(DBParameterGroupName=name):
                for parameter in page.get("Parameters", []):
                    if parameter.get("ParameterName") == "max_connections" and parameter.get("ParameterValue"):
                        raw = str(parameter["ParameterValue"])
                        value = int(raw) if raw.isdigit() else _engine_default(facts.db_engine, facts.db_instance_class)
                        source = f"rds:DescribeDBParameters {name}" + ("" if raw.isdigit() else f" ({raw}, estimated)")
        if value is None:
            value = _engine_default(facts.db_engine, facts.db_instance_class)
            source = f"engine default for {facts.db_engine} on {facts.db_instance_class} (estimated)"
        facts.db_max_connections = value
        facts.sources["db_max_connections"] = source
        for fact in ("db_instance", "db_engine", "db_instance_class"):
            facts.sources[fact] = "rds:DescribeDBInstances"
        if value is None:
            facts.missing["db_max_connections"] = (
                f"no parameter value and no known memory for {facts.db_instance_class}"
            )

    def _collect_database(self, facts: Facts, signal: Signal, instance_id: str, now: datetime) -> Facts:
        facts.db_instance = instance_id
        connections = [_Metric(fact="db_connections", namespace="AWS/RDS", name="DatabaseConnections",
                               dimensions={"DBInstanceIdentifier": instance_id}, stat="Maximum")]  # fmt: skip
        consumers: list[ConsumerFacts] = []
        read: dict[str, list[float]] = {}  # the database's series, when the consumers' request read it along

        def metrics() -> None:
            values = read["db_connections"] if "db_connections" in read else self._query(connections, now).get(
                "db_connections", [])  # fmt: skip
            facts.sources["db_connections"] = f"cloudwatch:GetMetricData DatabaseConnections Maximum [{_window()}]"
            if values:
                facts.db_connections = max(values)
            elif facts.alarm_value is not None:
                facts.db_connections = facts.alarm_value
                facts.sources["db_connections"] = facts.sources["alarm_value"]

        def find_consumers() -> None:
            consumers.extend(self._consumers(instance_id))

        self._run(facts, [
            ("rds:DescribeDBInstances", _DB_FACTS, lambda: self._database(facts, instance_id)),
            ("tag:GetResources", _CONSUMER_FACTS, find_consumers),
            ("lambda:GetAccountSettings", ("account_limit", "unreserved_concurrency"), lambda: self._account(facts)),
        ])  # fmt: skip
        if "consumers" not in facts.missing and consumers:
            # The consumers' concurrency and the database's connections: one GetMetricData.
            self._run(facts, [("lambda:GetFunction", _CONSUMER_FACTS,
                               lambda: self._describe_consumers(consumers, now, connections[0], read))])  # fmt: skip
        self._run(facts, [("cloudwatch:GetMetricData", ("db_connections",), metrics)])
        if "consumers" not in facts.missing:
            facts.consumers = consumers
            facts.consumer_count = len(consumers)
            facts.queue_consumer_count = sum(1 for c in consumers if c.sqs_sources)
            facts.managed_consumer_count = sum(1 for c in consumers if c.managed)
            peaks = [c.peak_concurrency for c in consumers]
            facts.consumers_peak_concurrency = sum(p for p in peaks if p is not None) if None not in peaks else None
            if facts.consumers_peak_concurrency is None:
                facts.missing["consumers_peak_concurrency"] = "a consumer has no ConcurrentExecutions datapoints"
            for fact in _CONSUMER_FACTS:
                facts.sources[fact] = f"tag:GetResources {DATABASE_TAG}={instance_id} + lambda + cloudwatch"
        if facts.db_connections is not None and facts.db_max_connections:
            facts.db_connection_ratio = facts.db_connections / facts.db_max_connections
            facts.sources["db_connection_ratio"] = "db_connections / db_max_connections"
        return facts

    def _consumers(self, instance_id: str) -> list[ConsumerFacts]:
        tagging = self.clients.client("resourcegroupstaggingapi")
        names: list[str] = []
        paginator = tagging.get_paginator("get_resources")
        for page in paginator.paginate(TagFilters=[{"Key": DATABASE_TAG, "Values": [instance_id]}],
                                       ResourceTypeFilters=["lambda:function"]):  # fmt: skip
            for resource in page.get("ResourceTagMappingList", []):
                arn = str(resource.get("ResourceARN", ""))
                parts = arn.split(":")
                if len(parts) >= 7 and parts[5] == "function":
                    names.append(parts[6])
        return [ConsumerFacts(function_name=name) for name in sorted(set(names))]

    def _describe_consumers(self, consumers: list[ConsumerFacts], now: datetime, database: _Metric,
                            read: dict[str, list[float]]) -> None:  # fmt: skip
        """Each consumer's configuration, event sources and peak concurrency; the `database` metric is read in the
        same GetMetricData (into `read`, under its fact)."""
        key, value = self.opt_in_tag
        metrics = [
            _Metric(fact=f"{_SEP}{c.function_name}", namespace="AWS/Lambda", name="ConcurrentExecutions",
                    dimensions={"FunctionName": c.function_name}, stat="Maximum")
            for c in consumers
        ]  # fmt: skip
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            described = list(pool.map(lambda c: self.clients.lambda_.get_function(FunctionName=c.function_name),
                                      consumers))  # fmt: skip
            mappings = list(pool.map(lambda c: self._mappings(c.function_name), consumers))
        found = self._query([*metrics, database], now)
        read[database.fact] = found.get(database.fact, [])
        peaks = {fact.removeprefix(_SEP): values for fact, values in found.items() if fact.startswith(_SEP)}
        for consumer, response, sources in zip(consumers, described, mappings, strict=True):
            tags = response.get("Tags") or {}
            consumer.managed = tags.get(key) == value
            reserved = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
            consumer.reserved_concurrency = int(reserved) if reserved is not None else None
            consumer.event_sources = sources
            values = peaks.get(consumer.function_name, [])
            consumer.peak_concurrency = max(values) if values else None

    def _downstream(self, facts: Facts, instance_id: str, now: datetime) -> None:
        """For a throttled function that talks to a database: how close that database is to max_connections."""
        probe = Facts()
        self._database(probe, instance_id)
        connections = _Metric(fact="c", namespace="AWS/RDS", name="DatabaseConnections",
                              dimensions={"DBInstanceIdentifier": instance_id}, stat="Maximum")  # fmt: skip
        values = self._query([connections], now)
        if values.get("c") and probe.db_max_connections:
            facts.downstream_db_connection_ratio = max(values["c"]) / probe.db_max_connections
            facts.sources["downstream_db_connection_ratio"] = (
                f"DatabaseConnections of {instance_id} / max_connections ({probe.sources['db_max_connections']})"
            )
        else:
            facts.missing["downstream_db_connection_ratio"] = f"no DatabaseConnections datapoints for {instance_id}"


class _InsightsUnavailable(Exception):
    """Logs Insights could not answer (permission, quota, timeout): use the bounded fallback."""


class ReportLine(BaseModel):
    model_config = ConfigDict(defer_build=True)  # only the p99 latency facts parse REPORT lines

    duration_ms: float
    memory_size_mb: float
    max_memory_used_mb: float
    init_duration_ms: float | None = None


_REPORT = re.compile(
    r"^REPORT RequestId: \S+\s+Duration: (?P<duration>[\d.]+) ms\s+Billed Duration: [\d.]+ ms\s+"
    r"Memory Size: (?P<size>\d+) MB\s+Max Memory Used: (?P<used>\d+) MB(?:\s+Init Duration: (?P<init>[\d.]+) ms)?"
)


def parse_report_line(message: str) -> ReportLine | None:
    """A Lambda REPORT line's numbers, or None when the message is not one."""
    match = _REPORT.match(message.strip())
    if match is None:
        return None
    init = match.group("init")
    return ReportLine(
        duration_ms=float(match.group("duration")),
        memory_size_mb=float(match.group("size")),
        max_memory_used_mb=float(match.group("used")),
        init_duration_ms=float(init) if init else None,
    )


def summarize_report_lines(lines: list[ReportLine]) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """The same numbers as REPORT_QUERY and WARM_QUERY (memory in bytes, as Logs Insights reports it)."""
    if not lines:
        return {"invocations": 0.0}, {}
    cold = [line.init_duration_ms for line in lines if line.init_duration_ms is not None]
    warm = [line.duration_ms for line in lines if line.init_duration_ms is None]
    stats: dict[str, float | None] = {
        "invocations": float(len(lines)),
        "cold": float(len(cold)),
        "init_avg": sum(cold) / len(cold) if cold else None,
        "p99": _nearest_rank([line.duration_ms for line in lines], 99),
        "memory_used": max(line.max_memory_used_mb for line in lines) * 1_000_000,
        "memory_size": max(line.memory_size_mb for line in lines) * 1_000_000,
    }
    warm_stats: dict[str, float | None] = {
        "warm_avg": sum(warm) / len(warm) if warm else None,
        "warm_p99": _nearest_rank(warm, 99) if warm else None,
    }
    return stats, warm_stats


def _nearest_rank(values: list[float], percentile: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percentile / 100 * len(ordered)) - 1)]


def _engine_default(engine: str | None, instance_class: str | None) -> int | None:
    """RDS's default max_connections: PostgreSQL LEAST(DBInstanceClassMemory/9531392, 5000), MySQL/MariaDB
    DBInstanceClassMemory/12582880 (RDS user guide, "Maximum number of database connections"). Nominal class
    memory stands in for DBInstanceClassMemory (AWS reserves some for the OS), so this is a slight overestimate."""
    gib = DB_CLASS_MEMORY_GIB.get(instance_class or "")
    if gib is None or not engine:
        return None
    memory = gib * 1024**3
    if "postgres" in engine:
        return int(min(memory // 9531392, 5000))
    if "mysql" in engine or "mariadb" in engine:
        return int(memory // 12582880)
    return None


_INVOCATION_TYPES = ("sync", "async", "sqs", "stream")


def _invocation_type(facts: Facts) -> str:
    """The tag medic:invocation when valid; else an SQS/stream mapping, else async producers, else sync."""
    tagged = (facts.tags or {}).get(INVOCATION_TAG)
    if tagged in _INVOCATION_TYPES:
        return tagged
    kinds = {source.kind for source in facts.event_sources or []}
    if "sqs" in kinds:
        return "sqs"
    if kinds & {"kinesis", "dynamodb", "kafka", "mq"}:
        return "stream"
    return "async" if facts.async_sources else "sync"


def _condition_value(statement: dict[str, Any], key: str) -> Any:
    for operator_values in (statement.get("Condition") or {}).values():
        for name, value in operator_values.items():
            if name.lower() == key.lower():
                return value[0] if isinstance(value, list) else value
    return None


def _client_error() -> type[Exception]:
    from botocore.exceptions import ClientError

    return ClientError


def _window() -> str:
    return f"{int(METRIC_WINDOW.total_seconds() // 60)}m@{METRIC_PERIOD_S}s"


def _function_wanted(kind: str, name: str, qualifier: str | None) -> list[_Metric]:
    """The metrics a function's facts are read from, for a signal `kind` (qualified: the alias's own series too)."""
    qualified = bool(qualifier and qualifier != "$LATEST")
    resource = {"FunctionName": name, "Resource": f"{name}:{qualifier}"} if qualified else {"FunctionName": name}
    function = {"FunctionName": name}
    wanted = [
        _Metric(fact="invocations", namespace="AWS/Lambda", name="Invocations", dimensions=resource,
                stat="Sum", reduce="sum"),
        _Metric(fact="throttles", namespace="AWS/Lambda", name="Throttles", dimensions=function,
                stat="Sum", reduce="sum"),
        _Metric(fact="peak_concurrency", namespace="AWS/Lambda", name="ConcurrentExecutions",
                dimensions=resource, stat="Maximum"),
    ]  # fmt: skip
    if qualified:
        wanted += [
            _Metric(fact="spillover_invocations", namespace="AWS/Lambda",
                    name="ProvisionedConcurrencySpilloverInvocations", dimensions=resource, stat="Sum",
                    reduce="sum"),
            _Metric(fact="spillover_peak", namespace="AWS/Lambda",
                    name="ProvisionedConcurrencySpilloverInvocations", dimensions=resource, stat="Sum"),
            _Metric(fact="pc_utilization_max", namespace="AWS/Lambda",
                    name="ProvisionedConcurrencyUtilization", dimensions=resource, stat="Maximum"),
        ]  # fmt: skip
    if kind == "throttles":
        wanted += [
            _Metric(fact="account_concurrency_peak", namespace="AWS/Lambda", name="ConcurrentExecutions",
                    dimensions={}, stat="Maximum"),
            _Metric(fact="account_claimed_concurrency_peak", namespace="AWS/Lambda",
                    name="ClaimedAccountConcurrency", dimensions={}, stat="Maximum"),
            _Metric(fact="function_concurrency_series", namespace="AWS/Lambda", name="ConcurrentExecutions",
                    dimensions=function, stat="Maximum", reduce="series"),
        ]  # fmt: skip
    return wanted


def _series_key(metric: _Metric) -> tuple[str, str, tuple[tuple[str, str], ...], str]:
    return (metric.namespace, metric.name, tuple(metric.dimensions.items()), metric.stat)


def align_up(when: datetime, period_s: int) -> datetime:
    """The end of the period `when` falls in (a period boundary at or after `when`)."""
    epoch = when.timestamp()
    return datetime.fromtimestamp(math.ceil(epoch / period_s) * period_s, tz=when.tzinfo)


def _metric_facts(kind: str) -> tuple[str, ...]:
    names: tuple[str, ...] = ("invocations", "throttles", "peak_concurrency", "spillover_invocations", "spillover_peak",
             "pc_utilization_max")  # fmt: skip
    if kind == "throttles":
        names += ("account_concurrency_peak", "account_claimed_concurrency_peak", "function_peak_concurrency",
                  "concurrency_ramp_per_min", "ramp_start_minute_of_day")  # fmt: skip
    return names


_FUNCTION_FACTS = (
    "function_arn", "memory_mb", "timeout_s", "runtime", "architecture", "tags", "managed",
    "has_reserved_concurrency", "reserved_concurrency", "vcpus", "downstream_database", "is_db_consumer",
)  # fmt: skip
_PC_FACTS = ("pc_requested", "pc_allocated", "pc_available", "pc_status", "pc_status_reason")
_AUTOSCALING_FACTS = ("has_autoscaling", "autoscaling_min", "autoscaling_max", "target_utilization")
_ESM_FACTS = ("event_sources", "has_sqs_source", "sqs_max_concurrency")
_REPORT_FACTS = (
    "report_lines", "cold_starts", "cold_start_ratio", "init_duration_avg_ms", "duration_p99_ms",
    "warm_duration_avg_ms", "warm_duration_p99_ms", "max_memory_used_mb", "memory_used_ratio",
)  # fmt: skip
_DB_FACTS = ("db_instance", "db_engine", "db_instance_class", "db_max_connections")
_CONSUMER_FACTS = (
    "consumers", "consumer_count", "queue_consumer_count", "managed_consumer_count", "consumers_peak_concurrency",
)  # fmt: skip
