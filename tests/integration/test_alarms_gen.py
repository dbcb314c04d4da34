"""`medic alarms`: the recommended alarms as CloudFormation (linted by cfn-lint), as CLI commands, and as scenario
`alarm:` blocks that `medic simulate` consumes; each definition is accepted by PutMetricAlarm."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from medic.errors import InputError
from medic.runtime import install
from medic_tools.alarms_gen import recommended, render
from medic_tools.cli import main
from medic_tools.scenario import Scenario, load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]


def _check_template_module() -> Any:
    spec = importlib.util.spec_from_file_location("check_template_for_alarms", ROOT / "scripts" / "check_template.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ALL = recommended("checkout", alias="live", p99_ms=800, database="orders-db", max_connections=400)


def test_the_recommended_set() -> None:
    assert [a.name for a in ALL] == [
        "checkout-throttles", "checkout-live-p99-duration", "checkout-live-spillover", "checkout-live-pc-idle",
        "orders-db-connections",
    ]  # fmt: skip
    assert [a.name for a in recommended("search")] == ["search-throttles", "search-p99-duration"]
    assert ALL[-1].threshold == 320


def test_the_cloudformation_lints_clean() -> None:
    fragment = yaml.safe_load(render(ALL, "cloudformation"))
    template = {"AWSTemplateFormatVersion": "2010-09-09", **fragment}

    assert _check_template_module().lint(template) == []
    props = template["Resources"]["CheckoutLiveP99DurationAlarm"]["Properties"]
    assert (props["ExtendedStatistic"], props["Threshold"]) == ("p99", 800)


def test_every_definition_is_accepted_by_put_metric_alarm(aws: EmbeddedAWS) -> None:
    cloudwatch = aws.client("cloudwatch")
    for alarm in ALL:
        cloudwatch.put_metric_alarm(**alarm.cloudformation()["Properties"])  # boto3 validates against the API model

    names = {a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert names == {a.name for a in ALL}


def test_the_cli_commands_are_put_metric_alarm_with_every_field() -> None:
    lines = render(ALL, "cli").splitlines()

    assert len(lines) == len(ALL)
    words = shlex.split(lines[1])
    assert words[:3] == ["aws", "cloudwatch", "put-metric-alarm"]
    assert words[words.index("--extended-statistic") + 1] == "p99"
    assert words[words.index("--dimensions") + 1 : words.index("--dimensions") + 3] == [
        "Name=FunctionName,Value=checkout", "Name=Resource,Value=checkout:live",
    ]  # fmt: skip


@pytest.mark.parametrize(("scenario", "index"), [("spillover-fixed-floor.yaml", 2), ("p99-cold-starts.yaml", 1)])
def test_medic_simulate_consumes_the_generated_alarm(aws: EmbeddedAWS, scenario: str, index: int) -> None:
    base = load_scenario(ROOT / "scenarios" / scenario)
    function = base.world.functions[0].name
    generated = recommended(function, alias="live", p99_ms=1000)[index].scenario()
    generated.update({"evaluation_periods": 1, "datapoints_to_alarm": 1})  # the world's metrics are short
    data = base.model_dump(exclude_none=True)
    data["alarm"] = generated
    sim = Simulation(Scenario.model_validate(data), scenario, aws.endpoint_url, Story(None))
    try:
        outcome = sim.run("approve")
    finally:
        install(None)

    [plan] = outcome.plans
    assert plan.alarm_name == generated["name"]
    assert (plan.signal, plan.status) == (base.expect.signal, "VERIFIED")  # type: ignore[union-attr]


def test_bad_input_names_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="--max-connections"):
        recommended("checkout", database="orders-db")

    assert main(["alarms", "bad name!"]) == 2
    assert "FUNCTION" in capsys.readouterr().err
    assert main(["alarms", "checkout", "--alias", "live", "--format", "scenario"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["alarm"]["metric"] for d in documents] == [
        "Throttles", "Duration", "ProvisionedConcurrencySpilloverInvocations", "ProvisionedConcurrencyUtilization",
    ]  # fmt: skip
