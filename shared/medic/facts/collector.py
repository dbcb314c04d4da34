"""The fact collector: the fewest calls, concurrently, each fact with its source, unknown (never guessed) on failure.

One `GetFunction` (configuration, tags, reserved concurrency and logging config together), the alias, its provisioned
concurrency, the Application Auto Scaling target and policies, the account settings (`function`), the function's
mappings and policies (`invokers`), and a single `GetMetricData` for every series the fallback chains may read
(`metrics`, `chains`). What depends on their answers (the REPORT lines in the function's log group, the derived facts,
the database behind a function; the consumers of a database) comes after. A call that fails leaves its facts unknown
with the reason (`jobs`). `collect` reads everything up front; `on_demand` (triage) makes each of these reads a group
that is read the first time one of its facts is (`on_demand`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from medic.alarms.events import AlarmStateChangeEvent
from medic.alarms.signals import Signal
from medic.aws import AwsClients
from medic.facts import database, derived, function, invokers, metrics
from medic.facts.derived import alarm_facts, derive
from medic.facts.jobs import Job, run_job, run_jobs
from medic.facts.model import DATABASE_TAG, EventSourceFacts, Facts
from medic.facts.on_demand import Group, OnDemandFacts
from medic.facts.qualifier import traffic_qualifier
from medic.facts.reports import REPORT_FACTS, report_facts
from medic.facts.series import Points, SeriesSpec


@dataclass(frozen=True)
class _Target:
    """A function target's signal, name, qualifier (the traffic's, for an unqualified alarm) and the series read."""

    kind: str
    name: str
    qualifier: str | None
    read: dict[SeriesSpec, Points]
    aliases: list[Any] | None = None  # as the traffic's qualifier listed them, when whole


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
        self,
        clients: AwsClients,
        opt_in_tag: tuple[str, str],
        max_workers: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clients = clients
        self.opt_in_tag = opt_in_tag
        self.max_workers = max_workers
        self.sleep = sleep

    def collect(self, signal: Signal, event: AlarmStateChangeEvent | None, now: datetime) -> Facts:
        """Facts about the signal's target, every one read up front; `event` (when given) adds the alarm's own
        datapoints for free."""
        facts = Facts()
        target = self._start(facts, signal, event, now)
        if target is None:
            return facts
        clients, kind, name, qualifier, read = self.clients, target.kind, target.name, target.qualifier, target.read
        jobs = self._jobs(facts, target, now)
        metric_facts = jobs[2][1]
        run_jobs(facts, jobs, self.max_workers)
        if "cloudwatch:GetMetricData failed" not in facts.missing.get(metric_facts[0], ""):
            metrics.resolve_metrics(facts, kind, name, qualifier, now, read)
        if kind == "p99_latency":  # after GetFunction: where the reports are, and in which format
            run_jobs(facts, [self._reports(facts, target, now)], self.max_workers)
        derive(facts, kind)
        if kind == "throttles" and facts.tags and facts.tags.get(DATABASE_TAG):
            instance = str(facts.tags[DATABASE_TAG])
            run_jobs(
                facts,
                [
                    (
                        "rds:DescribeDBInstances",
                        ("downstream_db_connection_ratio",),
                        lambda: database.downstream_pressure(clients, facts, instance, now),
                    )
                ],
                self.max_workers,
            )
        return facts

    def on_demand(self, signal: Signal, event: AlarmStateChangeEvent | None, now: datetime) -> Facts:
        """The same facts as `collect`, each group read by its call(s) only when one of its facts is first read
        (`medic.facts.on_demand`). The traffic's qualifier, which every call names, is read up front; so are a
        database's facts (its table's first row needs them all)."""
        facts = OnDemandFacts()
        target = self._start(facts, signal, event, now)
        if target is None:
            return facts
        kind, name, qualifier, read = target.kind, target.name, target.qualifier, target.read
        jobs = self._jobs(facts, target, now)
        (_, metric_facts, read_metrics), others = jobs[2], [*jobs[:2], *jobs[3:]]

        def metric_group() -> None:
            run_job(facts, ("cloudwatch:GetMetricData", metric_facts, read_metrics))
            if "cloudwatch:GetMetricData failed" not in facts.missing.get(metric_facts[0], ""):
                metrics.resolve_metrics(facts, kind, name, qualifier, now, read)
            derived.unreserved_peak_bound(facts)
            derived.demand_bound(facts)

        groups = [Group(job[1], partial(run_job, facts, job)) for job in others]
        groups.append(Group(metric_facts, metric_group))
        if kind == "p99_latency":

            def report_group() -> None:
                run_job(facts, self._reports(facts, target, now))
                derived.memory_ratio(facts)

            groups.append(Group(REPORT_FACTS, report_group))
        for fact, derivation in derived.DERIVED.items():
            if fact != "invocation_type" or kind in ("throttles", "p99_latency"):
                groups.append(Group((fact,), partial(derivation, facts)))
        if kind == "throttles":

            def downstream() -> None:
                if facts.tags and facts.tags.get(DATABASE_TAG):
                    instance = str(facts.tags[DATABASE_TAG])
                    pressure = partial(database.downstream_pressure, self.clients, facts, instance, now)
                    run_job(facts, ("rds:DescribeDBInstances", ("downstream_db_connection_ratio",), pressure))

            groups.append(Group(("downstream_db_connection_ratio",), downstream))
        facts.defer(groups)
        return facts

    def _start(
        self, facts: Facts, signal: Signal, event: AlarmStateChangeEvent | None, now: datetime
    ) -> _Target | None:
        """The facts every collection starts with (the alarm's own, the target, the traffic's qualifier); None when
        there is nothing more to read (a database's facts are all read here; no function target)."""
        if event is not None:
            alarm_facts(facts, event)
        target = signal.target
        if target.kind == "db_instance" and target.db_instance_id:
            database.collect_database(
                self.clients, facts, target.db_instance_id, now, self.opt_in_tag, self.max_workers
            )
            return None
        if target.kind != "function" or not target.function_name:
            facts.missing["target"] = f"no function target ({target.display})"
            return None
        kind, name, qualifier = signal.kind, target.function_name, target.qualifier
        read: dict[SeriesSpec, Points] = {}
        aliases = None
        if kind in ("p99_latency", "throttles") and not qualifier:
            qualifier, aliases = traffic_qualifier(self.clients, facts, name, now, kind, read)
        else:
            facts.traffic_qualifier = qualifier
        facts.function_name, facts.qualifier = name, qualifier
        if qualifier == "$LATEST":
            facts.pc_requested = facts.pc_allocated = facts.pc_available = 0
            facts.pc_status = "NONE"
            facts.has_autoscaling = False
            for fact in (*function.PC_FACTS, *function.AUTOSCALING_FACTS):
                facts.sources[fact] = "$LATEST: AWS puts no provisioned concurrency on it"
        return _Target(kind, name, qualifier, read, aliases)

    def _jobs(self, facts: Facts, target: _Target, now: datetime) -> list[Job]:
        """The readers of a function's facts that need only the target: GetFunction, the account settings, the
        metrics (third), then the qualifier's alias, PC and autoscaling, the mappings and policies, PC elsewhere."""
        clients, kind, name, qualifier, read = self.clients, target.kind, target.name, target.qualifier, target.read
        jobs: list[Job] = [
            (
                "lambda:GetFunction",
                function.FUNCTION_FACTS,
                lambda: function.function_config(clients, facts, name, qualifier, self.opt_in_tag),
            ),
            ("lambda:GetAccountSettings", function.ACCOUNT_FACTS, lambda: function.account(clients, facts)),
            (
                "cloudwatch:GetMetricData",
                metrics.metric_facts(kind, name, qualifier),
                lambda: metrics.read_metrics(clients, kind, name, qualifier, now, read),
            ),
        ]
        if qualifier and qualifier != "$LATEST":
            jobs += [
                ("lambda:GetAlias", ("alias_version",), lambda: function.alias(clients, facts, name, qualifier)),
                (
                    "lambda:GetProvisionedConcurrencyConfig",
                    function.PC_FACTS,
                    lambda: function.provisioned(clients, facts, name, qualifier),
                ),
                (
                    "application-autoscaling:DescribeScalableTargets",
                    function.AUTOSCALING_FACTS,
                    lambda: function.autoscaling(clients, facts, name, qualifier),
                ),
            ]
        if kind in ("throttles", "p99_latency"):
            jobs += [
                (
                    "lambda:ListEventSourceMappings",
                    invokers.ESM_FACTS,
                    lambda: invokers.event_sources(clients, facts, name),
                ),
                (
                    "lambda:GetPolicy",
                    ("async_sources",),
                    lambda: invokers.async_sources(clients, facts, name, qualifier),
                ),
            ]
        if kind == "p99_latency" or (qualifier and qualifier != "$LATEST"):
            # PC on the other qualifiers: the p99 table asks where the PC sits; a PC change must fit the reservation.
            aliases = target.aliases
            jobs.append(
                (
                    "lambda:ListProvisionedConcurrencyConfigs",
                    function.PC_ELSEWHERE_FACTS,
                    lambda: function.provisioned_elsewhere(clients, facts, name, qualifier, aliases),
                )
            )
        return jobs

    def _reports(self, facts: Facts, target: _Target, now: datetime) -> Job:
        """The REPORT lines' reader, once GetFunction said where the reports are, and in which format."""
        clients, sleep, name = self.clients, self.sleep, target.name
        return ("logs:StartQuery", REPORT_FACTS, lambda: report_facts(clients, sleep, facts, name, now))

    def mappings(self, name: str) -> list[EventSourceFacts]:
        """The function's event source mappings (`invokers.mappings`)."""
        return invokers.mappings(self.clients, name)
