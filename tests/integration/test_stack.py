"""`--stack NAME`: `medic log`, `medic control` and `medic replay` find a deployed Medic by its stack's outputs,
whatever the stack is called, with no `MEDIC_*` variable set.

The stacks are real CloudFormation stacks on the embedded AWS (moto's server, over HTTP), made of template.yaml's own
resources and outputs, so the tables carry the names CloudFormation gives them (`payments-medic-PlansTable-…`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from medic.aws import AwsClients
from medic.log import configure
from medic.runtime import install
from medic.safety import KILL_SWITCH_KEY
from medic_tools.cli import main
from medic_tools.scenario import load_scenario
from medic_tools.simulate import Simulation, Story
from medic_tools.stack import LOG_OUTPUTS, TRIAGE_FUNCTION_OUTPUT
from medic_tools.world import moto_ext
from medic_tools.world.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"
STACK = "payments-medic"  # not `medic`: nothing may assume what the stack is called
BY = "U0ONCALL"

configure()  # Medic's logs bound to the session's stderr now, not to one test's `capsys` (closed after it)


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags as their long forms (!Ref X → {"Ref": X}, !GetAtt A.B → [A, B])."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return {name: value.split(".", 1) if suffix == "GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _tag)
TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=_CfnLoader)


def deploy(clients: AwsClients, name: str, *, triage_environment: dict[str, Any] | None = None) -> dict[str, str]:
    """A stack `name` with template.yaml's tables and digest bucket and their outputs (and, given its environment, a
    triage function and its output); its outputs."""
    resources = {logical: TEMPLATE["Resources"][logical] for logical in ("PlansTable", "EventsTable", "DigestBucket")}
    outputs = {key: TEMPLATE["Outputs"][key] for key in (*LOG_OUTPUTS, "DigestBucketName")}
    if triage_environment is not None:
        resources["TriageRole"] = {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}}  # fmt: skip
        resources["TriageFunction"] = {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.13", "Handler": "app.handler", "Role": {"Fn::GetAtt": ["TriageRole", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return {}\n"},
            "Environment": {"Variables": triage_environment},
        }}  # fmt: skip
        outputs[TRIAGE_FUNCTION_OUTPUT] = TEMPLATE["Outputs"][TRIAGE_FUNCTION_OUTPUT]
    cloudformation = clients.client("cloudformation")
    parameters = {"DigestRetentionDays": TEMPLATE["Parameters"]["DigestRetentionDays"]}
    body = {"Parameters": parameters, "Resources": resources, "Outputs": outputs}
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(body))
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


def copy_table(clients: AwsClients, source: str, destination: str) -> None:
    for page in clients.dynamodb.get_paginator("scan").paginate(TableName=source):
        for item in page["Items"]:
            clients.dynamodb.put_item(TableName=destination, Item=item)


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line:\n{err}"
    assert "Traceback" not in err
    return err.strip()


@pytest.fixture
def no_medic_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [name for name in os.environ if name.startswith("MEDIC_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def sim(aws: EmbeddedAWS, no_medic_environment: pytest.MonkeyPatch) -> Iterator[Simulation]:
    """The fixed-floor world, its metrics ending now; Medic's tables as the simulator names them (`medic-plans`…)."""
    simulation = Simulation(load_scenario(FLOOR), str(FLOOR), aws.endpoint_url, Story(None))
    simulation.clock.set(datetime.now(UTC).replace(second=0, microsecond=0))
    yield simulation
    install(None)
    moto_ext.reset_knobs()


