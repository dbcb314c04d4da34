"""Fact collection for each signal, on the scenarios' worlds (moto over HTTP): every fact the tables read, with
its source, and unknown (never guessed) when it cannot be read."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medic.alarms.events import parse_alarm_event
from medic.alarms.signals import classify
from medic.facts import (
    FactCollector,
    Facts,
    ReportLine,
    _engine_default,
    parse_report_line,
    summarize_report_lines,
)
from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world.server import EmbeddedAWS

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


#: The alarm event each simulation's alarm raised (the alarm fires once: later collections reuse it).
events: dict[Simulation, Any] = {}


@pytest.fixture
def world(aws: EmbeddedAWS) -> Iterator[Any]:
    """Build a scenario's world and return (facts, simulation) for its alarm."""
    simulations: list[Simulation] = []

    def build(name: str, collector: FactCollector | None = None) -> tuple[Facts, Simulation]:
        path = SCENARIOS / name
        simulation = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(io.StringIO()))
        simulations.append(simulation)
        runtime = simulation.setup()
        event = parse_alarm_event(simulation.alarm_events()[0])
        events[simulation] = event
        collector = collector or runtime.collector
        return collector.collect(classify(event), event, simulation.clock.now()), simulation

    yield build
    install(None)


def test_throttles_at_the_account_limit(world: Any) -> None:
    facts, _ = world("throttles-account-limit.yaml")

    assert (facts.throttles, facts.account_concurrency_peak, facts.account_limit) == (640, 1000, 1000)
    assert facts.account_utilization == 1.0
    assert facts.function_peak_concurrency == 210
    assert facts.concurrency_ramp_per_min == 40  # 150 → 190: the steepest one-minute climb
    assert facts.invocation_type == "sync"
    assert facts.event_sources == [] and facts.has_sqs_source is False
    assert facts.sources["account_concurrency_peak"].startswith("cloudwatch:GetMetricData [15m@60s] Concurrent")
    assert facts.missing["account_claimed_concurrency_peak"] == (
        "no datapoints in the last 15m@60s for ClaimedAccountConcurrency Maximum {}"
    )
    assert facts.account_claimed_concurrency_peak is None


def test_an_eventbridge_rule_makes_the_function_async(world: Any) -> None:
    facts, _ = world("throttles-async-buffer.yaml")

    assert facts.invocation_type == "async"
    assert facts.async_sources == "events:rule/orders-created"
    assert (facts.reserved_concurrency, facts.function_peak_concurrency, facts.reserved_utilization) == (50, 50, 1.0)
    assert facts.sources["async_sources"] == "lambda:GetPolicy (resource-based policy principals)"


def test_a_throttled_database_consumer_sees_its_database_pressure(world: Any) -> None:
    facts, _ = world("throttles-reserved-protects-db.yaml")

    assert (facts.is_db_consumer, facts.downstream_database) == (True, "orders-db")
    assert facts.downstream_db_connection_ratio == pytest.approx(0.95)
    assert (
        "max_connections (rds:DescribeDBParameters orders-db-params)" in facts.sources["downstream_db_connection_ratio"]
    )


def test_a_ramp_below_the_limits_and_the_alias_the_traffic_hits(world: Any) -> None:
    facts, _ = world("throttles-burst-ramp.yaml")

    assert (facts.qualifier, facts.traffic_qualifier) == ("live", "live")
    assert facts.concurrency_ramp_per_min == 270
    assert facts.function_peak_concurrency == 300
    assert facts.account_utilization == pytest.approx(0.34)
    assert facts.ramp_start_minute_of_day is not None and 0 <= facts.ramp_start_minute_of_day < 1440
    assert facts.has_reserved_concurrency is False


def test_an_sqs_consumer_and_its_mapping(world: Any) -> None:
    facts, _ = world("throttles-unexplained.yaml")

    assert facts.function_peak_concurrency is None
    assert facts.missing["function_peak_concurrency"].startswith(
        "no datapoints in the last 15m@60s for ConcurrentExecutions Maximum {FunctionName=orders-worker}; "
        "Invocations Sum {FunctionName=orders-worker} × Duration Average {FunctionName=orders-worker} (Little's law"
    )
    assert facts.account_utilization is None  # no account datapoints: unknown, not 0


