"""A workload scenario through `medic simulate`: the world is built over HTTP from the model, and the world's series,
REPORT lines and the ground truth are what the model says (Medic's diagnosis is not asserted here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from medic.runtime import install
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story, simulate
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]

CHECKOUT: dict[str, Any] = {
    "description": "checkout's reserved concurrency refuses a step of traffic",
    "world": {
        "window_min": 8,
        "after_fix_min": 5,
        "functions": [
            {
                "name": "checkout",
                "memory_mb": 1024,
                "reserved_concurrency": 6,
                "versions": 2,
                "tags": {"medic:managed": "true"},
                "logging": {"format": "JSON", "log_group": "/shared/app"},
                "aliases": [{"name": "live", "version": "1", "routing": {"2": 0.25}}],
                "workload": {
                    "invoke": {"qualifier": "live"},
                    "arrivals": {"shape": "step", "base_rps": 5, "peak_rps": 40, "at_min": 5, "seed": 3},
                    "duration": {"cpu_ms": 30, "io_ms": 150, "init_ms": 700, "first_run_ms": 100},
                    "report_lines": 80,
                },
            },
            {
                "name": "reports",
                "logging": {"log_group": "/shared/app"},
                "workload": {"arrivals": {"base_rps": 2}, "report_lines": 20},
            },
        ],
    },
    "alarm": {
        "name": "checkout-throttles",
        "namespace": "AWS/Lambda",
        "metric": "Throttles",
        "dimensions": {"FunctionName": "checkout"},
        "threshold": 0,
    },
}


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    path = tmp_path / "checkout.yaml"
    path.write_text(yaml.safe_dump(CHECKOUT))
    return path


def test_the_world_holds_the_models_series_logs_and_truth(checkout: Path, aws_server: EmbeddedAWS) -> None:
    document = simulate(checkout, decide="none", aws=aws_server).contract()
    truth = document["ground_truth"]
    assert truth["signal"] == "throttles" and truth["diagnosis"] == "reserved_limit"
    assert truth["before"]["breaching"] and truth["fix"]["clears"]
    assert truth["fix"]["changes"][0] == {"kind": "set_reserved_concurrency", "target": "checkout",
                                          "value": truth["fix"]["changes"][0]["value"], "minimum": None,
                                          "at_min": None}  # fmt: skip
    assert truth["fix"]["changes"][0]["value"] > 6

    cloudwatch, logs = aws_server.client("cloudwatch"), aws_server.client("logs")
    pages = cloudwatch.get_paginator("list_metrics").paginate(Namespace="AWS/Lambda")
    metrics = [metric for page in pages for metric in page["Metrics"]]
    sets = {(m["MetricName"], tuple(sorted(d["Name"] for d in m["Dimensions"]))) for m in metrics}
    expected = [
        ("Invocations", ()),
        ("Throttles", ("FunctionName",)),
        ("Duration", ("FunctionName", "Resource")),
        ("Duration", ("ExecutedVersion", "FunctionName", "Resource")),
        ("UnreservedConcurrentExecutions", ()),
        ("ClaimedAccountConcurrency", ()),
        ("ConcurrentExecutions", ("FunctionName",)),
    ]
    assert [series for series in expected if series not in sets] == []
    executed = {d["Value"] for m in metrics for d in m["Dimensions"] if d["Name"] == "ExecutedVersion"}
    assert executed == {"1", "2"}

    end = datetime.now(UTC)

    def query(name: str, metric: str, stat: str) -> dict[str, Any]:
        dimensions = [{"Name": "FunctionName", "Value": "checkout"}]
        stat_of = {"Metric": {"Namespace": "AWS/Lambda", "MetricName": metric, "Dimensions": dimensions}}
        return {"Id": name, "MetricStat": {**stat_of, "Period": 60, "Stat": stat}}

    throttles = cloudwatch.get_metric_data(
        MetricDataQueries=[query("t", "Throttles", "Sum"), query("p", "Duration", "p99")],
        StartTime=end - timedelta(hours=2),
        EndTime=end,
    )["MetricDataResults"]
    sums, p99 = throttles[0]["Values"], throttles[1]["Values"]
    assert sum(sums) > 0 and len(sums) >= 8  # the window's minutes (and the wait for the approval's)
    assert all(0 < value < 10_000 for value in p99)

    pages = logs.get_paginator("describe_log_streams").paginate(logGroupName="/shared/app")
    streams = [stream for page in pages for stream in page["logStreams"]]
    owners = {s["logStreamName"].split("/")[3].split("[")[0] for s in streams}
    assert owners == {"checkout", "reports"}  # one shared group: YYYY/MM/DD/<function>[<version>]<id>
    events = logs.filter_log_events(logGroupName="/shared/app", logStreamNamePrefix=streams[0]["logStreamName"][:11])
    records = [json.loads(e["message"]) for e in events["events"] if e["message"].startswith("{")]
    texts = [e["message"] for e in events["events"] if e["message"].startswith("REPORT RequestId:")]
    assert texts  # `reports` keeps the Text format in the same group
    assert records and all(r["type"] == "platform.report" for r in records)
    assert all(r["record"]["metrics"]["memorySizeMB"] == 1024 for r in records)


def test_the_model_continues_from_the_live_configuration(checkout: Path, aws: EmbeddedAWS) -> None:
    scenario = load_scenario(checkout)
    sim = Simulation(scenario, str(checkout), aws.endpoint_url, Story(None))
    try:
        sim.setup()
        sim.alarm_events()
        assert sim.truth is not None and sim.truth["diagnosis"] == "reserved_limit"
        needed = sim.truth["fix"]["changes"][0]["value"]
        # an operator (not Medic) raises the reservation as the truth says: the model must follow the world
        sim.clients.lambda_.put_function_concurrency(FunctionName="checkout", ReservedConcurrentExecutions=needed)
        sim.after_fix_and_verify()
        assert sim.account is not None and sim.account.after is not None
        assert sim.account.after.function("checkout").reserved == needed
        first = sim.account.fix_s // 60 + 2 if sim.account.fix_s is not None else 0
        late = [c for m in range(first, first + 3) for k, c in sim.account.trace.cells.get(m, {}).items()
                if k[0] == "checkout"]  # fmt: skip
        # sized on the window's peak, the reservation leaves at most a stray refusal on a later Poisson peak
        assert late and sum(c.throttles for c in late) <= 0.001 * sum(c.invocations for c in late)
        [alarm] = sim.clients.cloudwatch.describe_alarms(AlarmNames=["checkout-throttles"])["MetricAlarms"]
        assert alarm["StateValue"] == "OK"
    finally:
        install(None)


def test_a_scenario_without_workload_has_no_ground_truth(aws_server: EmbeddedAWS) -> None:
    document = simulate(ROOT / "scenarios" / "spillover-fixed-floor.yaml", decide="none", aws=aws_server).contract()
    assert "ground_truth" not in document


def test_a_new_account_of_ten_builds(tmp_path: Path, aws_server: EmbeddedAWS) -> None:
    scenario = {
        "world": {"account_concurrency_limit": 10, "window_min": 6, "functions": [{"name": "signup", "workload": {
            "arrivals": {"shape": "step", "base_rps": 2, "peak_rps": 40, "at_min": 4}, "duration": {"cpu_ms": 0,
            "io_ms": 400}, "report_lines": 10}}]},
        "alarm": {"name": "signup-throttles", "namespace": "AWS/Lambda", "metric": "Throttles",
                  "dimensions": {"FunctionName": "signup"}, "threshold": 0},
    }  # fmt: skip
    path = tmp_path / "new-account.yaml"
    path.write_text(yaml.safe_dump(scenario))
    document = simulate(path, decide="none", aws=aws_server).contract()
    truth = document["ground_truth"]
    assert truth["diagnosis"] == "account_limit"
    assert truth["fix"]["changes"][0]["kind"] == "request_quota_increase" and truth["fix"]["clears"]


def test_the_world_holds_the_pc_the_models_autoscaling_left(tmp_path: Path, aws: EmbeddedAWS) -> None:
    scenario = {
        "world": {"window_min": 8, "functions": [{"name": "api", "aliases": [{"name": "live",
                  "provisioned_concurrency": 5, "autoscaling": {"min": 5, "max": 8}}], "workload": {
                  "invoke": {"qualifier": "live"}, "arrivals": {"shape": "step", "base_rps": 5, "peak_rps": 60,
                  "at_min": 1}, "duration": {"cpu_ms": 0, "io_ms": 300}, "report_lines": 10}}]},
        "alarm": {"name": "api-live-spillover", "namespace": "AWS/Lambda",
                  "metric": "ProvisionedConcurrencySpilloverInvocations",
                  "dimensions": {"FunctionName": "api", "Resource": "api:live"}, "threshold": 0},
    }  # fmt: skip
    path = tmp_path / "autoscaling.yaml"
    path.write_text(yaml.safe_dump(scenario))
    sim = Simulation(load_scenario(path), str(path), aws.endpoint_url, Story(None))
    try:
        sim.setup()
        sim.alarm_events()
        config = sim.clients.lambda_.get_provisioned_concurrency_config(FunctionName="api", Qualifier="live")
        assert config["RequestedProvisionedConcurrentExecutions"] == 8  # pinned at the max in the model
        assert sim.truth is not None and sim.truth["diagnosis"] == "autoscaling_max_too_low"
    finally:
        install(None)


def test_medics_plan_is_replayed_through_the_model_before_it_is_applied(aws_server: EmbeddedAWS) -> None:
    """The card's change predicted: a reservation sized on the request rate clears the rate cap's throttles; one
    sized on concurrency alone would not (the model's own first candidate shows it)."""
    path = ROOT / "scenarios" / "real-walls-reserved-rps-cap.yaml"

    document = simulate(path, decide="none", aws=aws_server).contract()

    predicted = document["ground_truth"]["predicted"]
    assert predicted["changes"].startswith("reserved concurrency of token-check ≥ ")
    assert predicted["clears"] is True and predicted["after"]["throttles"] == 0
    [plan] = document["plans"]
    assert plan["status"] == "PROPOSED"  # predicted, not applied
