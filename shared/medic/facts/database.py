"""Database facts: an RDS instance's max_connections and connections, and the functions that talk to it.

A function declares its database with the tag ``medic:database=<instance id>``; the database's consumers are the
functions carrying that tag (``tag:GetResources``). ``max_connections`` is the parameter group's value, else RDS's
engine default for the instance class (estimated, and the source says so).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Final

from medic.aws import AwsClients
from medic.facts import chains, function, invokers
from medic.facts.derived import derive
from medic.facts.jobs import run_jobs
from medic.facts.model import DATABASE_TAG, ConsumerFacts, EventSourceFacts, Facts
from medic.facts.series import Points, SeriesSpec, in_window, read_series, window

#: Memory (GiB) of common RDS instance classes, for engine-default max_connections.
DB_CLASS_MEMORY_GIB: Final[dict[str, float]] = {
    "db.t3.micro": 1,
    "db.t3.small": 2,
    "db.t3.medium": 4,
    "db.t3.large": 8,
    "db.t3.xlarge": 16,
    "db.t3.2xlarge": 32,
    "db.t4g.micro": 1,
    "db.t4g.small": 2,
    "db.t4g.medium": 4,
    "db.t4g.large": 8,
    "db.t4g.xlarge": 16,
    "db.t4g.2xlarge": 32,
    "db.m5.large": 8,
    "db.m5.xlarge": 16,
    "db.m5.2xlarge": 32,
    "db.m5.4xlarge": 64,
    "db.m6g.large": 8,
    "db.m6g.xlarge": 16,
    "db.m6g.2xlarge": 32,
    "db.m6g.4xlarge": 64,
    "db.m6i.large": 8,
    "db.m6i.xlarge": 16,
    "db.m6i.2xlarge": 32,
    "db.m7g.large": 8,
    "db.m7g.xlarge": 16,
    "db.r5.large": 16,
    "db.r5.xlarge": 32,
    "db.r5.2xlarge": 64,
    "db.r6g.large": 16,
    "db.r6g.xlarge": 32,
    "db.r6g.2xlarge": 64,
    "db.r6i.large": 16,
    "db.r6i.xlarge": 32,
    "db.r7g.large": 16,
    "db.r7g.xlarge": 32,
}
DB_FACTS: Final = ("db_instance", "db_engine", "db_instance_class", "db_max_connections")
CONSUMER_FACTS: Final = (
    "consumers",
    "consumer_count",
    "queue_consumer_count",
    "managed_consumer_count",
    "consumers_peak_concurrency",
)


def connections_series(instance_id: str) -> SeriesSpec:
    return SeriesSpec("AWS/RDS", "DatabaseConnections", (("DBInstanceIdentifier", instance_id),), "Maximum")


def describe_database(clients: AwsClients, facts: Facts, instance_id: str) -> None:
    """Engine, class and max_connections (the parameter group's value, else the engine default)."""
    rds = clients.client("rds")
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
                    value = int(raw) if raw.isdigit() else engine_default(facts.db_engine, facts.db_instance_class)
                    source = f"rds:DescribeDBParameters {name}" + ("" if raw.isdigit() else f" ({raw}, estimated)")
    if value is None:
        value = engine_default(facts.db_engine, facts.db_instance_class)
        source = f"engine default for {facts.db_engine} on {facts.db_instance_class} (estimated)"
    facts.db_max_connections = value
    facts.sources["db_max_connections"] = source
    for fact in ("db_instance", "db_engine", "db_instance_class"):
        facts.sources[fact] = "rds:DescribeDBInstances"
    if value is None:
        facts.missing["db_max_connections"] = f"no parameter value and no known memory for {facts.db_instance_class}"


def find_consumers(clients: AwsClients, instance_id: str) -> list[ConsumerFacts]:
    """The functions tagged ``medic:database=<instance_id>``."""
    tagging = clients.client("resourcegroupstaggingapi")
    names: list[str] = []
    paginator = tagging.get_paginator("get_resources")
    for page in paginator.paginate(
        TagFilters=[{"Key": DATABASE_TAG, "Values": [instance_id]}], ResourceTypeFilters=["lambda:function"]
    ):
        for resource in page.get("ResourceTagMappingList", []):
            parts = str(resource.get("ResourceARN", "")).split(":")
            if len(parts) >= 7 and parts[5] == "function":
                names.append(parts[6])
    return [ConsumerFacts(function_name=name) for name in sorted(set(names))]


def describe_consumers(
    clients: AwsClients,
    consumers: list[ConsumerFacts],
    now: datetime,
    opt_in_tag: tuple[str, str],
    mappings: Callable[[str], list[EventSourceFacts]],
    max_workers: int,
    database: SeriesSpec,
    along: list[SeriesSpec],
    read: dict[SeriesSpec, Points],
) -> Points:
    """Each consumer's configuration, event sources and peak concurrency; the `database` series is read in the same
    GetMetricData and returned, and the series `along` land in `read`."""
    key, value = opt_in_tag
    peaks = {
        c.function_name: SeriesSpec.lambda_("ConcurrentExecutions", "Maximum", FunctionName=c.function_name)
        for c in consumers
    }
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        described = list(pool.map(lambda c: clients.lambda_.get_function(FunctionName=c.function_name), consumers))
        sources = list(pool.map(lambda c: mappings(c.function_name), consumers))
    read.update(read_series(clients, [*peaks.values(), database, *along], now))
    for consumer, response, found in zip(consumers, described, sources, strict=True):
        tags: dict[str, Any] = response.get("Tags") or {}
        consumer.managed = tags.get(key) == value
        reserved = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        consumer.reserved_concurrency = int(reserved) if reserved is not None else None
        consumer.event_sources = found
        points = in_window(read.get(peaks[consumer.function_name], []), now)
        consumer.peak_concurrency = max(v for _, v in points) if points else None
    return in_window(read.get(database, []), now)


def downstream_pressure(clients: AwsClients, facts: Facts, instance_id: str, now: datetime) -> None:
    """For a throttled function that talks to a database: how close that database is to max_connections."""
    probe = Facts()
    describe_database(clients, probe, instance_id)
    spec = connections_series(instance_id)
    points = in_window(read_series(clients, [spec], now).get(spec, []), now)
    if points and probe.db_max_connections:
        facts.downstream_db_connection_ratio = max(v for _, v in points) / probe.db_max_connections
        facts.sources["downstream_db_connection_ratio"] = (
            f"DatabaseConnections of {instance_id} / max_connections ({probe.sources['db_max_connections']})"
        )
    else:
        facts.missing["downstream_db_connection_ratio"] = (
            f"no datapoints in the last {window()} for {spec.describe()}"
            if not points
            else f"max_connections of {instance_id} unknown"
        )


def engine_default(engine: str | None, instance_class: str | None) -> int | None:
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


def collect_database(
    clients: AwsClients, facts: Facts, instance_id: str, now: datetime, opt_in_tag: tuple[str, str], max_workers: int
) -> Facts:
    """The facts of a db_connections alarm: the instance, its consumers (each with its peak and mappings), the
    connections, and the account's concurrency (a cap on the consumers must fit it)."""
    facts.db_instance = instance_id
    spec = connections_series(instance_id)
    consumers = []
    found: dict[str, Points] = {}  # the database's series, when the consumers' request read it along

    def find() -> None:
        consumers.extend(find_consumers(clients, instance_id))

    def describe() -> None:
        found["connections"] = describe_consumers(
            clients,
            consumers,
            now,
            opt_in_tag,
            lambda name: invokers.mappings(clients, name),
            max_workers,
            spec,
            chains.all_series(account),
            read,
        )

    account = chains.account_chains()
    read: dict[SeriesSpec, Points] = {}

    def connections() -> None:
        if "connections" not in found:  # no consumers' request to read them along
            read.update(read_series(clients, [spec, *chains.all_series(account)], now))
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

    run_jobs(
        facts,
        [
            ("rds:DescribeDBInstances", DB_FACTS, lambda: describe_database(clients, facts, instance_id)),
            ("tag:GetResources", CONSUMER_FACTS, find),
            ("lambda:GetAccountSettings", function.ACCOUNT_FACTS, lambda: function.account(clients, facts)),
        ],
        max_workers,
    )
    if "consumers" not in facts.missing and consumers:
        run_jobs(facts, [("lambda:GetFunction", CONSUMER_FACTS, describe)], max_workers)
    run_jobs(facts, [("cloudwatch:GetMetricData", ("db_connections",), connections)], max_workers)
    if "consumers" not in facts.missing:
        facts.consumers = consumers
        facts.consumer_count = len(consumers)
        facts.queue_consumer_count = sum(1 for c in consumers if c.sqs_sources)
        facts.managed_consumer_count = sum(1 for c in consumers if c.managed)
        peaks = [c.peak_concurrency for c in consumers]
        facts.consumers_peak_concurrency = sum(p for p in peaks if p is not None) if None not in peaks else None
        if facts.consumers_peak_concurrency is None:
            facts.missing["consumers_peak_concurrency"] = "a consumer has no ConcurrentExecutions datapoints"
        for fact in CONSUMER_FACTS:
            facts.sources[fact] = f"tag:GetResources {DATABASE_TAG}={instance_id} + lambda + cloudwatch"
    if "cloudwatch:GetMetricData failed" not in facts.missing.get("db_connections", ""):
        chains.resolve(account, read, facts, now)
        derive(facts, "db_connections")
    if facts.db_connections is not None and facts.db_max_connections:
        facts.db_connection_ratio = facts.db_connections / facts.db_max_connections
        facts.sources["db_connection_ratio"] = "db_connections / db_max_connections"
    return facts
