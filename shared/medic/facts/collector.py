"""The fact collector: the fewest calls, concurrently, each fact with its source, unknown (never guessed) on failure.

One `GetFunction` (configuration, tags, reserved concurrency and logging config together), the alias, its provisioned
concurrency, the Application Auto Scaling target and policies, the account settings, and a single `GetMetricData` for
every series the fallback chains may read (`medic.facts.chains`). What depends on their answers (the database behind a
function, the consumers of a database) comes after. A call that fails leaves its facts unknown with the reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Final

from medic.alarms.events import AlarmStateChangeEvent
from medic.alarms.signals import Signal
from medic.aws import AwsClients, error_code
from medic.facts import chains, database
from medic.facts.model import (
    BASELINE,
    DATABASE_TAG,
    INVOCATION_TAG,
    METRIC_WINDOW,
    SQS_BUFFER_TAG,
    VCPU_MB,
    EventSourceFacts,
    Facts,
)
from medic.facts.reports import ReportReader, default_log_group
from medic.facts.series import Points, SeriesSpec, in_window, read_series, window, window_start
from medic.planning.pool import minimum_unreserved

PC_DIMENSION: Final = "lambda:function:ProvisionedConcurrency"
#: An unqualified alarm's candidates (aliases + $LATEST) whose metrics are read with the traffic split in one request
#: (a few dozen series each, under GetMetricData's 500 queries); a function with more aliases reads them afterwards.
PREFETCH_ALIASES: Final = 12

Job = tuple[str, tuple[str, ...], Callable[[], None]]

FUNCTION_FACTS: Final = (
    "function_arn", "memory_mb", "timeout_s", "runtime", "architecture", "tags", "managed",
    "has_reserved_concurrency", "reserved_concurrency", "vcpus", "downstream_database", "is_db_consumer",
    "log_group", "log_format", "sqs_buffer_ready",
)  # fmt: skip
PC_FACTS: Final = ("pc_requested", "pc_allocated", "pc_available", "pc_status", "pc_status_reason")
AUTOSCALING_FACTS: Final = ("has_autoscaling", "autoscaling_min", "autoscaling_max", "target_utilization")
ESM_FACTS: Final = ("event_sources", "has_sqs_source", "sqs_max_concurrency")
REPORT_FACTS: Final = (
    "report_lines", "cold_starts", "cold_start_ratio", "init_duration_avg_ms", "duration_p99_ms",
    "warm_duration_avg_ms", "warm_duration_p99_ms", "max_memory_used_mb", "memory_used_ratio",
    "cold_duration_avg_ms", "slow_invocations", "slow_cold_share",
)  # fmt: skip
SHAPE_FACTS: Final = (
    "function_peak_concurrency", "concurrency_ramp_per_min", "ramp_start_minute_of_day", "throttled_minutes",
    "climbing_when_throttled",
)  # fmt: skip
INVOCATION_TYPES: Final = ("sync", "async", "sqs", "stream")


class FactCollector:
    """Collects `Facts` for a signal. Inject the clients; the clock decides the metric window."""

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
        "logs:DescribeLogStreams",  # which version an unqualified alarm's traffic runs, when no series says
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
            alarm_facts(facts, event)
        target = signal.target
        if target.kind == "db_instance" and target.db_instance_id:
            return self._collect_database(facts, target.db_instance_id, now)
        if target.kind != "function" or not target.function_name:
            facts.missing["target"] = f"no function target ({target.display})"
            return facts
        kind, name, qualifier = signal.kind, target.function_name, target.qualifier
        read: dict[SeriesSpec, Points] = {}
        if kind in ("p99_latency", "throttles") and not qualifier:
            qualifier = self._traffic_qualifier(facts, name, now, kind, read)
        else:
            facts.traffic_qualifier = qualifier
        facts.function_name, facts.qualifier = name, qualifier
        wanted = self._wanted(kind, name, qualifier)
        metric_facts = (*(chain.fact for chain in wanted), *(SHAPE_FACTS if kind == "throttles" else ()),
                        *(("duration_baseline_avg_ms",) if kind == "p99_latency" else ()))  # fmt: skip
        jobs: list[Job] = [
            ("lambda:GetFunction", FUNCTION_FACTS, lambda: self._function(facts, name, qualifier)),
            ("lambda:GetAccountSettings", ("account_limit", "unreserved_concurrency", "minimum_unreserved"),
             lambda: self._account(facts)),
            ("cloudwatch:GetMetricData", metric_facts, lambda: self._read_metrics(kind, name, qualifier, now, read)),
        ]  # fmt: skip
        if qualifier and qualifier != "$LATEST":
            jobs += [
                ("lambda:GetAlias", ("alias_version",), lambda: self._alias(facts, name, qualifier)),
                ("lambda:GetProvisionedConcurrencyConfig", PC_FACTS, lambda: self._pc(facts, name, qualifier)),
                ("application-autoscaling:DescribeScalableTargets", AUTOSCALING_FACTS,
                 lambda: self._autoscaling(facts, name, qualifier)),
            ]  # fmt: skip
        elif qualifier == "$LATEST":
            facts.pc_requested = facts.pc_allocated = facts.pc_available = 0
            facts.pc_status = "NONE"
            facts.has_autoscaling = False
            for fact in (*PC_FACTS, *AUTOSCALING_FACTS):
                facts.sources[fact] = "$LATEST: AWS puts no provisioned concurrency on it"
        if kind in ("throttles", "p99_latency"):
            jobs += [
                ("lambda:ListEventSourceMappings", ESM_FACTS, lambda: self._event_sources(facts, name)),
                ("lambda:GetPolicy", ("async_sources",), lambda: self._async_sources(facts, name, qualifier)),
            ]
        if kind == "p99_latency" or (qualifier and qualifier != "$LATEST"):
            # PC on the other qualifiers: the p99 table asks where the PC sits; a PC change must fit the reservation.
            jobs.append(("lambda:ListProvisionedConcurrencyConfigs",
                         ("pc_qualifiers", "pc_on_other_qualifiers", "pc_version_taken"),
                         lambda: self._pc_elsewhere(facts, name, qualifier)))  # fmt: skip
        self._run(facts, jobs)
        if "cloudwatch:GetMetricData failed" not in facts.missing.get(metric_facts[0], ""):
            self._metric_facts(facts, kind, name, qualifier, now, read, wanted)
        if kind == "p99_latency":  # after GetFunction: where the reports are, and in which format
            self._run(facts, [("logs:StartQuery", REPORT_FACTS, lambda: self._reports(facts, name, now))])
        self._derive(facts, kind)
        if kind == "throttles" and facts.tags and facts.tags.get(DATABASE_TAG):
            instance = str(facts.tags[DATABASE_TAG])
            self._run(facts, [("rds:DescribeDBInstances", ("downstream_db_connection_ratio",),
                               lambda: database.downstream_pressure(self.clients, facts, instance, now))])  # fmt: skip
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

    # -- CloudWatch ---------------------------------------------------------------------------------
    @staticmethod
    def _wanted(kind: str, name: str, qualifier: str | None) -> list[chains.Chain]:
        return chains.function_chains(kind, name, qualifier)

    @staticmethod
    def _extra(kind: str, name: str, qualifier: str | None) -> list[tuple[chains.Source, ...]]:
        extra: list[tuple[chains.Source, ...]] = []
        if kind == "throttles":
            extra.append(chains.concurrency_series_sources(name))
            extra.append((chains.Source((chains.throttles_series(name),), lambda _p, _f: None),))
        if kind == "p99_latency":
            extra.append(chains.baseline_chain(name, qualifier).sources)
        return extra

    def _lookback(self, kind: str) -> Any:
        return METRIC_WINDOW + BASELINE if kind == "p99_latency" else METRIC_WINDOW

    def _read_metrics(self, kind: str, name: str, qualifier: str | None, now: datetime,
                      read: dict[SeriesSpec, Points]) -> None:  # fmt: skip
        """One GetMetricData for every series the chains may read (none when the traffic split read them along)."""
        wanted = chains.all_series(self._wanted(kind, name, qualifier), *self._extra(kind, name, qualifier))
        missing = [spec for spec in wanted if spec not in read]
        if missing:
            read.update(read_series(self.clients, missing, now, self._lookback(kind)))

    def _metric_facts(self, facts: Facts, kind: str, name: str, qualifier: str | None, now: datetime,
                      read: dict[SeriesSpec, Points], wanted: list[chains.Chain]) -> None:  # fmt: skip
        chains.resolve(wanted, read, facts, now)
        if kind == "p99_latency":
            chains.resolve([chains.baseline_chain(name, qualifier)], read, facts, now, baseline=True)
        if kind != "throttles":
            return
        for source in chains.concurrency_series_sources(name):
            parts = [in_window(read.get(spec, []), now) for spec in source.series]
            series = parts[0] if len(parts) == 1 else chains.littles_law_series(parts[0], parts[1])
            if series:
                break
        else:
            tried = "; ".join(source.describe() for source in chains.concurrency_series_sources(name))
            for fact in SHAPE_FACTS:
                facts.missing[fact] = f"no datapoints in the last {window()} for {tried}"
            return
        throttles = in_window(read.get(chains.throttles_series(name), []), now)
        shape = chains.throttle_shape(series, throttles)
        facts.function_peak_concurrency = shape.peak
        facts.concurrency_ramp_per_min = shape.ramp_per_min
        facts.ramp_start_minute_of_day = shape.ramp_start_minute_of_day
        facts.throttled_minutes = shape.throttled_minutes
        facts.climbing_when_throttled = shape.climbing_when_throttled
        described = f"{chains.PREFIX} {source.describe()}"
        for fact in SHAPE_FACTS:
            facts.sources[fact] = described
        facts.sources["throttled_minutes"] = facts.sources["climbing_when_throttled"] = (
            f"{described} against {chains.throttles_series(name).describe()}"
        )
        if shape.ramp_start_minute_of_day is None:
            facts.missing["ramp_start_minute_of_day"] = "the function's concurrency did not climb in the window"
        if shape.climbing_when_throttled is None:
            facts.missing["climbing_when_throttled"] = f"no throttled minute in the last {window()}"

    def _traffic_qualifier(
        self, facts: Facts, name: str, now: datetime, kind: str, read: dict[SeriesSpec, Points]
    ) -> str | None:
        """Which qualifier an unqualified alarm's traffic hits: the alias with most invocations, else $LATEST.

        An alias's invocations: its `Resource` series, else its `ExecutedVersion` series (the versions it routes to);
        when an account has neither, the versions in the function's log stream names. $LATEST only on evidence (no
        alias, or streams of $LATEST only), never because the aliases' series are missing. The same GetMetricData
        reads every candidate's own series too, so the triage reads all its metrics in one request (into `read`)."""
        try:
            aliases = self.clients.lambda_.list_aliases(FunctionName=name).get("Aliases", [])
            total = SeriesSpec.lambda_("Invocations", "Sum", FunctionName=name)
            by_alias: dict[str, list[SeriesSpec]] = {}
            versions: dict[str, str] = {}
            for alias in aliases:
                resource = f"{name}:{alias['Name']}"
                routed = [str(alias["FunctionVersion"]),
                          *((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})]  # fmt: skip
                versions.update({version: alias["Name"] for version in routed[:1]})
                by_alias[alias["Name"]] = [
                    SeriesSpec.lambda_("Invocations", "Sum", FunctionName=name, Resource=resource),
                    *(SeriesSpec.lambda_("Invocations", "Sum", FunctionName=name, Resource=resource,
                                         ExecutedVersion=version) for version in routed),
                ]  # fmt: skip
            specs = [total, *(spec for specs in by_alias.values() for spec in specs)]
            if len(aliases) <= PREFETCH_ALIASES:
                for candidate in [*by_alias, "$LATEST"]:
                    specs += chains.all_series(self._wanted(kind, name, candidate), *self._extra(kind, name, candidate))
            read.update(read_series(self.clients, specs, now, self._lookback(kind)))
        except Exception as exc:  # noqa: BLE001 - any failure leaves the fact unknown, with the reason
            failed = f"lambda:ListAliases/cloudwatch:GetMetricData failed: {error_code(exc)}"
            facts.missing["traffic_qualifier"] = failed
            return None

        def invoked(spec: SeriesSpec) -> float:
            return sum(v for _, v in in_window(read.get(spec, []), now))

        counts = {alias: invoked(specs[0]) or sum(invoked(spec) for spec in specs[1:])
                  for alias, specs in by_alias.items()}  # fmt: skip
        everything = invoked(total)
        facts.sources["traffic_qualifier"] = (
            "lambda:ListAliases + cloudwatch:GetMetricData Invocations by Resource (else by ExecutedVersion)"
        )
        busiest = max(counts, key=counts.__getitem__, default=None)
        if busiest is not None and counts[busiest] > 0 and counts[busiest] >= everything / 2:
            facts.traffic_qualifier = busiest
        elif everything > 0 and not by_alias:
            facts.traffic_qualifier = "$LATEST"  # invoked unqualified: $LATEST, where PC cannot be configured
        elif everything > 0:
            self._qualifier_from_streams(facts, name, versions, now)
        else:
            facts.missing["traffic_qualifier"] = (
                f"no datapoints in the last {window()} for {total.describe()} nor its aliases' Resource series"
            )
        return facts.traffic_qualifier

    def _qualifier_from_streams(self, facts: Facts, name: str, aliases: dict[str, str], now: datetime) -> None:
        """The qualifier from the versions in the log stream names the function wrote to in the window (Lambda names
        them `…/[<version>]…`, `…/<name>[<version>]…` in a custom group): only $LATEST, or versions one alias serves."""
        try:
            logging = (self.clients.lambda_.get_function(FunctionName=name)["Configuration"].get("LoggingConfig")
                       or {})  # fmt: skip
            group = str(logging.get("LogGroup") or default_log_group(name))
            streams = (
                self.clients.client("logs")
                .describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True, limit=50)
                .get("logStreams", [])
            )
        except Exception as exc:  # noqa: BLE001 - any failure leaves the fact unknown, with the reason
            facts.missing["traffic_qualifier"] = (
                f"no Invocations by alias, and lambda:GetFunction/logs:DescribeLogStreams failed: {error_code(exc)}"
            )
            return
        since = int(window_start(now).timestamp() * 1000)
        shared = group != default_log_group(name)
        seen = set()
        for stream in streams:
            stream_name = str(stream.get("logStreamName", ""))
            if int(stream.get("lastEventTimestamp") or 0) < since or (shared and f"/{name}[" not in stream_name):
                continue
            version = stream_name.partition("[")[2].partition("]")[0]
            if version:
                seen.add(version)
        served = {aliases.get(version, "?" if version != "$LATEST" else "$LATEST") for version in seen}
        source = f"logs:DescribeLogStreams {group}: the versions the function logged from ({', '.join(sorted(seen))})"
        if len(served) == 1 and "?" not in served:
            facts.traffic_qualifier = served.pop()
            facts.sources["traffic_qualifier"] = source
        else:
            facts.missing["traffic_qualifier"] = (
                "no Invocations by alias (Resource or ExecutedVersion) in the last "
                f"{window()}, and the log streams do not name one qualifier ({', '.join(sorted(seen)) or 'none'})"
            )

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
        logging = config.get("LoggingConfig") or {}
        facts.log_group = str(logging.get("LogGroup") or default_log_group(name))
        facts.log_format = str(logging.get("LogFormat") or "Text")
        tags = dict(response.get("Tags") or {})
        facts.tags = tags
        key, value = self.opt_in_tag
        facts.managed = tags.get(key) == value
        reserved = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        facts.has_reserved_concurrency = reserved is not None
        facts.reserved_concurrency = int(reserved) if reserved is not None else None
        if facts.memory_mb:
            facts.vcpus = round(facts.memory_mb / VCPU_MB, 3)
        facts.sqs_buffer_ready = tags.get(SQS_BUFFER_TAG[0]) == SQS_BUFFER_TAG[1]
        facts.downstream_database = tags.get(DATABASE_TAG)
        facts.is_db_consumer = facts.downstream_database is not None
        for fact in FUNCTION_FACTS:
            facts.sources[fact] = "lambda:GetFunction"
        facts.sources["log_group"] = facts.sources["log_format"] = "lambda:GetFunction LoggingConfig"

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
        for fact in PC_FACTS:
            facts.sources[fact] = "lambda:GetProvisionedConcurrencyConfig"

    def _pc_elsewhere(self, facts: Facts, name: str, qualifier: str | None) -> None:
        """PC configured on other qualifiers than the one the traffic hits (a misconfiguration of its own)."""
        configs: list[Any] = []
        paginator = self.clients.lambda_.get_paginator("list_provisioned_concurrency_configs")
        for page in paginator.paginate(FunctionName=name):
            configs.extend(page.get("ProvisionedConcurrencyConfigs", []))
        described, elsewhere, others = [], 0, []
        for config in configs:
            other = str(config.get("FunctionArn", "")).rsplit(":", 1)[-1]
            requested = int(config.get("RequestedProvisionedConcurrentExecutions", 0))
            described.append(f"{other}:{requested}({config.get('Status', '?')})")
            if other != qualifier:
                elsewhere += requested
                others.append(other)
        facts.pc_qualifiers = ", ".join(sorted(described)) or "none"
        facts.pc_on_other_qualifiers = elsewhere
        source = "lambda:ListProvisionedConcurrencyConfigs"
        facts.sources["pc_qualifiers"] = facts.sources["pc_on_other_qualifiers"] = source
        if qualifier and qualifier != "$LATEST":
            # "Each version of a function can only have one provisioned concurrency configuration" (Lambda developer
            # guide): PC on another alias of the same version means AWS refuses PC on this one.
            versions: dict[str, str] = {}
            for listed in self.clients.lambda_.get_paginator("list_aliases").paginate(FunctionName=name):
                versions.update({alias["Name"]: str(alias["FunctionVersion"]) for alias in listed.get("Aliases", [])})
            mine = versions.get(qualifier, qualifier)
            facts.pc_version_taken = any(versions.get(other, other) == mine for other in others)
            facts.sources["pc_version_taken"] = f"{source} + lambda:ListAliases (version {mine})"

    def _account(self, facts: Facts) -> None:
        limits = self.clients.lambda_.get_account_settings()["AccountLimit"]
        facts.account_limit = limits.get("ConcurrentExecutions")
        facts.unreserved_concurrency = limits.get("UnreservedConcurrentExecutions")
        facts.sources["account_limit"] = facts.sources["unreserved_concurrency"] = "lambda:GetAccountSettings"
        if facts.account_limit is not None:
            facts.minimum_unreserved = minimum_unreserved(int(facts.account_limit))
            facts.sources["minimum_unreserved"] = (
                "min(100, account_limit): what AWS keeps unreserved (medic.planning.pool)"
            )

    def _event_sources(self, facts: Facts, name: str) -> None:
        facts.event_sources = self.mappings(name)
        sqs = [source for source in facts.event_sources if source.kind == "sqs"]
        facts.has_sqs_source = bool(sqs)
        caps = [source.maximum_concurrency for source in sqs if source.maximum_concurrency is not None]
        facts.sqs_max_concurrency = min(caps) if caps else None
        for fact in ESM_FACTS:
            facts.sources[fact] = "lambda:ListEventSourceMappings"

    def mappings(self, name: str) -> list[EventSourceFacts]:
        found: list[EventSourceFacts] = []
        paginator = self.clients.lambda_.get_paginator("list_event_source_mappings")
        kinds = {"sqs": "sqs", "kinesis": "kinesis", "dynamodb": "dynamodb", "kafka": "kafka", "mq": "mq"}
        for page in paginator.paginate(FunctionName=name):
            for mapping in page.get("EventSourceMappings", []):
                arn = str(mapping.get("EventSourceArn", ""))
                service = arn.split(":")[2] if arn.count(":") >= 2 else ""
                found.append(EventSourceFacts(
                    uuid=str(mapping["UUID"]), source_arn=arn, kind=kinds.get(service, "other"),
                    state=str(mapping.get("State", "")),
                    maximum_concurrency=(mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"),
                    batch_size=mapping.get("BatchSize"),
                ))  # fmt: skip
        return found

    def _async_sources(self, facts: Facts, name: str, qualifier: str | None) -> None:
        """Who may invoke the function asynchronously, from its resource-based policies (function and alias)."""
        client = self.clients.lambda_
        sources: list[str] = []
        scopes = [{"FunctionName": name}, *([{"FunctionName": name, "Qualifier": qualifier}] if qualifier else [])]
        for kwargs in scopes:
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

    # -- Logs: REPORT lines -------------------------------------------------------------------------
    def _reports(self, facts: Facts, name: str, now: datetime) -> None:
        group = facts.log_group or default_log_group(name)
        log_format = facts.log_format or "Text"
        stats, warm, slow, how = ReportReader(self.clients, self.sleep).read(
            name, group, log_format, window_start(now), now, facts.alarm_threshold
        )
        source = f"{how} [{window()}]"
        count = int(stats.get("invocations") or 0)
        facts.report_lines = count
        if count:
            facts.cold_starts = int(stats.get("cold") or 0)
            facts.cold_start_ratio = facts.cold_starts / count
            facts.init_duration_avg_ms = stats.get("init_avg") if facts.cold_starts else 0.0
            facts.duration_p99_ms = stats.get("p99")
            facts.warm_duration_avg_ms = warm.get("warm_avg")
            facts.warm_duration_p99_ms = warm.get("warm_p99")
            average = stats.get("avg")
            warm_count = count - facts.cold_starts
            if facts.cold_starts and average is not None:
                warm_total = (facts.warm_duration_avg_ms or 0.0) * warm_count
                facts.cold_duration_avg_ms = (average * count - warm_total) / facts.cold_starts
            used, size = stats.get("memory_used"), stats.get("memory_size")
            if used is not None:
                facts.max_memory_used_mb = used / 1_000_000  # bytes (decimal MB), as Logs Insights reports Text
                if size:
                    facts.memory_used_ratio = used / size
            if slow:
                facts.slow_invocations = int(slow.get("slow") or 0)
                if facts.slow_invocations:
                    facts.slow_cold_share = int(slow.get("slow_cold") or 0) / facts.slow_invocations
                else:
                    facts.missing["slow_cold_share"] = f"no report above the alarm's threshold in {group}"
            elif facts.alarm_threshold is None:
                for fact in ("slow_invocations", "slow_cold_share"):
                    facts.missing[fact] = "the alarm event gives no threshold to compare Duration with"
        else:
            for fact in REPORT_FACTS[1:]:
                facts.missing[fact] = f"no reports of {name} in {group} ({log_format} format) in the last {window()}"
        for fact in REPORT_FACTS:
            facts.sources[fact] = source

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
        for fact in AUTOSCALING_FACTS:
            facts.sources[fact] = "application-autoscaling:DescribeScalableTargets/DescribeScalingPolicies"

    # -- derived facts ------------------------------------------------------------------------------
    def _derive(self, facts: Facts, kind: str) -> None:
        if facts.account_concurrency_peak is not None and facts.account_limit:
            facts.account_utilization = facts.account_concurrency_peak / facts.account_limit
            facts.sources["account_utilization"] = "account_concurrency_peak / account_limit"
        if facts.account_claimed_concurrency_peak is not None and facts.account_limit:
            facts.claimed_utilization = facts.account_claimed_concurrency_peak / facts.account_limit
            facts.sources["claimed_utilization"] = "account_claimed_concurrency_peak / account_limit"
        peak = facts.function_peak_concurrency
        if peak is not None and facts.reserved_concurrency:
            facts.reserved_utilization = peak / facts.reserved_concurrency
            facts.sources["reserved_utilization"] = "function_peak_concurrency / reserved_concurrency"
        everything = facts.account_concurrency_peak
        if facts.unreserved_concurrency_peak is None and everything is not None:
            # Without the account's UnreservedConcurrentExecutions: everything that ran, less this function when it
            # runs on its own reservation — an upper bound of what the functions without one used.
            own = (peak or 0.0) if facts.has_reserved_concurrency else 0.0
            facts.unreserved_concurrency_peak = max(0.0, everything - own)
            facts.sources["unreserved_concurrency_peak"] = (
                "account_concurrency_peak"
                + (" − function_peak_concurrency" if own else "")
                + " (UnreservedConcurrentExecutions had no datapoints): an upper bound"
            )
            facts.missing.pop("unreserved_concurrency_peak", None)
        if facts.unreserved_concurrency is not None and facts.unreserved_concurrency_peak is not None:
            # What a raise (a reservation, or PC on a function without one) could take without squeezing the others:
            # the pool, less this function's own PC when it draws from the pool, less what the others use at peak
            # (at least the minimum AWS keeps).
            unreserved = not facts.has_reserved_concurrency
            own_use = (peak if peak is not None else facts.peak_concurrency or 0.0) if unreserved else 0.0
            own_pc = (facts.pc_requested or 0) + (facts.pc_on_other_qualifiers or 0) if unreserved else 0
            others = max(0.0, facts.unreserved_concurrency_peak - own_use)
            keep = max(float(facts.minimum_unreserved or 100), others)
            facts.unreserved_headroom = max(0.0, facts.unreserved_concurrency - own_pc - keep)
            facts.sources["unreserved_headroom"] = (
                "unreserved_concurrency − the function's own PC (no reservation) − max(minimum_unreserved, what the "
                "other functions without a reservation use at peak)"
            )
        if facts.unreserved_concurrency_peak is not None and facts.unreserved_concurrency:
            facts.unreserved_pool_utilization = facts.unreserved_concurrency_peak / facts.unreserved_concurrency
            facts.sources["unreserved_pool_utilization"] = "unreserved_concurrency_peak / unreserved_concurrency"
        if facts.duration_avg_ms is not None and facts.duration_baseline_avg_ms:
            facts.duration_change_ratio = facts.duration_avg_ms / facts.duration_baseline_avg_ms
            facts.sources["duration_change_ratio"] = "duration_avg_ms / duration_baseline_avg_ms"
        if (
            kind in ("throttles", "p99_latency")
            and "async_sources" not in facts.missing
            and ("event_sources" not in facts.missing)
        ):
            facts.invocation_type = invocation_type(facts)
            facts.sources["invocation_type"] = (
                f"tag {INVOCATION_TAG}" if (facts.tags or {}).get(INVOCATION_TAG) in INVOCATION_TYPES
                else "event source mappings + resource-based policy + AsyncEventsReceived"
            )  # fmt: skip
        if facts.demand_concurrency_peak is None and facts.peak_concurrency is not None:
            facts.demand_concurrency_peak = facts.peak_concurrency
            facts.sources["demand_concurrency_peak"] = "peak_concurrency (no Invocations × Duration): an upper bound"
            facts.missing.pop("demand_concurrency_peak", None)
        if facts.max_memory_used_mb is not None and facts.memory_mb and facts.memory_used_ratio is None:
            facts.memory_used_ratio = facts.max_memory_used_mb / facts.memory_mb

    # -- the database ---------------------------------------------------------------------------------
    def _collect_database(self, facts: Facts, instance_id: str, now: datetime) -> Facts:
        facts.db_instance = instance_id
        spec = database.connections_series(instance_id)
        consumers = []
        found: dict[str, Points] = {}  # the database's series, when the consumers' request read it along

        def find() -> None:
            consumers.extend(database.find_consumers(self.clients, instance_id))

        def describe() -> None:
            found["connections"] = database.describe_consumers(
                self.clients,
                consumers,
                now,
                self.opt_in_tag,
                self.mappings,
                self.max_workers,
                spec,
                chains.all_series(account),
                read,
            )

        account = chains.account_chains()
        read: dict[SeriesSpec, Points] = {}

        def connections() -> None:
            if "connections" not in found:  # no consumers' request to read them along
                read.update(read_series(self.clients, [spec, *chains.all_series(account)], now))
                found["connections"] = in_window(read.get(spec, []), now)
            points = found["connections"]
            facts.sources["db_connections"] = f"{chains.PREFIX} {spec.describe()}"
            if points:
                facts.db_connections = max(v for _, v in points)
            elif facts.alarm_value is not None:
                facts.db_connections = facts.alarm_value
                facts.sources["db_connections"] = facts.sources["alarm_value"]
            else:
                facts.missing["db_connections"] = f"no datapoints in the last {window()} for {spec.describe()}"

        self._run(facts, [
            ("rds:DescribeDBInstances", database.DB_FACTS,
             lambda: database.describe_database(self.clients, facts, instance_id)),
            ("tag:GetResources", database.CONSUMER_FACTS, find),
            ("lambda:GetAccountSettings", ("account_limit", "unreserved_concurrency", "minimum_unreserved"),
             lambda: self._account(facts)),
        ])  # fmt: skip
        if "consumers" not in facts.missing and consumers:
            self._run(facts, [("lambda:GetFunction", database.CONSUMER_FACTS, describe)])
        self._run(facts, [("cloudwatch:GetMetricData", ("db_connections",), connections)])
        if "consumers" not in facts.missing:
            facts.consumers = consumers
            facts.consumer_count = len(consumers)
            facts.queue_consumer_count = sum(1 for c in consumers if c.sqs_sources)
            facts.managed_consumer_count = sum(1 for c in consumers if c.managed)
            peaks = [c.peak_concurrency for c in consumers]
            facts.consumers_peak_concurrency = sum(p for p in peaks if p is not None) if None not in peaks else None
            if facts.consumers_peak_concurrency is None:
                facts.missing["consumers_peak_concurrency"] = "a consumer has no ConcurrentExecutions datapoints"
            for fact in database.CONSUMER_FACTS:
                facts.sources[fact] = f"tag:GetResources {DATABASE_TAG}={instance_id} + lambda + cloudwatch"
        if "cloudwatch:GetMetricData failed" not in facts.missing.get("db_connections", ""):
            chains.resolve(account, read, facts, now)
            self._derive(facts, "db_connections")
        if facts.db_connections is not None and facts.db_max_connections:
            facts.db_connection_ratio = facts.db_connections / facts.db_max_connections
            facts.sources["db_connection_ratio"] = "db_connections / db_max_connections"
        return facts


def alarm_facts(facts: Facts, event: AlarmStateChangeEvent) -> None:
    """The alarm's own value and threshold, from the event (free). An anomaly band's threshold is its upper edge."""
    data = event.detail.state.reason_data
    if data is None:
        return
    if data.recent_datapoints:
        facts.alarm_value = float(data.recent_datapoints[-1])
        facts.sources["alarm_value"] = "event:state.reasonData.recentDatapoints"
    if data.threshold is not None:
        facts.alarm_threshold = float(data.threshold)
        facts.sources["alarm_threshold"] = "event:state.reasonData.threshold"
    elif data.recent_upper_thresholds:
        facts.alarm_threshold = float(data.recent_upper_thresholds[-1])
        facts.sources["alarm_threshold"] = "event:state.reasonData.recentUpperThresholds (the anomaly band's edge)"


def invocation_type(facts: Facts) -> str:
    """The tag medic:invocation when valid; else an SQS/stream mapping; else async when a producer may invoke it
    asynchronously (resource-based policy) or events were queued for it (AsyncEventsReceived: S3, SNS, EventBridge or
    any caller with InvocationType Event); else sync."""
    tagged = (facts.tags or {}).get(INVOCATION_TAG)
    if tagged in INVOCATION_TYPES:
        return tagged
    kinds = {source.kind for source in facts.event_sources or []}
    if "sqs" in kinds:
        return "sqs"
    if kinds & {"kinesis", "dynamodb", "kafka", "mq"}:
        return "stream"
    return "async" if facts.async_sources or (facts.async_events_received or 0) > 0 else "sync"


def _condition_value(statement: dict[str, Any], key: str) -> Any:
    for operator_values in (statement.get("Condition") or {}).values():
        for name, value in operator_values.items():
            if name.lower() == key.lower():
                return value[0] if isinstance(value, list) else value
    return None