def test_report_lines_cold_starts_and_memory(world: Any) -> None:
    facts, _ = world("p99-cold-starts.yaml")

    assert (facts.report_lines, facts.cold_starts, facts.cold_start_ratio) == (200, 60, 0.3)
    assert facts.init_duration_avg_ms == 1800
    assert facts.warm_duration_p99_ms == 350 and facts.warm_duration_avg_ms == 350
    assert facts.max_memory_used_mb == 512 and facts.memory_used_ratio == pytest.approx(0.5)
    assert facts.vcpus == pytest.approx(1024 / 1769, abs=1e-3)
    assert (facts.traffic_qualifier, facts.pc_requested, facts.pc_on_other_qualifiers) == ("live", 0, 0)
    assert facts.invocation_type == "sync"
    assert facts.sources["cold_starts"].startswith("logs:StartQuery (Logs Insights) /aws/lambda/checkout-api")


def test_traffic_on_latest_while_pc_sits_on_an_alias(world: Any) -> None:
    facts, _ = world("p99-pc-on-latest.yaml")

    assert facts.traffic_qualifier == "$LATEST"
    assert (facts.pc_requested, facts.pc_status) == (0, "NONE")
    assert facts.pc_on_other_qualifiers == 20
    assert facts.pc_qualifiers == "live:20(READY)"


def test_logs_insights_unavailable_falls_back_to_a_bounded_filter(world: Any) -> None:
    from medic_tools.world import moto_ext

    moto_ext.inject_fault("StartQuery", "AccessDeniedException", 400, times=3)  # each of the three queries
    facts, _ = world("p99-cpu-starved.yaml")

    assert (facts.report_lines, facts.cold_starts) == (200, 2)
    assert facts.warm_duration_p99_ms == 2400 and facts.max_memory_used_mb == 140
    assert facts.sources["report_lines"].startswith("logs:FilterLogEvents /aws/lambda/report-builder, Text reports")
    assert "Logs Insights unavailable: AccessDeniedException" in facts.sources["report_lines"]


def test_database_facts_and_consumers(world: Any) -> None:
    facts, _ = world("db-connection-blowup.yaml")

    assert (facts.db_instance, facts.db_engine, facts.db_max_connections) == ("orders-db", "postgres", 400)
    assert facts.db_connections == 390 and facts.db_connection_ratio == pytest.approx(0.975)
    assert (facts.consumer_count, facts.queue_consumer_count, facts.managed_consumer_count) == (2, 1, 2)
    assert facts.consumers_peak_concurrency == 370
    consumers = {c.function_name: c for c in facts.consumers or []}
    assert consumers["orders-worker"].peak_concurrency == 250
    assert [s.kind for s in consumers["orders-worker"].sqs_sources] == ["sqs"]
    assert consumers["orders-api"].event_sources == [] and consumers["orders-api"].reserved_concurrency is None


def test_a_permission_denied_leaves_facts_unknown_with_the_reason(world: Any) -> None:
    from medic_tools.world import moto_ext

    moto_ext.inject_fault("GetResources", "AccessDeniedException", 400)
    facts, _ = world("db-connection-blowup.yaml")

    assert facts.consumers is None and facts.consumer_count is None
    assert facts.missing["consumer_count"] == "tag:GetResources failed: AccessDeniedException"
    assert facts.db_connection_ratio == pytest.approx(0.975)  # the rest was still collected


# --- pure helpers ---------------------------------------------------------------------------------


def test_parse_report_line() -> None:
    cold = ("REPORT RequestId: 3f2a-1\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 512 MB\t"
            "Max Memory Used: 88 MB\tInit Duration: 1450.31 ms\t")  # fmt: skip
    warm = (
        "REPORT RequestId: 3f2a-2\tDuration: 3.10 ms\tBilled Duration: 4 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 90 MB"
    )

    assert parse_report_line(cold) == ReportLine(duration_ms=102.25, memory_size_mb=512, max_memory_used_mb=88,
                                                 init_duration_ms=1450.31)  # fmt: skip
    assert parse_report_line(warm) == ReportLine(duration_ms=3.1, memory_size_mb=512, max_memory_used_mb=90)
    assert parse_report_line("START RequestId: 3f2a-1 Version: $LATEST") is None


def test_summarize_report_lines_matches_the_insights_fields() -> None:
    lines = [ReportLine(duration_ms=float(d), memory_size_mb=512, max_memory_used_mb=100) for d in range(1, 101)]
    lines.append(ReportLine(duration_ms=500, memory_size_mb=512, max_memory_used_mb=120, init_duration_ms=900))

    stats, warm, slow = summarize_report_lines(lines, threshold=99.5)

    assert stats == {"invocations": 101, "cold": 1, "init_avg": 900, "p99": 100, "avg": 5550 / 101,
                     "memory_used": 120_000_000, "memory_size": 512_000_000}  # fmt: skip
    assert warm == {"warm_avg": 50.5, "warm_p99": 99}
    assert slow == {"slow": 2, "slow_cold": 1}  # 100 ms (warm) and 500 ms (cold) are above 99.5
    assert summarize_report_lines([]) == ({"invocations": 0.0}, {}, {})


