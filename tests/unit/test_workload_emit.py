"""What a modelled account emits: every series at every dimension Lambda uses, Duration as Values/Counts, the
omission knob, and REPORT lines in the Text and JSON formats, in the function's or a custom log group."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from medic_tools.scenario import WorldSpec
from medic_tools.world.workload.account import ModelledAccount, account_config
from medic_tools.world.workload.alarm import statistic
from medic_tools.world.workload.emit import MAX_VALUES, Datum

END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def account(*functions: dict[str, Any], **world: Any) -> ModelledAccount:
    spec = WorldSpec.model_validate({"window_min": 5, **world, "functions": list(functions)})
    return ModelledAccount(account_config(spec), window_end=END)


CHECKOUT = {
    "name": "checkout",
    "memory_mb": 1024,
    "versions": 2,
    "aliases": [
        {"name": "live", "version": "1", "routing": {"2": 0.2}},
        {"name": "warm", "provisioned_concurrency": 5},
    ],
    "workload": {
        "invoke": {"qualifier": "live"},
        "arrivals": {"base_rps": 30, "seed": 2},
        "duration": {"cpu_ms": 40, "io_ms": 60, "init_ms": 800, "first_run_ms": 150, "noise": 0.2},
        "report_lines": 120,
    },
}
WARM = {
    "name": "warmed",
    "aliases": [{"name": "live", "provisioned_concurrency": 10}],
    "workload": {
        "invoke": {"qualifier": "live"},
        "arrivals": {"base_rps": 20},
        "duration": {"cpu_ms": 0, "io_ms": 100},
    },
}


def dimension_sets(data: list[Datum], metric: str) -> set[tuple[str, ...]]:
    return {tuple(sorted(name for name, _ in d.dimensions)) for d in data if d.metric == metric}


def test_every_lambda_series_at_every_dimension_lambda_uses() -> None:
    data = account(CHECKOUT, WARM).series()
    full = {(), ("FunctionName",), ("FunctionName", "Resource"), ("ExecutedVersion", "FunctionName", "Resource")}
    for metric in ("Invocations", "Errors", "Duration", "ConcurrentExecutions"):
        assert dimension_sets(data, metric) == full, metric
    assert dimension_sets(data, "Throttles") == full - {("ExecutedVersion", "FunctionName", "Resource")}
    assert dimension_sets(data, "UnreservedConcurrentExecutions") == {()}
    assert dimension_sets(data, "ClaimedAccountConcurrency") == {()}
    for metric in ("ProvisionedConcurrencyInvocations", "ProvisionedConcurrencySpilloverInvocations",
                   "ProvisionedConcurrentExecutions"):  # fmt: skip
        assert dimension_sets(data, metric) == {("FunctionName",), ("FunctionName", "Resource")}, metric
    assert dimension_sets(data, "ProvisionedConcurrencyUtilization") == {("FunctionName", "Resource")}
    executed = {dict(d.dimensions)["ExecutedVersion"] for d in data if len(d.dimensions) == 3}
    assert executed == {"1", "2"}  # the weighted alias' two versions
    # PC gauges exist for every alias with PC ("emitted for each version and alias with PC configured"); the PC
    # invocation counts only where invocations met it
    gauges = {dict(d.dimensions).get("Resource") for d in data if d.metric == "ProvisionedConcurrentExecutions"}
    assert gauges == {None, "warmed:live", "checkout:warm"}
    counts = {dict(d.dimensions).get("Resource") for d in data if d.metric == "ProvisionedConcurrencyInvocations"}
    assert counts == {None, "warmed:live"}


def test_an_unqualified_function_has_no_resource_series() -> None:
    data = account({"name": "plain", "workload": {"arrivals": {"base_rps": 5}}}).series()
    assert dimension_sets(data, "Invocations") == {(), ("FunctionName",)}


def test_duration_is_a_bounded_sample_whose_counts_are_the_invocations() -> None:
    data = account(CHECKOUT, WARM).series()
    for datum in (d for d in data if d.metric == "Duration"):
        assert 0 < len(datum.values) <= MAX_VALUES and len(datum.values) == len(datum.counts)
        invocations = next(d for d in data if d.metric == "Invocations" and d.dimensions == datum.dimensions
                           and d.minute == datum.minute)  # fmt: skip
        assert invocations.stats is not None and sum(datum.counts) == invocations.stats[3]
        assert datum.unit == "Milliseconds"
    function = [d for d in data if d.metric == "Duration" and d.dimensions == (("FunctionName", "checkout"),)]
    p50, p99 = statistic(function[3:4], "p50"), statistic(function[3:4], "p99")
    warm = 40 / (1024 / 1769) + 60  # cpu at 0.58 vCPU + the wait downstream
    assert p50 is not None and p99 is not None
    assert abs(p50 - warm) < 0.05 * warm and warm * 1.3 < p99 < warm * 2  # log-normal noise of sigma 0.2


def test_omitted_series_are_not_emitted() -> None:
    omit = [{"metric": "ConcurrentExecutions", "dimensions": ["FunctionName", "Resource"]},
            {"metric": "ClaimedAccountConcurrency"}]  # fmt: skip
    data = account(CHECKOUT, omit_series=omit).series()
    assert ("FunctionName", "Resource") not in dimension_sets(data, "ConcurrentExecutions")
    assert ("FunctionName",) in dimension_sets(data, "ConcurrentExecutions")
    assert dimension_sets(data, "ClaimedAccountConcurrency") == set()


def test_put_requests_carry_values_counts_and_statistic_sets() -> None:
    modelled = account(CHECKOUT)
    members = [d.put_request(modelled.start) for d in modelled.series()]
    duration = next(m for m in members if m["MetricName"] == "Duration")
    assert set(duration) >= {"Values", "Counts", "Timestamp", "Unit"} and "Value" not in duration
    concurrency = next(m for m in members if m["MetricName"] == "ConcurrentExecutions")
    assert set(concurrency["StatisticValues"]) == {"Minimum", "Maximum", "Sum", "SampleCount"}
    assert concurrency["StatisticValues"]["SampleCount"] == 60  # a sample a second
    assert min(m["Timestamp"] for m in members) == modelled.start.replace(second=30)


REPORT = re.compile(
    r"^REPORT RequestId: [0-9a-f-]{36}\tDuration: \d+\.\d{2} ms\tBilled Duration: \d+ ms\tMemory Size: \d+ MB"
    r"\tMax Memory Used: \d+ MB(\tInit Duration: \d+\.\d{2} ms)?$"
)


def test_text_report_lines_in_the_functions_own_group() -> None:
    lines = account(CHECKOUT).reports()
    assert 100 <= len(lines) <= 140
    assert {line.log_group for line in lines} == {"/aws/lambda/checkout"}
    for line in lines:
        assert REPORT.match(line.message), line.message
        assert re.match(r"^\d{4}/\d{2}/\d{2}/\[(1|2)\][0-9a-f]{32}$", line.stream), line.stream
    cold = [line for line in lines if "Init Duration" in line.message]
    for line in cold:
        fields = dict(part.split(": ", 1) for part in line.message.split("\t")[1:])
        duration, init = float(fields["Duration"][:-3]), float(fields["Init Duration"][:-3])
        assert int(fields["Billed Duration"][:-3]) == math.ceil(duration + init)  # INIT is billed
        assert duration < init  # Duration is the handler's run: first run + work, not the init phase


def test_json_report_lines_in_a_shared_custom_group() -> None:
    json_checkout = {**CHECKOUT, "logging": {"format": "JSON", "log_group": "/shared/app"}}
    other = {"name": "other", "logging": {"log_group": "/shared/app"},
             "workload": {"arrivals": {"base_rps": 5}, "report_lines": 20}}  # fmt: skip
    lines = account(json_checkout, other).reports()
    assert {line.log_group for line in lines} == {"/shared/app"}
    streams = {line.stream.split("/")[3].split("[")[0] for line in lines}
    assert streams == {"checkout", "other"}  # YYYY/MM/DD/<function>[<version>]<id>
    for line in (line for line in lines if line.stream.split("/")[3].startswith("checkout")):
        record = json.loads(line.message)
        assert record["type"] == "platform.report" and record["record"]["status"] == "success"
        assert record["time"].endswith("Z") and len(record["record"]["requestId"]) == 36
        metrics = record["record"]["metrics"]
        assert set(metrics) - {"initDurationMs"} == {"durationMs", "billedDurationMs", "memorySizeMB",
                                                     "maxMemoryUsedMB"}  # fmt: skip
        assert metrics["memorySizeMB"] == 1024
    assert any(line.message.startswith("REPORT RequestId:") for line in lines)  # `other` keeps Text


def test_a_provisioned_environments_lines_have_no_init_duration() -> None:
    duration = {"cpu_ms": 0, "io_ms": 100, "first_run_ms": 200}
    lines = account({**WARM, "workload": {**WARM["workload"], "duration": duration}}).reports()
    assert lines and all("Init Duration" not in line.message for line in lines)