def test_log_and_control_find_the_tables_by_the_stacks_outputs(
    sim: Simulation, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = sim.run("approve")
    outputs = deploy(sim.clients, STACK)
    assert outputs["PlansTableName"].startswith(f"{STACK}-PlansTable-")
    copy_table(sim.clients, sim.infra["plans"], outputs["PlansTableName"])
    copy_table(sim.clients, sim.infra["events"], outputs["EventsTableName"])
    [plan] = outcome.plans
    capsys.readouterr()

    assert main(["log", "list", "--stack", STACK, "--json"]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [plan.id]
    assert main(["log", "show", plan.id, "--stack", STACK]) == 0
    assert "VERIFIED" in capsys.readouterr().out
    assert main(["log", "verify", "--plan", plan.id, "--stack", STACK]) == 0
    verified = capsys.readouterr().out
    assert "chain intact" in verified and "digests: none in the bucket" in verified, "the stack's digest bucket"

    assert main(["control", "kill-switch", "on", "--by", BY, "--reason", "incident 42", "--stack", STACK]) == 0
    capsys.readouterr()
    assert main(["control", "status", "--stack", STACK]) == 0
    switch = json.loads(capsys.readouterr().out)["kill_switch"]
    assert (switch["on"], switch["by"], switch["reason"]) == (True, BY, "incident 42")
    key = {"plan_id": {"S": KILL_SWITCH_KEY}}
    assert "Item" in sim.clients.dynamodb.get_item(TableName=outputs["PlansTableName"], Key=key), "in the stack's"
    assert "Item" not in sim.clients.dynamodb.get_item(TableName=sim.infra["plans"], Key=key), "and no other table"


def test_medic_replay_re_drives_with_the_stacks_triage_function_settings(
    sim: Simulation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.setup()
    outputs = deploy(sim.clients, STACK, triage_environment={
        "MEDIC_PLANS_TABLE": {"Ref": "PlansTable"}, "MEDIC_EVENTS_TABLE": {"Ref": "EventsTable"},
        "MEDIC_EXECUTOR_QUEUE_URL": sim.infra["queue"], "MEDIC_DRY_RUN": "true",
        "MEDIC_RUNBOOK": "/opt/lambda-latency.yaml",
    })  # fmt: skip
    [event] = sim.alarm_events()
    saved = tmp_path / "alarm.json"
    saved.write_text(json.dumps(event), encoding="utf-8")

    status = main(["replay", str(saved), "--stack", STACK, "--execute", "--by", BY, "--json"])

    [result] = json.loads(capsys.readouterr().out)
    assert (status, result["outcome"]) == (0, "triaged")
    key = {"plan_id": {"S": result["plan_id"]}}
    plan = sim.clients.dynamodb.get_item(TableName=outputs["PlansTableName"], Key=key).get("Item")
    assert plan is not None, "the plan is in the stack's table"
    assert "Item" not in sim.clients.dynamodb.get_item(TableName=sim.infra["plans"], Key=key)
    assert main(["replay", str(saved), "--stack", STACK, "--settings-from", "medic-triage"]) == 2
    assert one_line(capsys.readouterr().err) == "medic: replay: --stack: give --stack or --settings-from, not both"


COMMANDS = [
    ["log", "list"],
    ["log", "show", "p-0123456789abcdef"],
    ["log", "verify"],
    ["log", "export", "--format", "jsonl"],
    ["control", "status"],
    ["control", "kill-switch", "on", "--by", BY],
    ["control", "breaker-reset", "--by", BY],
    ["replay", "--rejected"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(argv[:2]) for argv in COMMANDS])
def test_a_stack_that_does_not_exist_is_one_line_and_exit_2(
    aws: EmbeddedAWS, no_medic_environment: pytest.MonkeyPatch, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--stack", "no-such-stack"]) == 2

    assert one_line(capsys.readouterr().err) == (
        "medic: stack no-such-stack: no such stack in us-east-1 (check --stack, and AWS_REGION or the profile's Region)"
    )


def test_a_stack_without_medics_outputs_names_the_output_it_lacks(
    aws: EmbeddedAWS, no_medic_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clients = AwsClients()
    clients.client("cloudformation").create_stack(
        StackName="orders", TemplateBody=json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
    )

    assert main(["log", "list", "--stack", "orders"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("medic: stack orders: output PlansTableName: missing (status CREATE_COMPLETE, outputs: "
                           "none): not a Medic stack"), line  # fmt: skip
    assert line.endswith("; or set MEDIC_PLANS_TABLE"), line
    assert main(["replay", "--rejected", "--stack", "orders"]) == 2
    assert one_line(capsys.readouterr().err).startswith("medic: stack orders: output TriageFunctionName: missing")


def test_a_variable_naming_other_tables_than_the_stack_is_refused_and_one_that_agrees_is_fine(
    sim: Simulation, no_medic_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.setup()
    outputs = deploy(sim.clients, STACK)
    no_medic_environment.setenv("MEDIC_PLANS_TABLE", sim.infra["plans"])

    assert main(["control", "status", "--stack", STACK]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"medic: stack {STACK}: output PlansTableName: is {outputs['PlansTableName']!r}, but MEDIC_PLANS_TABLE is "
        f"{sim.infra['plans']!r}: unset MEDIC_PLANS_TABLE, or leave out --stack"
    )
    no_medic_environment.setenv("MEDIC_PLANS_TABLE", outputs["PlansTableName"])
    assert main(["control", "status", "--stack", STACK]) == 0
    no_medic_environment.delenv("MEDIC_PLANS_TABLE")
    no_medic_environment.setenv("MEDIC_DIGEST_BUCKET", "another-bucket")
    sim.clients.client("s3").create_bucket(Bucket="medic-digests-x", ObjectLockEnabledForBucket=True)
    capsys.readouterr()
    assert main(["log", "verify", "--stack", STACK, "--digest-bucket", "medic-digests-x"]) == 0, "the flag wins"
    assert "medic:" not in capsys.readouterr().err