@pytest.mark.parametrize(
    ("engine", "instance_class", "expected"),
    [
        ("postgres", "db.t3.medium", 450),  # 4 GiB / 9531392
        ("postgres", "db.r6g.2xlarge", 5000),  # LEAST(…, 5000)
        ("mysql", "db.t3.medium", 341),  # 4 GiB / 12582880
        ("postgres", "db.x99.huge", None),
        ("oracle-ee", "db.t3.medium", None),
    ],
)
def test_engine_default_max_connections(engine: str, instance_class: str, expected: int | None) -> None:
    assert _engine_default(engine, instance_class) == expected


def test_collect_on_a_target_of_nothing_collects_nothing() -> None:
    from medic.alarms.signals import Signal, Target
    from medic.aws import AwsClients

    event = parse_alarm_event((Path(__file__).resolve().parents[2] / "events" / "composite-alarm.json").read_text())
    signal = Signal(kind="unknown", target=Target.none(), metric=None, reason="composite")
    facts = FactCollector(AwsClients(region="us-east-1"), ("medic:managed", "true")).collect(
        signal, event, datetime.now().astimezone()
    )

    assert facts.missing["target"] == "no function target ((none))"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_triage_reads_its_metrics_in_one_request(aws: EmbeddedAWS, path: Path) -> None:
    """All metric reads of one triage are one GetMetricData: the traffic split of an unqualified alarm reads every
    candidate's series along, a database's connections come with its consumers'. The one exception: the database
    behind a throttled function, known only from the function's tags (read in the same phase as the metrics). Triage
    reads facts on demand: a decision that needs no metric (its plan names no GetMetricData source, and its alarm
    named its qualifier) reads none."""
    from medic_tools.world import moto_ext

    simulation = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(io.StringIO()))
    try:
        simulation.setup()
        for event in simulation.alarm_events():
            with moto_ext.count_requests() as served:
                simulation.handlers["triage"](event, None)
            plan = simulation.runtime.ledger.all_plans()[0] if simulation.runtime else None
            facts = plan.facts if plan else {}
            downstream = "downstream_db_connection_ratio" in facts
            said = [*plan.fact_sources.values(), *plan.missing_facts.values()] if plan else []
            sought = plan is not None and "traffic_qualifier" in {*plan.fact_sources, *plan.missing_facts}
            metrics = sought or any("cloudwatch:GetMetricData" in text for text in said)  # the traffic split reads some
            expected = (2 if downstream else 1) if metrics else 0  # an alarm held back (OK, no target…) reads nothing
            assert served.count("GetMetricData") == expected, path.stem
    finally:
        install(None)


# --- where real accounts put things ------------------------------------------------------------------------------


def _json_report(duration: float, init: float | None, used: int = 140, size: int = 256) -> str:
    metrics: dict[str, float] = {"durationMs": duration, "billedDurationMs": int(duration) + 1, "memorySizeMB": size,
                                 "maxMemoryUsedMB": used}  # fmt: skip
    if init is not None:
        metrics["initDurationMs"] = init
    return json.dumps({"time": "2026-12-03T06:00:00.000Z", "type": "platform.report",
                       "record": {"requestId": "r", "metrics": metrics, "status": "success"}})  # fmt: skip


@pytest.mark.parametrize("insights", [True, False], ids=["logs-insights", "filter-log-events"])
def test_reports_in_a_shared_custom_log_group_in_the_json_format(world: Any, insights: bool) -> None:
    from medic_tools.world import moto_ext
    from medic_tools.world.moto_lambda_logging import log_stream_name

    facts, simulation = world("p99-cpu-starved.yaml")
    clients = simulation.clients
    clients.lambda_.update_function_configuration(
        FunctionName="report-builder", LoggingConfig={"LogFormat": "JSON", "LogGroup": "/shared/app"}
    )
    version = clients.lambda_.publish_version(FunctionName="report-builder")["Version"]  # the alias serves versions
    clients.lambda_.update_alias(FunctionName="report-builder", Name="live", FunctionVersion=version)
    logs = clients.client("logs")
    logs.create_log_group(logGroupName="/shared/app")
    day = simulation.clock.now().date()
    when = int(simulation.clock.now().timestamp() * 1000) - 60_000
    for function, reports in (
        ("report-builder", [_json_report(2400, None)] * 30 + [_json_report(2600, 800)] * 2),
        ("report-builder-v2", [_json_report(10, None)] * 50),  # another function in the same group: not ours
    ):
        stream = log_stream_name(function, version, "0f1e2d", day, log_group="/shared/app")
        logs.create_log_stream(logGroupName="/shared/app", logStreamName=stream)
        batch = [{"timestamp": when + i, "message": m} for i, m in enumerate(reports)]
        logs.put_log_events(logGroupName="/shared/app", logStreamName=stream, logEvents=batch)
    if not insights:
        moto_ext.inject_fault("StartQuery", "AccessDeniedException", 400, times=3)
    facts = _collect(simulation)

    assert (facts.log_group, facts.log_format) == ("/shared/app", "JSON")
    assert (facts.report_lines, facts.cold_starts) == (32, 2)
    assert facts.warm_duration_p99_ms == 2400 and facts.cold_duration_avg_ms == pytest.approx(2600)
    assert (facts.slow_invocations, facts.slow_cold_share) == (32, pytest.approx(2 / 32))
    assert facts.max_memory_used_mb == 140 and facts.memory_used_ratio == pytest.approx(140 / 256)
    assert facts.sources["report_lines"].startswith(
        "logs:StartQuery (Logs Insights) /shared/app, JSON reports" if insights
         else "logs:FilterLogEvents /shared/app, JSON reports"
    )  # fmt: skip


