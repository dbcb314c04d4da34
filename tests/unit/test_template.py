"""template.yaml, checked on what would actually deploy: the CloudFormation aws-sam-translator makes of it.

The check itself (translate + cfn-lint) is scripts/check_template.py, loaded here from its file;
the tests below pin the safety properties cfn-lint cannot know about: least privilege, an append-only
log that survives mistakes, queues that outlast their consumer, and the wiring Medic's code relies on.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from medic.config import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTIONS = ("TriageFunction", "InteractionsFunction", "ExecutorFunction", "VerifierFunction")

#: Actions that only read. A statement on Resource "*" may hold nothing else.
READ_ONLY_PREFIXES = ("Get", "List", "Describe")
READ_ONLY_ACTIONS = frozenset({"cloudwatch:GetMetricData"})
#: Reads that are secrets in themselves: never on "*", whatever their verb.
SENSITIVE_READS = frozenset({"secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt"})

#: What each function is given (the rest of Settings keeps its defaults); "each only what it needs".
EXPECTED_ENV = {
    "TriageFunction": {
        "MEDIC_PLANS_TABLE",
        "MEDIC_EVENTS_TABLE",
        "MEDIC_DRY_RUN",
        "MEDIC_SLACK_CHANNEL",
        "MEDIC_SLACK_BOT_TOKEN_SECRET_ARN",
        "MEDIC_EXECUTOR_QUEUE_URL",
        "MEDIC_OPT_IN_TAG",
        "MEDIC_RUNBOOK",
    },
    "InteractionsFunction": {
        "MEDIC_PLANS_TABLE",
        "MEDIC_EVENTS_TABLE",
        "MEDIC_DRY_RUN",
        "MEDIC_SLACK_CHANNEL",
        "MEDIC_SLACK_BOT_TOKEN_SECRET_ARN",
        "MEDIC_EXECUTOR_QUEUE_URL",
        "MEDIC_SLACK_SIGNING_SECRET_ARN",
        "MEDIC_APPROVERS",
    },
    "ExecutorFunction": {
        "MEDIC_PLANS_TABLE",
        "MEDIC_EVENTS_TABLE",
        "MEDIC_DRY_RUN",
        "MEDIC_SLACK_CHANNEL",
        "MEDIC_SLACK_BOT_TOKEN_SECRET_ARN",
        "MEDIC_OPT_IN_TAG",
        "MEDIC_VERIFY_AFTER_S",
    },
    "VerifierFunction": {
        "MEDIC_PLANS_TABLE",
        "MEDIC_EVENTS_TABLE",
        "MEDIC_DRY_RUN",
        "MEDIC_SLACK_CHANNEL",
        "MEDIC_SLACK_BOT_TOKEN_SECRET_ARN",
        "MEDIC_EXECUTOR_QUEUE_URL",
        "MEDIC_RUNBOOK",
        "MEDIC_VERIFY_AFTER_S",
    },
}


def _load_check_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_template", ROOT / "scripts" / "check_template.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def check_template() -> ModuleType:
    return _load_check_script()


@pytest.fixture(scope="module")
def result(check_template: ModuleType) -> Any:
    return check_template.check(TEMPLATE)


@pytest.fixture(scope="module")
def cfn(result: Any) -> dict[str, Any]:
    assert result.cloudformation, [f.render("template.yaml") for f in result.findings]
    template: dict[str, Any] = result.cloudformation
    return template


@pytest.fixture(scope="module")
def resources(cfn: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = cfn["Resources"]
    return found


# ------------------------------------------------------------------ helpers


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _of_type(resources: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in resources.items() if res["Type"] == resource_type}


def _statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from _as_list(policy["PolicyDocument"]["Statement"])


def _role_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in _of_type(resources, "AWS::IAM::Role").items():
        for statement in _statements(role):
            yield name, statement


def _actions(statement: dict[str, Any]) -> list[str]:
    return [str(action) for action in _as_list(statement["Action"])]


def _mentions(value: Any, logical_id: str) -> bool:
    """Whether a (possibly intrinsic) value refers to the resource `logical_id`."""
    return re.search(rf"\b{re.escape(logical_id)}\b", json.dumps(value)) is not None


def _is_read_only(action: str) -> bool:
    if action in SENSITIVE_READS:
        return False
    verb = action.partition(":")[2]
    return action in READ_ONLY_ACTIONS or verb.startswith(READ_ONLY_PREFIXES)


def _env(resources: dict[str, Any], function: str) -> dict[str, Any]:
    variables: dict[str, Any] = resources[function]["Properties"]["Environment"]["Variables"]
    return variables


# -------------------------------------------------------------- the check


def test_template_translates_and_lints_clean(result: Any) -> None:
    failing = [finding.render("template.yaml") for finding in result.findings if finding.fails]
    assert result.ok, "\n".join(failing)


def test_check_script_exit_codes(check_template: ModuleType, tmp_path: Path) -> None:
    assert check_template.main([str(tmp_path / "missing.yaml")]) == 2

    broken = tmp_path / "broken.yaml"
    broken.write_text("Resources: [\n", encoding="utf-8")
    assert check_template.main([str(broken)]) == 2

    untranslatable = tmp_path / "untranslatable.yaml"
    untranslatable.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: s3://b/k.zip, Handler: app.handler, Runtime: python3.13,"
        " Events: {E: {Type: NotAnEventType}}}\n",
        encoding="utf-8",
    )
    assert check_template.main([str(untranslatable)]) == 1


# --------------------------------------------------------------- functions


def test_every_function_runs_python313_with_both_layers(resources: dict[str, Any]) -> None:
    functions = _of_type(resources, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13", name
        assert props["Handler"] == "app.handler", name
        assert props["Code"]["S3Key"] == f"functions/{name.removesuffix('Function').lower()}/", name
        layer_dirs = {resources[layer["Ref"]]["Properties"]["Content"]["S3Key"] for layer in props["Layers"]}
        assert layer_dirs == {"shared/", "runbooks/"}, name
        assert props["LoggingConfig"]["LogFormat"] == "JSON", name
        assert "TracingConfig" not in props, name


def test_each_function_gets_only_the_settings_it_needs(resources: dict[str, Any]) -> None:
    known = set(ENV_VARS.values())
    for name, expected in EXPECTED_ENV.items():
        variables = _env(resources, name)
        assert set(variables) == expected, name
        assert set(variables) <= known, f"{name} sets variables medic.config does not read"


def test_the_runbook_is_where_the_functions_look(resources: dict[str, Any]) -> None:
    for name in FUNCTIONS:
        runbook = _env(resources, name).get("MEDIC_RUNBOOK")
        if runbook is not None:
            assert runbook == "/opt/lambda-latency.yaml", name
    # The runbook layer ships runbooks/ as-is, so its files land directly under /opt/.
    assert (ROOT / "runbooks" / "lambda-latency.yaml").is_file()


def test_medic_starts_in_dry_run(cfn: dict[str, Any]) -> None:
    assert cfn["Parameters"]["DryRun"]["Default"] == "true"
    assert cfn["Parameters"]["DryRun"]["AllowedValues"] == ["true", "false"]


# --------------------------------------------------------- least privilege


def test_no_write_action_on_every_resource(resources: dict[str, Any]) -> None:
    for role, statement in _role_statements(resources):
        if "*" in _as_list(statement["Resource"]):
            writes = [action for action in _actions(statement) if not _is_read_only(action)]
            assert not writes, f"{role} {statement.get('Sid')}: {writes} on Resource '*'"


def test_no_wildcard_actions_and_no_iam(resources: dict[str, Any]) -> None:
    for role, statement in _role_statements(resources):
        for action in _actions(statement):
            assert "*" not in action, f"{role}: {action}"
            assert not action.startswith("iam:"), f"{role}: {action}"
            assert action not in {"lambda:TagResource", "lambda:UntagResource"}, f"{role}: {action}"
        assert statement["Effect"] == "Allow"


def test_only_the_executor_changes_lambda_or_autoscaling(resources: dict[str, Any]) -> None:
    changing = re.compile(
        r"^(lambda:(?!Get|List)|application-autoscaling:(?!Describe))"  # anything but reads
    )
    granted: dict[str, set[str]] = {}
    for role, statement in _role_statements(resources):
        for action in _actions(statement):
            if changing.match(action):
                granted.setdefault(role, set()).add(action)
    assert granted == {
        "ExecutorFunctionRole": {
            "lambda:PutProvisionedConcurrencyConfig",
            "lambda:DeleteProvisionedConcurrencyConfig",
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:PutScalingPolicy",
        }
    }


def test_changes_are_confined_to_opted_in_functions_and_lambda_autoscaling(resources: dict[str, Any]) -> None:
    lambda_writes = {"lambda:PutProvisionedConcurrencyConfig", "lambda:DeleteProvisionedConcurrencyConfig"}
    autoscaling_writes = {"application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy"}
    seen = set()
    for statement in _statements(resources["ExecutorFunctionRole"]):
        actions = set(_actions(statement))
        if actions & lambda_writes:
            assert actions == lambda_writes, "keep the tag-conditioned statement free of other actions"
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/medic:managed": "true"}}
        if actions & autoscaling_writes:
            assert actions == autoscaling_writes
            assert statement["Condition"] == {
                "StringEquals": {
                    "application-autoscaling:service-namespace": "lambda",
                    "application-autoscaling:scalable-dimension": "lambda:function:ProvisionedConcurrency",
                }
            }
            assert "scalable-target/*" in json.dumps(statement["Resource"])
        seen |= actions
    assert lambda_writes | autoscaling_writes <= seen


def test_the_events_table_is_append_only(resources: dict[str, Any]) -> None:
    forbidden = {
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    }
    appenders = set()
    for role, statement in _role_statements(resources):
        if _mentions(statement["Resource"], "EventsTable"):
            assert not forbidden & set(_actions(statement)), f"{role} {statement.get('Sid')}"
            assert not _mentions(statement["Resource"], "PlansTable"), f"{role}: one statement per table"
            appenders.add(role)
    assert appenders == {f"{name}Role" for name in FUNCTIONS}


def test_secrets_are_read_by_arn_and_the_signing_secret_only_by_interactions(resources: dict[str, Any]) -> None:
    readers: dict[str, set[str]] = {}
    for role, statement in _role_statements(resources):
        if "secretsmanager:GetSecretValue" in _actions(statement):
            assert _actions(statement) == ["secretsmanager:GetSecretValue"], role
            for resource in _as_list(statement["Resource"]):
                readers.setdefault(resource["Ref"], set()).add(role)
    assert readers == {
        "SlackBotTokenSecretArn": {f"{name}Role" for name in FUNCTIONS},
        "SlackSigningSecretArn": {"InteractionsFunctionRole"},
    }


# ------------------------------------------------------------------ tables


@pytest.mark.parametrize("table", ["PlansTable", "EventsTable"])
def test_the_log_tables_are_recoverable_and_kept(resources: dict[str, Any], table: str) -> None:
    resource = resources[table]
    props = resource["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert "TimeToLiveSpecification" not in props
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_the_plans_table_indexes(resources: dict[str, Any]) -> None:
    indexes = {
        index["IndexName"]: [(key["AttributeName"], key["KeyType"]) for key in index["KeySchema"]]
        for index in resources["PlansTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "by_state": [("state", "HASH"), ("updated_at", "RANGE")],
        "by_target": [("target", "HASH"), ("created_at", "RANGE")],
    }
    keys = resources["EventsTable"]["Properties"]["KeySchema"]
    assert [(key["AttributeName"], key["KeyType"]) for key in keys] == [("plan_id", "HASH"), ("seq", "RANGE")]


# ------------------------------------------------------------------ queues


def test_the_executor_queue_outlasts_the_executor(resources: dict[str, Any]) -> None:
    queue = resources["ExecutorQueue"]["Properties"]
    timeout = resources["ExecutorFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 3
    assert _mentions(queue["RedrivePolicy"]["deadLetterTargetArn"], "ExecutorDLQ")
    assert queue["MessageRetentionPeriod"] > queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"]
    for name in ("ExecutorQueue", "ExecutorDLQ", "TriageDLQ"):
        assert resources[name]["Properties"]["SqsManagedSseEnabled"] is True, name
    for name in ("ExecutorDLQ", "TriageDLQ"):
        assert resources[name]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600, name


def test_the_executor_takes_one_plan_at_a_time_and_reports_failures(resources: dict[str, Any]) -> None:
    mappings = _of_type(resources, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 1
    mapping = next(iter(mappings.values()))["Properties"]
    assert mapping["FunctionName"] == {"Ref": "ExecutorFunction"}
    assert _mentions(mapping["EventSourceArn"], "ExecutorQueue")
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # ...and may poll only its own queue (no AWSLambdaSQSQueueExecutionRole, which covers every queue).
    role = resources["ExecutorFunctionRole"]["Properties"]
    assert not any("SQSQueueExecutionRole" in json.dumps(arn) for arn in role["ManagedPolicyArns"])
    for statement in _statements(resources["ExecutorFunctionRole"]):
        if "sqs:ReceiveMessage" in _actions(statement):
            assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": ["ExecutorQueue", "Arn"]}]


# ------------------------------------------------------------------ wiring


def test_alarm_state_changes_reach_triage_and_failures_reach_its_dlq(resources: dict[str, Any]) -> None:
    rules = {
        name: rule
        for name, rule in _of_type(resources, "AWS::Events::Rule").items()
        if "EventPattern" in rule["Properties"]
    }
    assert list(rules) == ["TriageFunctionAlarmStateChange"]
    props = rules["TriageFunctionAlarmStateChange"]["Properties"]
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["detail"]["state"]["value"] == ["ALARM"]
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["TriageFunction", "Arn"]}
    assert _mentions(target["DeadLetterConfig"]["Arn"], "TriageDLQ")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1

    invoke = resources["TriageFunctionEventInvokeConfig"]["Properties"]
    assert invoke["MaximumRetryAttempts"] == 2
    assert _mentions(invoke["DestinationConfig"]["OnFailure"]["Destination"], "TriageDLQ")

    (statement,) = resources["TriageDLQPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["TriageFunctionAlarmStateChange", "Arn"]
    }
    sends = [
        statement
        for statement in _statements(resources["TriageFunctionRole"])
        if "sqs:SendMessage" in _actions(statement) and _mentions(statement["Resource"], "TriageDLQ")
    ]
    assert sends, "the OnFailure destination needs sqs:SendMessage on TriageDLQ in the triage role"


def test_the_verifier_runs_every_minute(resources: dict[str, Any]) -> None:
    rule = resources["VerifierFunctionEveryMinute"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["VerifierFunction", "Arn"]}


def test_interactions_has_a_public_function_url(cfn: dict[str, Any], resources: dict[str, Any]) -> None:
    urls = _of_type(resources, "AWS::Lambda::Url")
    assert list(urls) == ["InteractionsFunctionUrl"]
    props = urls["InteractionsFunctionUrl"]["Properties"]
    assert props["TargetFunctionArn"] == {"Ref": "InteractionsFunction"}
    assert props["AuthType"] == "NONE"  # Slack signs requests itself; the function verifies the signature
    assert cfn["Outputs"]["InteractionsUrl"]["Value"] == {"Fn::GetAtt": ["InteractionsFunctionUrl", "FunctionUrl"]}


def test_medic_watches_itself(resources: dict[str, Any]) -> None:
    watched = set()
    for alarm in _of_type(resources, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        assert props["ComparisonOperator"] == "GreaterThanThreshold" and props["Threshold"] == 0
        (dimension,) = props["Dimensions"]
        watched.add((props["MetricName"], json.dumps(dimension["Value"])))
    expected = {(metric, json.dumps({"Ref": name})) for metric in ("Errors", "Throttles") for name in FUNCTIONS}
    expected |= {
        ("ApproximateNumberOfMessagesVisible", json.dumps({"Fn::GetAtt": [queue, "QueueName"]}))
        for queue in ("ExecutorDLQ", "TriageDLQ")
    }
    assert watched == expected


def test_outputs(cfn: dict[str, Any]) -> None:
    assert set(cfn["Outputs"]) >= {"InteractionsUrl", "PlansTableName", "EventsTableName", "ExecutorQueueUrl"}
