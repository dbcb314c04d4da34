"""The scenario format's workload extension: valid shapes load, invalid ones are refused naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from medic.errors import ScenarioError
from medic_tools.scenario import load_scenario
from medic_tools.world.workload.arrivals import ArrivalStream, rate_at
from medic_tools.world.workload.spec import ArrivalsSpec

ALARM = {"name": "a", "namespace": "AWS/Lambda", "metric": "Throttles", "dimensions": {"FunctionName": "api"},
         "threshold": 0}  # fmt: skip


def scenario(tmp_path: Path, function: dict[str, Any], **world: Any) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({"world": {**world, "functions": [function]}, "alarm": ALARM}))
    return path


def refused(tmp_path: Path, function: dict[str, Any], **world: Any) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario(tmp_path, function, **world))
    return caught.value


def test_a_new_account_of_ten_and_a_full_workload_load(tmp_path: Path) -> None:
    function = {
        "name": "checkout", "versions": 2, "logging": {"format": "JSON", "log_group": "/shared/app"},
        "aliases": [{"name": "live", "routing": {"2": 0.1}, "version": "1"},
                    {"name": "warm", "provisioned_concurrency": 5, "autoscaling": {"min": 5, "max": 20,
                     "scheduled": [{"at_min": 10, "min": 15}]}}],
        "event_sources": [{"queue": "orders", "batch_size": 5}],
        "workload": {"invoke": {"qualifier": "live", "path": "sync"},
                     "arrivals": {"shape": "spike", "base_rps": 20, "peak_rps": 900, "at_min": 15, "rise_s": 5},
                     "duration": {"cpu_ms": 60, "io_ms": 30, "first_run_ms": 400, "init_ms": 1200,
                                  "memory_used_mb": 200},
                     "dependency": {"slow_from_min": 12, "io_ms": 800}, "connections_per_env": 1},
    }  # fmt: skip
    loaded = load_scenario(
        scenario(
            tmp_path,
            function,
            account_concurrency_limit=10,
            omit_series=[{"metric": "ConcurrentExecutions", "dimensions": ["FunctionName"]}],
        )
    )
    assert loaded.world.account_concurrency_limit == 10 and loaded.world.has_workload


@pytest.mark.parametrize(
    ("function", "field", "words"),
    [
        (
            {"name": "api", "aliases": [{"name": "live", "provisioned_concurrency": 5, "routing": {"1": 0.5}}]},
            "world.functions.0.aliases.0",
            "Alias with weights can not be used with Provisioned Concurrency",
        ),
        (
            {"name": "api", "workload": {"invoke": {"qualifier": "prod"}, "arrivals": {"base_rps": 1}}},
            "world.functions.0",
            "workload.invoke.qualifier",
        ),
        (
            {"name": "api", "workload": {"invoke": {"path": "sqs"}, "arrivals": {"base_rps": 1}}},
            "world.functions.0",
            "sqs needs an event source",
        ),
        ({"name": "api", "aliases": [{"name": "live", "routing": {"3": 0.1}}]}, "world.functions.0", "version 3"),
        ({"name": "api", "logging": {"log_group": "aws/mine"}}, "world.functions.0.logging", "aws/"),
        (
            {"name": "api", "workload": {"arrivals": {"base_rps": -1}}},
            "world.functions.0.workload.arrivals.base_rps",
            "greater than or equal",
        ),
        (
            {"name": "api", "workload": {"arrivals": {"base_rps": 1}, "duration": {"init_ms": 20000}}},
            "world.functions.0.workload.duration.init_ms",
            "10000",
        ),
        ({"name": "api", "aliases": [{"name": "7"}]}, "world.functions.0.aliases.0", "not a number"),
    ],
)
def test_invalid_workloads_are_refused_naming_the_field(tmp_path: Path, function: dict[str, Any], field: str,
                                                        words: str) -> None:  # fmt: skip
    error = refused(tmp_path, function)
    assert error.field == field and words in error.problem, (error.field, error.problem)


def test_arrival_shapes() -> None:
    spike = ArrivalsSpec(shape="spike", base_rps=10, peak_rps=110, at_min=1, rise_s=10, hold_s=30, poisson=False)
    assert [rate_at(spike, s) for s in (0, 60, 65, 70, 99, 100)] == [10, 10, 60, 110, 110, 10]
    ramp = ArrivalsSpec(shape="ramp", base_rps=0, peak_rps=100, at_min=0, rise_s=100, poisson=False)
    assert rate_at(ramp, 50) == 50 and rate_at(ramp, 1000) == 100
    diurnal = ArrivalsSpec(shape="diurnal", base_rps=10, peak_rps=30, at_min=10, period_min=20, poisson=False)
    assert rate_at(diurnal, 600) == pytest.approx(30) and rate_at(diurnal, 0) == pytest.approx(10)
    steady = ArrivalStream(ArrivalsSpec(base_rps=2.5, poisson=False), "api")
    assert sum(steady.next(s) for s in range(100)) == 250  # the fractions carry over
    noisy = ArrivalStream(ArrivalsSpec(base_rps=200, seed=9), "api")
    counts = [noisy.next(s) for s in range(600)]
    assert abs(sum(counts) / 600 - 200) < 3 and len(set(counts)) > 20