def test_peak_concurrency_falls_back_to_the_function_level_series_and_says_so(world: Any) -> None:
    facts, simulation = world("spillover-fixed-floor.yaml")
    assert facts.sources["peak_concurrency"].endswith(
        "ConcurrentExecutions Maximum {FunctionName=checkout, Resource=checkout:live}"
    )

    cloudwatch = simulation.clients.cloudwatch
    stamp = simulation.clock.now() - timedelta(minutes=2)
    cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[  # only the function-level series, elsewhere
        {"MetricName": "ConcurrentExecutions", "Dimensions": [{"Name": "FunctionName", "Value": "orders"}],
         "Timestamp": stamp, "Value": 1},
    ])  # fmt: skip
    facts = _collect_without(
        simulation, "ConcurrentExecutions", {"FunctionName": "checkout", "Resource": "checkout:live"}
    )

    # No ConcurrentExecutions at all for checkout: Little's law from the alias's Invocations and Duration is next,
    # and it has no Duration either; PC utilization x allocated has none: the fact is unknown, and says what was empty.
    assert facts.peak_concurrency is None
    assert facts.missing["peak_concurrency"] == (
        "no datapoints in the last 15m@60s for ConcurrentExecutions Maximum {FunctionName=checkout, "
        "Resource=checkout:live}; ConcurrentExecutions Maximum {FunctionName=checkout} (function-level, every "
        "qualifier: an upper bound for checkout:live); Invocations Sum {FunctionName=checkout, Resource=checkout:live}"
        " × Duration Average {FunctionName=checkout, Resource=checkout:live} (Little's law: invocations/s × Duration, "
        "the busiest minute's average concurrency); Invocations Sum {FunctionName=checkout} × Duration Average "
        "{FunctionName=checkout} (Little's law: invocations/s × Duration, the busiest minute's average concurrency, "
        "every qualifier); ProvisionedConcurrencyUtilization Maximum {FunctionName=checkout, Resource=checkout:live} "
        "(× pc_allocated: the busiest share of the provisioned pool)"
    )

    _put(simulation, "ConcurrentExecutions", {"FunctionName": "checkout"}, [30, 61])
    facts = _collect_without(
        simulation, "ConcurrentExecutions", {"FunctionName": "checkout", "Resource": "checkout:live"}
    )
    assert facts.peak_concurrency == 61
    assert facts.sources["peak_concurrency"].endswith(
        "ConcurrentExecutions Maximum {FunctionName=checkout} (function-level, every qualifier: an upper bound for "
        "checkout:live)"
    )


ALIAS_SERIES = {"FunctionName": "checkout", "Resource": "checkout:live"}


def _collect(simulation: Simulation) -> Facts:
    event = events[simulation]
    assert simulation.runtime is not None
    return simulation.runtime.collector.collect(classify(event), event, simulation.clock.now())


def _put(simulation: Simulation, name: str, dimensions: dict[str, str], values: list[float]) -> None:
    now = simulation.clock.now()
    simulation.clients.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
         "Timestamp": now - timedelta(minutes=len(values) - i, seconds=-30), "Value": value}
        for i, value in enumerate(values)
    ])  # fmt: skip


def _collect_without(simulation: Simulation, name: str, dimensions: dict[str, str]) -> Facts:
    """Collect the alarm's facts again after dropping every datapoint of one series (a world where it has none)."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends["123456789012"][simulation.region]
    wanted = sorted(dimensions.items())
    backend.metric_data = [
        datum for datum in backend.metric_data
        if not (datum.name == name and sorted((d.name, d.value) for d in datum.dimensions) == wanted)
    ]  # fmt: skip
    return _collect(simulation)
