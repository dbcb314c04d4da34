"""template.yaml, checked on what would actually deploy: the CloudFormation aws-sam-translator makes of it.

The check itself (translate + cfn-lint) is scripts/check_template.py, loaded here from its file;
the tests below pin the safety properties cfn-lint cannot know about: least privilege, an append-only
log that survives mistakes, queues that outlast their consumer, and the wiring Medic's code relies on.

Least privilege is checked against the code, both ways: the executor may do what the registered actions declare
(`Action.permissions`) and nothing else outside Medic's own resources; triage may make the calls fact collection
makes (`FactCollector.permissions`, itself checked against the calls in medic/facts/) and nothing else.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from template_script import load_check_script

from medic.actions import registry
from medic.actions.base import Action
from medic.config import ENV_VARS
from medic.facts import FactCollector

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTIONS = ("TriageFunction", "InteractionsFunction", "ExecutorFunction", "VerifierFunction", "DigestFunction")
#: The functions that write the remediation log (and post to Slack); the digest writer only reads it.
LOG_WRITERS = ("TriageFunction", "InteractionsFunction", "ExecutorFunction", "VerifierFunction")

#: Actions that only read. A statement on Resource "*" may hold nothing else (but WRITES_WITHOUT_RESOURCE_TYPE).
READ_ONLY_PREFIXES = ("Get", "List", "Describe")
READ_ONLY_ACTIONS = frozenset({"cloudwatch:GetMetricData"})
#: Reads that are secrets in themselves: never on "*", whatever their verb.
SENSITIVE_READS = frozenset({"secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt"})
#: Writes AWS authorizes only against Resource "*" (no resource type in the Service Authorization Reference).
#: Allowed on "*" only in a statement of their own that carries a Condition; each says what confines it.
WRITES_WITHOUT_RESOURCE_TYPE = {
    "lambda:CreateEventSourceMapping": "no resource type; the lambda:FunctionArn condition confines it",
    "sns:Unsubscribe": "no resource type; aws:ResourceAccount confines it to this account's subscriptions",
}

#: The condition every Lambda write of the executor carries: the function's opt-in tag.
OPT_IN_CONDITION = {"StringEquals": {"aws:ResourceTag/medic:managed": "true"}}
#: Lambda writes that cannot carry the opt-in tag condition, and why. Each must carry a lambda:FunctionArn condition.
LAMBDA_WRITES_WITHOUT_OPT_IN_TAG = {
    "lambda:UpdateEventSourceMapping": (
        "on an event source mapping aws:ResourceTag reads the mapping's own tags, not its function's, and the "
        "mappings Medic caps are their owners' (untagged); Medic's guardrails check the function's opt-in tag"
    ),
    "lambda:CreateEventSourceMapping": "no resource type at all, so no resource tag for IAM to test",
    "lambda:DeleteEventSourceMapping": "the buffer's own mapping (rollback); same reason as UpdateEventSourceMapping",
}
#: Writes outside Medic's own resources that must stay on these resources only (ARN suffix).
CONFINED_WRITES = {
    "sqs:CreateQueue": ":medic-buffer-*",
    "sqs:SetQueueAttributes": ":medic-buffer-*",
    "sqs:TagQueue": ":medic-buffer-*",
    "sqs:DeleteQueue": ":medic-buffer-*",
    "events:PutTargets": ":rule/*",
    "servicequotas:RequestServiceQuotaIncrease": ":lambda/L-B99A9384",
}

#: What fact collection needs beyond the calls facts.py makes, and why.
IMPLIED_FACT_PERMISSIONS = {
    "lambda:ListTags": "GetFunction returns the function's Tags only to callers allowed lambda:ListTags",
}
#: `AwsClients` properties → boto3 service name; boto3 service name → IAM prefix (where they differ).
CLIENT_PROPERTIES = {
    "lambda_": "lambda",
    "autoscaling": "application-autoscaling",
    "cloudwatch": "cloudwatch",
    "dynamodb": "dynamodb",
    "sqs": "sqs",
    "secrets": "secretsmanager",
}
IAM_PREFIXES = {"resourcegroupstaggingapi": "tag", "service-quotas": "servicequotas"}

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
        *("MEDIC_ACCOUNT_ID", "MEDIC_MEMBER_READ_ROLE_NAME"),  # alarms of other accounts (organizations)
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
        # ChatOps: the approver user group, the workspace and app the requests must name, the two-person cost rule.
        "MEDIC_APPROVER_GROUP",
        "MEDIC_SLACK_TEAM_ID",
        "MEDIC_SLACK_APP_ID",
        "MEDIC_TWO_PERSON_COST_USD",
    },
    "ExecutorFunction": {
        "MEDIC_PLANS_TABLE",
        "MEDIC_EVENTS_TABLE",
        "MEDIC_DRY_RUN",
        "MEDIC_SLACK_CHANNEL",
        "MEDIC_SLACK_BOT_TOKEN_SECRET_ARN",
        "MEDIC_OPT_IN_TAG",
        "MEDIC_VERIFY_AFTER_S",
        "MEDIC_EXECUTOR_LEASE_S",
        "MEDIC_RUNBOOK",
        "MEDIC_EXECUTOR_QUEUE_URL",
        "MEDIC_ACTIONS_ROLE_ARN",
        *("MEDIC_ACCOUNT_ID", "MEDIC_MEMBER_READ_ROLE_NAME", "MEDIC_MEMBER_ROLE_NAME"),
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
        *("MEDIC_ACCOUNT_ID", "MEDIC_MEMBER_READ_ROLE_NAME"),
    },
    "DigestFunction": {  # the globals (it uses the tables' names) and its bucket
        "MEDIC_PLANS_TABLE",
        "MEDIC_EVENTS_TABLE",
        "MEDIC_DRY_RUN",
        "MEDIC_SLACK_CHANNEL",
        "MEDIC_SLACK_BOT_TOKEN_SECRET_ARN",
        "MEDIC_DIGEST_BUCKET",
    },
}


@pytest.fixture(scope="module")
def check_template() -> ModuleType:
    return load_check_script()


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


#: The condition under which Medic reaches into the organization's other accounts (OrganizationId set).
ORGANIZATION = "HasOrganization"
NO_VALUE = {"Ref": "AWS::NoValue"}


def _resolved(items: Any, *, organization: bool) -> Iterator[Any]:
    """The items of a list as CloudFormation deploys them with OrganizationId set (or not): `Fn::If` on
    HasOrganization takes its branch, AWS::NoValue drops out. Any other condition would be a new case to think about."""
    for item in _as_list(items):
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            condition, when_true, when_false = item["Fn::If"]
            assert condition == ORGANIZATION, f"unexpected condition {condition} in a policy"
            chosen = when_true if organization else when_false
        else:
            chosen = item
        if chosen != NO_VALUE:
            yield chosen


def _statements(role: dict[str, Any], *, organization: bool = True) -> Iterator[dict[str, Any]]:
    """The role's policy statements; by default with OrganizationId set (the most any deployment grants)."""
    for policy in _resolved(role["Properties"].get("Policies", []), organization=organization):
        yield from _resolved(policy["PolicyDocument"]["Statement"], organization=organization)


def _role_statements(resources: dict[str, Any], *, organization: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in _of_type(resources, "AWS::IAM::Role").items():
        for statement in _statements(role, organization=organization):
            yield name, statement


def _assumers(resources: dict[str, Any]) -> dict[str, set[str]]:
    """Role name (as the template writes it) → the roles that may assume it."""
    assumed: dict[str, set[str]] = {}
    for role, statement in _role_statements(resources):
        if "sts:AssumeRole" in _actions(statement):
            for arn in _arns(statement):
                assumed.setdefault(arn.rsplit(":role/", 1)[-1], set()).add(role)
    return assumed


def _assumes(statement: dict[str, Any], role_parameter: str) -> bool:
    """Whether the statement lets its role assume the member accounts' role named by the parameter `role_parameter`."""
    return "sts:AssumeRole" in _actions(statement) and any(
        arn.endswith(f":role/${{{role_parameter}}}") for arn in _arns(statement)
    )


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


def _is_write(action: str) -> bool:
    return not _is_read_only(action)


def _matches(pattern: str, action: str) -> bool:
    """Whether an IAM Action pattern grants `action` (wildcards included; IAM action names ignore case)."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _granting(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if s["Effect"] == "Allow" and any(_matches(p, action) for p in _actions(s))]


def _arns(statement: dict[str, Any]) -> list[str]:
    """The statement's resources as text (the string inside an Fn::Sub)."""
    arns = []
    for resource in _as_list(statement["Resource"]):
        sub = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
        arns.append(str(sub[0] if isinstance(sub, list) else sub) if sub is not None else json.dumps(resource))
    return arns


def _on_own_resources(statement: dict[str, Any], cfn: dict[str, Any]) -> bool:
    """Whether every resource of the statement is one of the stack's resources or a parameter (a Slack secret)."""
    own = [*cfn["Resources"], *cfn.get("Parameters", {})]
    return all(any(_mentions(resource, name) for name in own) for resource in _as_list(statement["Resource"]))


def _declared_by_actions() -> dict[str, set[str]]:
    """IAM action (lower case) → the registered action kinds that declare it."""
    declared: dict[str, set[str]] = {}
    for kind, action in registry().items():
        for permission in action.permissions:
            declared.setdefault(permission.lower(), set()).add(kind)
    return declared


def _api_names(service: str) -> dict[str, str]:
    """boto3 method name → API operation name, from the service model botocore ships (no network)."""
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(operation): operation for operation in model.operation_names}


def _iam_actions_called(path: Path) -> set[str]:
    """The IAM actions of the AWS calls a module makes through `self.clients` or a `clients` argument (aliases and
    paginators included)."""

    def is_self_clients(node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id == "clients"
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "clients"
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        )

    def service_of(node: ast.expr, aliases: dict[str, str]) -> str | None:
        if isinstance(node, ast.Name):
            return aliases.get(node.id)
        if isinstance(node, ast.Attribute) and is_self_clients(node.value):
            return CLIENT_PROPERTIES.get(node.attr)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "client"
            and is_self_clients(node.func.value)
        ):
            return str(ast.literal_eval(node.args[0]))
        return None

    called: set[str] = set()
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(function, ast.FunctionDef):
            continue
        aliases: dict[str, str] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                service = service_of(node.value, aliases)
                if service:
                    aliases[node.targets[0].id] = service
        for node in ast.walk(function):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            service = service_of(node.func.value, aliases)
            if service is None:
                continue
            method = node.func.attr
            if method == "get_paginator":
                method = str(ast.literal_eval(node.args[0]))
            api = _api_names(service).get(method)
            assert api, f"{path.name}:{node.lineno}: {service}.{method} is not an API call botocore knows"
            called.add(f"{IAM_PREFIXES.get(service, service)}:{api}")
    return called


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


def test_checkov_findings_are_justified_inline(check_template: ModuleType) -> None:
    source = check_template.load_template(TEMPLATE)
    skips = {
        name: resource["Metadata"]["checkov"]["skip"]
        for name, resource in source["Resources"].items()
        if "checkov" in (resource.get("Metadata") or {})
    }
    assert skips, "template.yaml justifies no checkov finding: did the Metadata move?"
    for name, entries in skips.items():
        for entry in entries:
            assert re.fullmatch(r"CKV_AWS_\d+", entry["id"]), name
            assert len(entry["comment"]) >= 40, f"{name} {entry['id']}: say why it does not apply"


def test_sam_generated_resources_carry_their_sam_resources_checkov_skips(
    check_template: ModuleType, cfn: dict[str, Any]
) -> None:
    source = check_template.load_template(TEMPLATE)
    scanned = check_template.extend_checkov_skips(cfn, source)["Resources"]
    ids = {name: {s["id"] for s in (r.get("Metadata") or {}).get("checkov", {}).get("skip", [])}
           for name, r in scanned.items()}  # fmt: skip
    assert "CKV_AWS_258" in ids["InteractionsFunctionUrl"]  # generated by SAM from InteractionsFunction
    assert ids["TriageFunctionRole"] == ids["TriageFunction"]
    assert ids["TriageDLQPolicy"] == set()  # declared in the template: nothing inherited from TriageDLQ
    assert ids["ExecutorQueueEventSource"] == set()
    assert "Metadata" not in cfn["Resources"]["InteractionsFunctionUrl"]  # the translation itself is left as is


def test_a_template_without_the_sam_transform_is_linted_as_it_is(check_template: ModuleType, tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties: {TopicName: medic-test}\n", encoding="utf-8"
    )
    result = check_template.check(plain)
    assert result.ok and result.cloudformation == {"Resources": {"Topic": {
        "Type": "AWS::SNS::Topic", "Properties": {"TopicName": "medic-test"}}}}  # fmt: skip
    assert check_template.main([str(plain), str(plain)]) == 0
    assert check_template.main([str(plain), "--checkov", str(tmp_path / "no-checkov")]) == 2


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
            writes = [action for action in _actions(statement) if _is_write(action)]
            if writes:
                # Only a write AWS authorizes on "*" alone, in a statement of its own, confined by a condition.
                assert set(writes) <= set(WRITES_WITHOUT_RESOURCE_TYPE), (
                    f"{role} {statement.get('Sid')}: {writes} on Resource '*'"
                )
                assert _actions(statement) == writes, f"{role} {statement.get('Sid')}: keep it a statement of its own"
                assert statement.get("Condition"), f"{role} {statement.get('Sid')}: {writes} on '*' needs a Condition"


#: The one IAM action any role of Medic's holds: Application Auto Scaling creates its Lambda service-linked role with
#: the permissions of the first caller of RegisterScalableTarget in an account (Application Auto Scaling user guide,
#: "Service-linked roles": the role's ARN as the resource, its service principal as iam:AWSServiceName).
AUTOSCALING_SERVICE_LINKED_ROLE = {
    "Sid": "CreateAutoscalingServiceLinkedRole",
    "Effect": "Allow",
    "Action": "iam:CreateServiceLinkedRole",
    "Resource": {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/"
        "lambda.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency"
    },
    "Condition": {"StringEquals": {"iam:AWSServiceName": "lambda.application-autoscaling.amazonaws.com"}},
}


def test_no_wildcard_actions_and_no_iam(resources: dict[str, Any]) -> None:
    for role, statement in _role_statements(resources):
        for action in _actions(statement):
            assert "*" not in action, f"{role}: {action}"
            if action.startswith("iam:"):
                # Nothing of IAM but Application Auto Scaling's service-linked role, for the actions role.
                assert (role, statement) == ("ActionsRole", AUTOSCALING_SERVICE_LINKED_ROLE), f"{role}: {action}"
            assert action not in {"lambda:TagResource", "lambda:UntagResource"}, f"{role}: {action}"
        assert statement["Effect"] == "Allow"


def test_the_actions_role_may_do_everything_the_actions_declare(resources: dict[str, Any]) -> None:
    statements = list(_statements(resources["ActionsRole"]))
    declared = [(kind, permission) for kind, action in registry().items() for permission in action.permissions]
    assert declared
    missing = [f"{kind}: {permission}" for kind, permission in declared if not _granting(statements, permission)]
    assert not missing, "not granted to ActionsRole: " + ", ".join(missing)


def test_only_the_executor_may_assume_the_actions_role_with_its_source_identity(resources: dict[str, Any]) -> None:
    trust = resources["ActionsRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"AWS": {"Fn::GetAtt": ["ExecutorFunctionRole", "Arn"]}},
                      "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]}]  # fmt: skip
    assert _assumers(resources)["${AWS::StackName}-actions"] == {"ExecutorFunctionRole"}
    assert _env(resources, "ExecutorFunction")["MEDIC_ACTIONS_ROLE_ARN"] == {"Fn::GetAtt": ["ActionsRole", "Arn"]}
    changing = [
        a
        for st in _statements(resources["ExecutorFunctionRole"])
        for a in _actions(st)
        if a.startswith(("lambda:Put", "lambda:Update", "lambda:Delete", "lambda:Create", "lambda:Publish"))
    ]
    assert changing == [], "the executor's own role changes nothing: it assumes ActionsRole per plan"


def test_the_executor_changes_nothing_outside_medic_that_no_action_declares(
    cfn: dict[str, Any], resources: dict[str, Any]
) -> None:
    from medic.facts import FactCollector

    declared = {**_declared_by_actions(), "sts:assumerole": {"session"}, "sts:setsourceidentity": {"session"}}
    for statement in [*_statements(resources["ExecutorFunctionRole"]), *_statements(resources["ActionsRole"])]:
        if _on_own_resources(statement, cfn):
            continue  # the plans and events tables, the executor queue, the Slack token
        facts = {a.lower() for a in FactCollector.permissions}  # read-only queries (StartQuery), for re-proposals
        undeclared = [a for a in _actions(statement)
                      if _is_write(a) and a.lower() not in declared and a.lower() not in facts]  # fmt: skip
        assert not undeclared, f"{statement.get('Sid')}: {undeclared} are declared by no registered action"


def test_the_executor_may_collect_every_fact_to_re_propose_after_drift(resources: dict[str, Any]) -> None:
    from medic.facts import FactCollector

    statements = list(_statements(resources["ExecutorFunctionRole"]))
    assert [a for a in FactCollector.permissions if not _granting(statements, a)] == []


#: The one plans-table item interactions may put (`/medic pause|resume`): the kill switch flag, never a plan.
KILL_SWITCH_ONLY = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["control#kill-switch"]}}


def test_only_triage_and_the_executor_create_plans(resources: dict[str, Any]) -> None:
    creators, flaggers, promoters = set(), set(), set()
    for role, statement in _role_statements(resources):
        if _mentions(statement["Resource"], "PlansTable") and "dynamodb:PutItem" in _actions(statement):
            keys = statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            if keys == ["promotion#*"]:  # a promotion item (medic.promotions), never a plan
                promoters.add(role)
            elif statement.get("Condition") == KILL_SWITCH_ONLY:
                assert _actions(statement) == ["dynamodb:PutItem"], f"{role}: keep the flag's statement to PutItem"
                flaggers.add(role)
            else:
                creators.add(role)
    assert creators == {"TriageFunctionRole", "ExecutorFunctionRole"}  # interactions and verifier only update
    # Changed with issue 5 (ChatOps): /medic pause and resume flip the kill switch from Slack, so interactions may
    # put that one item (dynamodb:LeadingKeys), which holds a flag, not a plan.
    assert flaggers == {"InteractionsFunctionRole"}
    # Graduated autonomy: the verifier proposes a promotion, the verifier and the executor demote one (a put of the
    # promotion item, conditioned on its state), on promotion#… items only.
    assert promoters == {"VerifierFunctionRole", "ExecutorFunctionRole"}


#: The plans-table attribute that binds a plan to its approval (medic.ledger.binding): only triage, which makes plans,
#: writes it (the executor too, on the re-proposals it makes after drift). No other role may name it in a write.
CONTENT_HASH = "approval_hash"
#: What the roles that move a plan (decide, apply, verify) may name in an UpdateItem, as medic.ledger.store writes it:
#: the state, target and times, the doc, the executor's lease, the approvers set (interactions), the chains' head
#: anchors.
MOVE_ATTRIBUTES = {
    "InteractionsFunctionRole": {"plan_id", "state", "target", "created_at", "updated_at", "doc", "lease_until",
                                 "approvals", "head_seq", "head_hash", "head_at"},
    "ExecutorFunctionRole": {"plan_id", "state", "target", "created_at", "updated_at", "doc", "lease_until",
                             "head_seq", "head_hash", "head_at"},
    "VerifierFunctionRole": {"plan_id", "state", "target", "created_at", "updated_at", "doc", "lease_until",
                             "head_seq", "head_hash", "head_at"},
}  # fmt: skip
#: The items each role may put in the plans table (dynamodb:LeadingKeys): triage its plans, rejected inputs and claims;
#: the executor its re-proposals and their claims; interactions the kill switch flag only; the verifier nothing.
PUT_KEYS = {
    "TriageFunctionRole": ["p-*", "rejected-*", "open#*", "head#*"],
    "ExecutorFunctionRole": ["p-*-r*", "open#*"],
    "InteractionsFunctionRole": ["control#kill-switch"],
}
#: ReturnValues that return only what the write named (ALL_OLD / ALL_NEW would return the whole item).
NARROW_RETURN_VALUES = {"StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"]}}


def _plans_table_writes(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], set[str]]]:
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
              "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"}  # fmt: skip
    for role, statement in _role_statements(resources):
        granted = writes & set(_actions(statement))
        if granted and _mentions(statement["Resource"], "PlansTable"):
            yield role, statement, granted


def test_no_role_but_triage_writes_a_plans_approval_hash_or_a_control_flag_it_does_not_own(
    resources: dict[str, Any],
) -> None:
    """Issue 18: a role that moves plans (interactions, executor, verifier) may not rewrite the hash a plan is bound
    to: its UpdateItem names only MOVE_ATTRIBUTES (dynamodb:Attributes), on plans and head anchors only
    (dynamodb:LeadingKeys), and returns no whole item; every PutItem of every role is confined to its own items."""
    seen: dict[str, set[str]] = {}
    for role, statement, granted in _plans_table_writes(resources):
        condition = statement.get("Condition", {})
        keys = condition.get("ForAllValues:StringLike", condition.get("ForAllValues:StringEquals", {}))
        assert "dynamodb:LeadingKeys" in keys, f"{role} {statement.get('Sid')}: writes any item of the plans table"
        assert "dynamodb:DeleteItem" not in granted and "dynamodb:BatchWriteItem" not in granted, role
        if keys["dynamodb:LeadingKeys"] != ["promotion#*"]:
            seen.setdefault(role, set()).update(granted)
        else:  # medic.promotions: its own items, never a plan's fields
            attributes = set(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
            assert not attributes & {CONTENT_HASH, "doc", "state", "head_seq", "head_hash"}, f"{role}: {attributes}"
            assert {k: v for k, v in condition.items() if k.startswith("StringEqualsIfExists")} == NARROW_RETURN_VALUES
            continue
        if granted == {"dynamodb:PutItem"}:
            assert keys["dynamodb:LeadingKeys"] == PUT_KEYS[role], f"{role} {statement.get('Sid')}"
            continue
        if role == "TriageFunctionRole":  # the writer of plans: content and hash
            assert granted == {"dynamodb:PutItem", "dynamodb:UpdateItem"}
            assert keys["dynamodb:LeadingKeys"] == PUT_KEYS[role]
            continue
        assert granted == {"dynamodb:UpdateItem"}, f"{role}: moving a plan is an UpdateItem, never a PutItem"
        assert condition["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": ["p-*", "head#*"]}
        attributes = set(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
        assert CONTENT_HASH not in attributes
        assert attributes == MOVE_ATTRIBUTES[role], f"{role}: exactly what medic.ledger.store writes"
        assert {k: v for k, v in condition.items() if k.startswith("StringEqualsIfExists")} == NARROW_RETURN_VALUES
    assert set(seen) == {"TriageFunctionRole", "InteractionsFunctionRole", "ExecutorFunctionRole",
                         "VerifierFunctionRole"}  # fmt: skip
    assert "dynamodb:PutItem" not in seen["VerifierFunctionRole"]


def test_triage_may_collect_every_fact(resources: dict[str, Any]) -> None:
    statements = list(_statements(resources["TriageFunctionRole"]))
    assert FactCollector.permissions
    missing = [permission for permission in FactCollector.permissions if not _granting(statements, permission)]
    assert not missing, f"fact collection needs {missing}, not granted to TriageFunctionRole"


#: What triage (and the executor, posting a re-proposal's card) reads beyond fact collection, and why.
CARD_PERMISSIONS = {
    "cloudwatch:GetMetricWidgetImage": "the alarm's metric graph, uploaded into the card's thread (issue 5)",
}


def test_triage_reads_nothing_beyond_fact_collection(cfn: dict[str, Any], resources: dict[str, Any]) -> None:
    needed = {permission.lower() for permission in (*FactCollector.permissions, *CARD_PERMISSIONS)}
    for statement in _statements(resources["TriageFunctionRole"]):
        if _on_own_resources(statement, cfn):
            continue  # the plans and events tables, the executor queue and DLQ, the Slack token
        if _assumes(statement, "MemberReadRoleName"):
            continue  # the same reads in a member account, through its read-only role (test_member_template.py)
        extra = [action for action in _actions(statement) if action.lower() not in needed]
        assert not extra, f"{statement.get('Sid')}: {extra} are not in FactCollector.permissions"


def test_fact_permissions_are_the_calls_facts_py_makes() -> None:
    called = set().union(*(_iam_actions_called(path) for path in (ROOT / "shared" / "medic" / "facts").glob("*.py")))
    assert called, "no AWS calls found in medic/facts: the scan is broken"
    declared = {permission.lower() for permission in FactCollector.permissions}
    missing = sorted(action for action in called if action.lower() not in declared)
    assert not missing, f"facts.py calls {missing}: add them to FactCollector.permissions"
    needed = {action.lower() for action in (*called, *IMPLIED_FACT_PERMISSIONS)}
    stale = [permission for permission in FactCollector.permissions if permission.lower() not in needed]
    assert not stale, f"FactCollector.permissions lists {stale}, which facts.py no longer calls"
    assert set(IMPLIED_FACT_PERMISSIONS) <= set(FactCollector.permissions)


def test_every_lambda_write_is_on_opted_in_functions_or_a_reasoned_exception(resources: dict[str, Any]) -> None:
    tagged, excepted = set(), set()
    for statement in _statements(resources["ActionsRole"]):
        writes = {a for a in _actions(statement) if a.startswith("lambda:") and _is_write(a)}
        if not writes:
            continue
        if statement.get("Condition") == OPT_IN_CONDITION:
            assert all(arn.endswith(":function:*") for arn in _arns(statement)), statement.get("Sid")
            tagged |= writes
        else:
            unexplained = writes - set(LAMBDA_WRITES_WITHOUT_OPT_IN_TAG)
            assert not unexplained, f"{statement.get('Sid')}: {sorted(unexplained)} lack the opt-in tag condition"
            assert "lambda:FunctionArn" in json.dumps(statement.get("Condition")), statement.get("Sid")
            excepted |= writes
    declared = {p for action in registry().values() for p in action.permissions if p.startswith("lambda:")}
    assert tagged | excepted == {p for p in declared if _is_write(p)}
    assert excepted == set(LAMBDA_WRITES_WITHOUT_OPT_IN_TAG), "keep the exceptions to what is actually granted"


def test_only_the_executor_changes_lambda_or_autoscaling(resources: dict[str, Any]) -> None:
    changing = re.compile(
        r"^(lambda:(?!Get|List)|application-autoscaling:(?!Describe))"  # anything but reads
    )
    granted: dict[str, set[str]] = {}
    for role, statement in _role_statements(resources):
        for action in _actions(statement):
            if changing.match(action):
                granted.setdefault(role, set()).add(action)
    declared = {p for action in registry().values() for p in action.permissions if changing.match(p)}
    assert granted == {"ActionsRole": declared}


def test_the_first_scalable_target_in_an_account_may_create_autoscalings_service_linked_role(
    resources: dict[str, Any],
) -> None:
    """Without it, the first autoscaling or pre-warm change in an account fails: RegisterScalableTarget creates the
    role with the caller's permissions and is refused (AccessDeniedException on iam:CreateServiceLinkedRole)."""
    statements = list(_statements(resources["ActionsRole"]))
    assert _granting(statements, "iam:CreateServiceLinkedRole") == [AUTOSCALING_SERVICE_LINKED_ROLE]
    registering = {kind for kind, action in registry().items()
                   if "application-autoscaling:RegisterScalableTarget" in action.permissions}  # fmt: skip
    assert registering == {"set_autoscaling_bounds", "schedule_prewarm"}
    for kind in registering:
        assert "iam:CreateServiceLinkedRole" in registry()[kind].permissions, kind
    assert {kind for kind, a in registry().items() if "iam:CreateServiceLinkedRole" in a.permissions} == registering


def test_autoscaling_changes_are_confined_to_lambda_provisioned_concurrency(resources: dict[str, Any]) -> None:
    seen = set()
    for statement in _statements(resources["ActionsRole"]):
        writes = {a for a in _actions(statement) if a.startswith("application-autoscaling:") and _is_write(a)}
        if writes:
            assert set(_actions(statement)) == writes, "keep the conditioned statement free of other actions"
            assert statement["Condition"] == {
                "StringEquals": {
                    "application-autoscaling:service-namespace": "lambda",
                    "application-autoscaling:scalable-dimension": "lambda:function:ProvisionedConcurrency",
                }
            }
            assert all(arn.endswith(":scalable-target/*") for arn in _arns(statement))
            seen |= writes
    declared = {p for a in registry().values() for p in a.permissions if p.startswith("application-autoscaling:")}
    assert seen == {p for p in declared if _is_write(p)}


@pytest.mark.parametrize(("action", "suffix"), sorted(CONFINED_WRITES.items()))
def test_buffer_rule_and_quota_changes_are_confined(resources: dict[str, Any], action: str, suffix: str) -> None:
    statements = _granting(list(_statements(resources["ActionsRole"])), action)
    assert statements, f"{action} is not granted"
    for statement in statements:
        assert all(arn.endswith(suffix) for arn in _arns(statement)), f"{action} on {_arns(statement)}"
    if action == "events:PutTargets":
        (statement,) = statements
        condition = statement["Condition"]
        targets = condition["ForAllValues:ArnLike"]["events:TargetArn"]
        target_arns = _arns({"Resource": targets})
        assert len(target_arns) == 2, target_arns  # the function a rule invoked, or its buffer queue
        assert any(arn.endswith(":function:*") for arn in target_arns), target_arns
        assert any(arn.endswith(":medic-buffer-*") for arn in target_arns), target_arns
        assert condition["Null"] == {"events:TargetArn": "false"}  # ForAllValues holds on a missing key


def test_each_subscription_the_buffer_may_make_pairs_its_protocol_with_its_endpoint(resources: dict[str, Any]) -> None:
    """sqs only to a buffer queue, lambda only to a function (rollback); never one statement for both, which would let
    a lambda subscription point anywhere a queue may (and the other way round)."""
    statements = _granting(list(_statements(resources["ActionsRole"])), "sns:Subscribe")
    pairs = {}
    for statement in statements:
        assert _actions(statement) == ["sns:Subscribe"], statement.get("Sid")
        protocol = statement["Condition"]["StringEquals"]["sns:Protocol"]
        endpoints = _arns({"Resource": statement["Condition"]["StringLike"]["sns:Endpoint"]})
        assert isinstance(protocol, str) and len(endpoints) == 1, statement.get("Sid")
        pairs[protocol] = endpoints[0]
        assert all(arn.endswith(":sns:${AWS::Region}:${AWS::AccountId}:*") for arn in _arns(statement))
    assert pairs == {
        "sqs": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:medic-buffer-*",
        "lambda": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*",
    }


def test_buffer_queues_are_created_tagged_and_only_tagged_ones_are_changed(resources: dict[str, Any]) -> None:
    statements = list(_statements(resources["ActionsRole"]))
    for action in ("sqs:CreateQueue", "sqs:TagQueue"):
        for statement in _granting(statements, action):
            assert statement["Condition"] == {
                "StringEquals": {"aws:RequestTag/medic:created-by": "medic"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["medic:created-by"]},
            }, action
    for action in ("sqs:SetQueueAttributes", "sqs:DeleteQueue"):
        for statement in _granting(statements, action):
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/medic:created-by": "medic"}}, action


#: Writes whose content IAM cannot narrow (no condition key on the configuration's fields, a queue's attributes or
#: policy, the topic a queue is subscribed to): each is checked on the client before it is sent.
CHECKED_IN_CODE = {
    "lambda:UpdateFunctionConfiguration": ("lambda", "UpdateFunctionConfiguration"),
    "sqs:SetQueueAttributes": ("sqs", "SetQueueAttributes"),
    "sqs:CreateQueue": ("sqs", "CreateQueue"),
    "sns:Subscribe": ("sns", "Subscribe"),
}


def test_what_iam_cannot_narrow_the_actions_check_before_a_request_is_sent() -> None:
    from medic.actions.request_checks import CHECKS, CONFIGURATION_FIELDS

    declared = _declared_by_actions()
    for permission, operation in CHECKED_IN_CODE.items():
        assert permission.lower() in declared, f"{permission}: declared by no action any more?"
        assert operation in CHECKS, f"{permission} is granted and nothing checks what its requests carry"
    assert {"FunctionName", "MemorySize"} == CONFIGURATION_FIELDS, "set_memory owns MemorySize, nothing else"
    assert declared["lambda:updatefunctionconfiguration"] == {"set_memory"}


#: The chains (events-table partition keys) each function appends records to: tests/integration/test_plan_writers.py
#: runs a whole remediation and checks the code appends to these and the template allows no other.
LOG_CHAINS = {
    "TriageFunction": ["p-*", "rejected-*"],
    "InteractionsFunction": ["p-*", "promotion#*", "refused#*", "control#kill-switch"],
    "ExecutorFunction": ["p-*", "promotion#*"],
    "VerifierFunction": ["p-*", "promotion#*"],
}


def test_each_function_appends_to_its_own_chains_of_the_log_only(resources: dict[str, Any]) -> None:
    for function, chains in LOG_CHAINS.items():
        statements = [s for s in _statements(resources[f"{function}Role"]) if _mentions(s["Resource"], "EventsTable")]
        [append] = _granting(statements, "dynamodb:PutItem")
        assert _actions(append) == ["dynamodb:PutItem"], function
        assert append["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": chains}}, function


def test_the_slack_workspace_and_app_must_be_given(cfn: dict[str, Any]) -> None:
    for name, prefix in (("SlackTeamId", "T"), ("SlackAppId", "A")):
        parameter = cfn["Parameters"][name]
        assert "Default" not in parameter, f"{name} is required: its check is never off"
        pattern = re.compile(parameter["AllowedPattern"])
        assert pattern.fullmatch(f"{prefix}0MEDIC") and not pattern.fullmatch(""), name
        assert "docs/slack.md" in parameter["Description"], f"{name} says where to find it"


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
            if "dynamodb:PutItem" in _actions(statement):
                appenders.add(role)
    assert appenders == {f"{name}Role" for name in LOG_WRITERS}


def test_secrets_are_read_by_arn_and_the_signing_secret_only_by_interactions(resources: dict[str, Any]) -> None:
    readers: dict[str, set[str]] = {}
    for role, statement in _role_statements(resources):
        if "secretsmanager:GetSecretValue" in _actions(statement):
            assert _actions(statement) == ["secretsmanager:GetSecretValue"], role
            for resource in _as_list(statement["Resource"]):
                readers.setdefault(resource["Ref"], set()).add(role)
    assert readers == {
        "SlackBotTokenSecretArn": {f"{name}Role" for name in LOG_WRITERS},  # the digest writer posts nothing
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
    }
    keys = resources["EventsTable"]["Properties"]["KeySchema"]
    assert [(key["AttributeName"], key["KeyType"]) for key in keys] == [("plan_id", "HASH"), ("seq", "RANGE")]


def _indexes_queried(path: Path) -> set[str]:
    """The index names a module passes to DynamoDB: `IndexName="…"` or `{"IndexName": "…"}`."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        pairs = [(node.arg, node.value)] if isinstance(node, ast.keyword) else []
        if isinstance(node, ast.Dict):
            pairs = [(key.value, value) for key, value in zip(node.keys, node.values, strict=True)
                     if isinstance(key, ast.Constant)]  # fmt: skip
        names |= {value.value for name, value in pairs if name == "IndexName" and isinstance(value, ast.Constant)}
    return names


def test_the_plans_table_deploys_only_the_indexes_the_code_queries(resources: dict[str, Any]) -> None:
    """Every write of a plan is copied into each index: one nobody queries only costs (issue 20 removed by_target,
    which no code ever queried), and a query of an index the table lacks would fail in AWS only."""
    deployed = {index["IndexName"] for index in resources["PlansTable"]["Properties"]["GlobalSecondaryIndexes"]}
    queried = set().union(*(_indexes_queried(path) for path in (ROOT / "shared" / "medic").rglob("*.py")))
    assert queried == deployed


def _indexes_selected(path: Path) -> set[str]:
    """The index names a module's PartiQL statements read: `FROM "<table>"."<index>"`."""
    strings = [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]  # fmt: skip
    return {name for text in strings for name in re.findall(r'^"\."(\w+)" WHERE "state" IN', text)}


#: The roles whose code reads the safety controls (medic.safety): triage and the executor decide, `/medic status` tells.
CONTROL_READERS = {"TriageFunctionRole", "ExecutorFunctionRole", "InteractionsFunctionRole"}


def test_partiql_selects_only_on_the_indexes_the_code_selects_from(resources: dict[str, Any]) -> None:
    """The safety controls read several states in one PartiQL SELECT on by_state (medic.ledger.plan_reads):
    PartiQLSelect is granted on that index alone (a SELECT on the table could scan it), to the roles that read the
    controls."""
    deployed = {index["IndexName"] for index in resources["PlansTable"]["Properties"]["GlobalSecondaryIndexes"]}
    selected = set().union(*(_indexes_selected(path) for path in (ROOT / "shared" / "medic").rglob("*.py")))
    assert selected == {"by_state"} and selected <= deployed
    granted: dict[str, set[str]] = {}
    for role, statement in _role_statements(resources):
        if any(action.startswith("dynamodb:PartiQL") for action in _actions(statement)):
            assert _actions(statement) == ["dynamodb:PartiQLSelect"], f"{role}: PartiQL reads only"
            granted.setdefault(role, set()).update(
                json.dumps(r, sort_keys=True) for r in _as_list(statement["Resource"])
            )
    index_arns = {json.dumps({"Fn::Sub": f"${{PlansTable.Arn}}/index/{name}"}) for name in selected}
    assert granted == dict.fromkeys(CONTROL_READERS, index_arns)


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


def test_the_executor_lease_covers_the_executor_and_expires_before_a_redelivery(resources: dict[str, Any]) -> None:
    """A duplicate message waits while a live executor applies (the lease ≥ its timeout); a redelivery after a
    crash comes after the visibility timeout, when the dead executor's lease has expired (lease < visibility)."""
    executor = resources["ExecutorFunction"]["Properties"]
    lease = int(executor["Environment"]["Variables"]["MEDIC_EXECUTOR_LEASE_S"])
    assert executor["Timeout"] <= lease < resources["ExecutorQueue"]["Properties"]["VisibilityTimeout"]
    waits = int(executor["Environment"]["Variables"].get("MEDIC_PC_READY_TIMEOUT_S", 600))
    assert waits < lease, "an apply that waits for READY still ends inside its lease"
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


def test_the_digest_writer_runs_every_hour_on_its_bucket(resources: dict[str, Any]) -> None:
    rule = resources["DigestFunctionEveryHour"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["DigestFunction", "Arn"]}
    assert _env(resources, "DigestFunction")["MEDIC_DIGEST_BUCKET"] == {"Ref": "DigestBucket"}


def test_the_verifier_runs_every_minute(resources: dict[str, Any]) -> None:
    rule = resources["VerifierFunctionEveryMinute"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["VerifierFunction", "Arn"]}


def test_the_verifier_reads_back_every_fix_a_template_can_hold_and_changes_none(
    cfn: dict[str, Any], resources: dict[str, Any]
) -> None:
    """Issue 21: a deploy that puts a CloudFormation-managed fix back is noticed by the verifier, through each action's
    `read_live`: it is granted what `read_permissions` declares for every action with a template property, and every
    other AWS call it may make outside Medic's own resources is a read."""
    statements = [s for s in _statements(resources["VerifierFunctionRole"]) if not _on_own_resources(s, cfn)]
    declared = {p for action in registry().values() if type(action).template_properties is not
                Action.template_properties for p in action.read_permissions}  # fmt: skip
    assert declared >= {"lambda:GetFunctionConcurrency", "lambda:GetEventSourceMapping",
                        "application-autoscaling:DescribeScalableTargets"}  # fmt: skip
    assert [p for p in sorted(declared) if not _granting(statements, p)] == []
    writes = [a for s in statements for a in _actions(s) if _is_write(a)]
    assert writes == [], "the verifier changes nothing outside Medic's tables and queue"
    for permission in sorted(p for p in declared if p.startswith("lambda:")):  # scoped to functions or mappings
        assert all(":lambda:" in arn for s in _granting(statements, permission) for arn in _arns(s)), permission


def test_interactions_has_a_public_function_url(cfn: dict[str, Any], resources: dict[str, Any]) -> None:
    urls = _of_type(resources, "AWS::Lambda::Url")
    assert list(urls) == ["InteractionsFunctionUrl"]
    props = urls["InteractionsFunctionUrl"]["Properties"]
    assert props["TargetFunctionArn"] == {"Ref": "InteractionsFunction"}
    assert props["AuthType"] == "NONE"  # Slack signs requests itself; the function verifies the signature
    assert cfn["Outputs"]["InteractionsUrl"]["Value"] == {"Fn::GetAtt": ["InteractionsFunctionUrl", "FunctionUrl"]}


def test_the_public_function_url_has_both_permissions_lambda_requires(resources: dict[str, Any]) -> None:
    """Since October 2025 a Function URL with AuthType NONE needs two resource-based statements: InvokeFunctionUrl
    with the URL's auth type, and InvokeFunction when invoked through a URL; without either, Lambda answers 403
    (AccessDeniedException) before the function runs. They are the stack's only permissions for everyone."""
    public = [
        res["Properties"]
        for res in _of_type(resources, "AWS::Lambda::Permission").values()
        if res["Properties"]["Principal"] == "*"
    ]
    assert sorted(public, key=lambda props: str(props["Action"])) == [
        {"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "InteractionsFunction"}, "Principal": "*",
         "InvokedViaFunctionUrl": True},
        {"Action": "lambda:InvokeFunctionUrl", "FunctionName": {"Ref": "InteractionsFunction"}, "Principal": "*",
         "FunctionUrlAuthType": "NONE"},
    ]  # fmt: skip


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
    # The Slack app manifest takes both URLs from here: buttons and /medic share the one Function URL.
    url = {"Fn::GetAtt": ["InteractionsFunctionUrl", "FunctionUrl"]}
    assert cfn["Outputs"]["SlashCommandUrl"]["Value"] == cfn["Outputs"]["InteractionsUrl"]["Value"] == url


def test_every_output_the_cli_reads_is_declared_with_what_the_functions_are_given(
    cfn: dict[str, Any], resources: dict[str, Any]
) -> None:
    """`medic … --stack NAME` reads these outputs (medic_tools.stack): each must exist, and name what the functions' own
    variable names, so the CLI reads the same log the deployed functions write."""
    from medic_tools.stack import CLI_OUTPUTS, SETTING_OUTPUTS, TRIAGE_FUNCTION_OUTPUT

    outputs = cfn["Outputs"]
    assert set(CLI_OUTPUTS) <= set(outputs), f"missing from template.yaml's Outputs: {set(CLI_OUTPUTS) - set(outputs)}"
    given: dict[str, set[str]] = {}
    for function in FUNCTIONS:
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        for variable, value in variables.items():
            given.setdefault(variable, set()).add(json.dumps(value, sort_keys=True))
    for output, variable in SETTING_OUTPUTS.items():
        assert variable in ENV_VARS.values()
        assert json.dumps(outputs[output]["Value"], sort_keys=True) in given[variable], (output, variable)
    assert outputs[TRIAGE_FUNCTION_OUTPUT]["Value"] == {"Ref": "TriageFunction"}


def test_every_output_the_docs_name_is_declared(cfn: dict[str, Any]) -> None:
    """The docs read outputs by name (`OutputKey=='X'`, "the stack's output `X`"): each must be one the stack has, and
    docs/deploy.md's table of outputs lists them all."""
    named: dict[str, set[str]] = {}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "slack" / "manifest.yaml"]:
        text = doc.read_text(encoding="utf-8")
        for name in re.findall(r"OutputKey=='(\w+)'", text) + re.findall(r"outputs? `([A-Z]\w+)`", text):
            named.setdefault(name, set()).add(doc.name)
    assert {"InteractionsUrl", "TriageFunctionName", "DashboardUrl", "ActionsRoleArn"} <= set(named)
    assert {name: docs for name, docs in named.items() if name not in cfn["Outputs"]} == {}
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    table = deploy[deploy.index("| output | what |") :].split("\n\n", 1)[0]
    listed = {name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert listed == set(cfn["Outputs"])


def test_the_metric_graph_is_read_by_the_card_posters_only(resources: dict[str, Any]) -> None:
    readers = {role for role, statement in _role_statements(resources)
               if "cloudwatch:GetMetricWidgetImage" in _actions(statement)}  # fmt: skip
    assert readers == {"TriageFunctionRole", "ExecutorFunctionRole"}  # not interactions: it must stay small


def test_interactions_reads_plans_by_state_and_writes_no_plan(resources: dict[str, Any]) -> None:
    granted: dict[str, set[str]] = {}
    for statement in _statements(resources["InteractionsFunctionRole"]):
        for resource in _as_list(statement["Resource"]):
            for action in _actions(statement):
                granted.setdefault(action, set()).add(json.dumps(resource, sort_keys=True))
    assert granted["dynamodb:Query"] == {
        json.dumps({"Fn::Sub": "${PlansTable.Arn}/index/by_state"}),
        json.dumps({"Fn::GetAtt": ["EventsTable", "Arn"]}, sort_keys=True),
    }
    assert "dynamodb:Scan" not in granted and "dynamodb:DeleteItem" not in granted


# ------------------------------------------------------------ organizations
# docs/organizations.md. The member side (templates/member-account.yaml) is tests/unit/test_member_template.py.

#: The functions that read member accounts (triage: facts; the executor: re-proposals; the verifier: the alarm).
MEMBER_READERS = {"TriageFunctionRole", "ExecutorFunctionRole", "VerifierFunctionRole"}
#: Roles in other accounts are assumed only inside the organization.
IN_THE_ORGANIZATION = {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}


def test_each_role_assumes_only_what_its_function_needs(resources: dict[str, Any]) -> None:
    assert _assumers(resources) == {
        "${AWS::StackName}-actions": {"ExecutorFunctionRole"},
        "${MemberReadRoleName}": MEMBER_READERS,
        "${MemberRoleName}": {"ActionsRole"},  # changes in a member account: one hop further from ActionsRole only
    }


def test_member_accounts_are_reached_only_with_an_organization_and_only_inside_it(resources: dict[str, Any]) -> None:
    reaching = 0
    for role, statement in _role_statements(resources):
        reads, changes = _assumes(statement, "MemberReadRoleName"), _assumes(statement, "MemberRoleName")
        if reads or changes:
            reaching += 1
            assert statement["Condition"] == IN_THE_ORGANIZATION, role
            assert all(arn.startswith("arn:${AWS::Partition}:iam::*:role/") for arn in _arns(statement)), role
            # Reading takes AssumeRole alone; a change session carries the approver on (SourceIdentity).
            expected = ["sts:AssumeRole", "sts:SetSourceIdentity"] if changes else ["sts:AssumeRole"]
            assert _actions(statement) == expected, role
    assert reaching == len(MEMBER_READERS) + 1
    for role, statement in _role_statements(resources, organization=False):
        assert not (_assumes(statement, "MemberReadRoleName") or _assumes(statement, "MemberRoleName")), role
        assert "aws:ResourceOrgID" not in json.dumps(statement), role


def test_the_member_role_settings_are_empty_without_an_organization(resources: dict[str, Any]) -> None:
    # Empty names turn cross-account off in medic.config: an alarm of another account is then refused, never
    # triaged against a same-named function in Medic's own account.
    for function in FUNCTIONS:
        variables = _env(resources, function)
        for variable, parameter in (("MEDIC_MEMBER_READ_ROLE_NAME", "MemberReadRoleName"),
                                    ("MEDIC_MEMBER_ROLE_NAME", "MemberRoleName")):  # fmt: skip
            if variable in variables:
                assert variables[variable] == {"Fn::If": [ORGANIZATION, {"Ref": parameter}, ""]}, function
        if "MEDIC_ACCOUNT_ID" in variables:
            assert variables["MEDIC_ACCOUNT_ID"] == {"Ref": "AWS::AccountId"}, function


def test_the_member_readers_are_exactly_the_roles_under_their_path(resources: dict[str, Any]) -> None:
    # The member accounts' read-only role trusts the roles under this path (aws:PrincipalArn), nothing else.
    path = {"Fn::Sub": "/${AWS::StackName}/member-readers/"}
    roles = _of_type(resources, "AWS::IAM::Role")
    assert {name for name, role in roles.items() if role["Properties"].get("Path") == path} == MEMBER_READERS
    assert roles["ActionsRole"]["Properties"]["RoleName"] == {"Fn::Sub": "${AWS::StackName}-actions"}


def test_the_default_bus_takes_only_the_organizations_alarm_state_changes(resources: dict[str, Any]) -> None:
    policy = resources["OrganizationAlarmEvents"]
    assert policy["Type"] == "AWS::Events::EventBusPolicy" and policy["Condition"] == ORGANIZATION
    props = policy["Properties"]
    assert props["EventBusName"] == "default"
    statement = props["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Allow", "*", "events:PutEvents")
    assert _arns(statement) == ["arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"]
    pattern = resources["TriageFunctionAlarmStateChange"]["Properties"]["EventPattern"]
    assert statement["Condition"] == {
        "StringEquals": {
            "aws:PrincipalOrgID": {"Ref": "OrganizationId"},
            "events:source": pattern["source"][0],
            "events:detail-type": pattern["detail-type"][0],
        }
    }
    assert "EventBusName" not in resources["TriageFunctionAlarmStateChange"]["Properties"]  # the default bus


def test_the_organization_is_optional(cfn: dict[str, Any]) -> None:
    parameters = cfn["Parameters"]
    assert parameters["OrganizationId"]["Default"] == ""
    assert cfn["Conditions"][ORGANIZATION] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]}
    conditional = {name for name, resource in cfn["Resources"].items() if resource.get("Condition") == ORGANIZATION}
    assert conditional == {"OrganizationAlarmEvents"}


# ------------------------------------------------------------------------------------------- the log's digests
# docs/reliability.md, "Threat model: the log": the digests survive any one compromised role of Medic's.

#: What no role of Medic's may do to the digest bucket or its digests (DigestBucketPolicy denies it by role ARN).
DIGEST_ESCAPES = frozenset({
    "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
    "s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration",
})  # fmt: skip
#: The only reads the digest writer makes of the log (medic.ledger.digests.writer: Ledger.heads and Ledger.events).
DIGEST_LOG_READS = frozenset({"dynamodb:Scan", "dynamodb:Query"})


def _digest_policy(resources: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = resources["DigestBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_every_digest_is_locked_in_compliance_mode_and_kept(cfn: dict[str, Any], resources: dict[str, Any]) -> None:
    bucket = resources["DigestBucket"]
    props = bucket["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {
        "Mode": "COMPLIANCE", "Days": {"Ref": "DigestRetentionDays"}}}}  # fmt: skip
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert cfn["Parameters"]["DigestRetentionDays"]["MinValue"] >= 1
    assert resources["DigestBucketPolicy"]["Properties"]["Bucket"] == {"Ref": "DigestBucket"}


def test_no_role_of_medics_may_loosen_the_digests_or_write_other_objects(resources: dict[str, Any]) -> None:
    roles = set(_of_type(resources, "AWS::IAM::Role"))
    assert "DigestFunctionRole" in roles and "ActionsRole" in roles
    denied: dict[str, set[str]] = {}
    for statement in _digest_policy(resources):
        principals = statement.get("Condition", {}).get("ArnEquals", {}).get("aws:PrincipalArn")
        if statement["Effect"] == "Deny" and principals:
            assert statement["Principal"] == "*"
            for action in _actions(statement):
                denied.setdefault(action, set()).update(ref["Fn::GetAtt"][0] for ref in principals)
    for action in DIGEST_ESCAPES:
        assert denied.get(action) == roles, f"{action} is not denied to every role of Medic's"
    assert denied["s3:PutObject"] == roles - {"DigestFunctionRole"}


def test_a_digest_once_written_never_gets_a_later_version(resources: dict[str, Any]) -> None:
    [statement] = [s for s in _digest_policy(resources) if s.get("Sid") == "DigestsAreWrittenOnce"]
    assert (statement["Effect"], statement["Principal"], _actions(statement)) == ("Deny", "*", ["s3:PutObject"])
    assert statement["Condition"] == {"Null": {"s3:if-none-match": "true"}}  # whoever puts: If-None-Match or nothing


def test_only_the_digest_writer_touches_the_bucket_and_it_can_only_add_digests(resources: dict[str, Any]) -> None:
    in_s3: dict[str, set[str]] = {}
    for role, statement in _role_statements(resources):
        for action in _actions(statement):
            if action.startswith("s3:"):
                in_s3.setdefault(role, set()).add(action)
                assert _mentions(statement["Resource"], "DigestBucket"), f"{role}: {action} outside the digests"
    assert in_s3 == {"DigestFunctionRole": {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}}
    for statement in _statements(resources["DigestFunctionRole"]):
        actions = set(_actions(statement))
        if actions & {"s3:GetObject", "s3:PutObject"}:
            assert _arns(statement) == ["${DigestBucket.Arn}/digests/*"]
        if "s3:ListBucket" in actions:
            assert statement["Condition"] == {"StringLike": {"s3:prefix": "digests/*"}}
        if any(action.startswith("dynamodb:") for action in actions):
            assert actions <= DIGEST_LOG_READS, f"{statement.get('Sid')}: the digest writer must not change the log"


def test_no_role_that_writes_the_log_can_write_a_digest(resources: dict[str, Any]) -> None:
    for name in LOG_WRITERS:
        actions = {a for st in _statements(resources[f"{name}Role"]) for a in _actions(st)}
        assert not {a for a in actions if a.startswith("s3:")}, name


# ------------------------------------------------------------ the dashboard

#: `SEARCH('{Namespace,Dimension,...} MetricName="Name" ...', 'Stat', period)`: the schema and the metric it names.
SEARCH = re.compile(r"""SEARCH\('\{(?P<schema>[^}]*)\}\s+MetricName="(?P<metric>[^"]+)"[^']*',\s*'\w+',\s*\d+\)""")


def _emitted_metrics(tmp_path: Path) -> dict[str, frozenset[str]]:
    """Medic's own metric name → its dimension names, from the EMF documents the code prints: a plan's outcome and
    its latencies (what `Runtime.emit_outcome` emits), and a refused runbook (`Runtime.runbook_store`'s callback)."""
    import io

    from medic import metrics
    from medic.config import Settings
    from medic.errors import MedicError
    from medic.runtime import Runtime

    stream = io.StringIO()
    metrics.emit(metrics.plan_outcome("spillover", "VERIFIED"), stream)
    for name in metrics.LATENCIES:
        metrics.emit(metrics.latency(name, 1.0, "spillover"), stream)
    settings = Settings(plans_table="p", events_table="e", region="us-east-1", runbook_path=tmp_path / "missing.yaml")
    with pytest.raises(MedicError):  # no runbook at all: refused, counted, and Medic cannot decide
        _ = Runtime(settings, metrics_stream=stream).runbook
    emitted: dict[str, frozenset[str]] = {}
    for line in stream.getvalue().splitlines():
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == metrics.NAMESPACE
            [dimensions] = directive["Dimensions"]
            for metric in directive["Metrics"]:
                emitted[metric["Name"]] = frozenset(dimensions)
    return emitted


def _dashboard(resources: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's body as CloudFormation would deploy it, every ${…} replaced by a dummy value."""
    [dashboard] = _of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str), "one Fn::Sub string: every ${…} a resource, a GetAtt or a pseudo parameter"
    for name in re.findall(r"\$\{([^}]+)\}", body):
        assert name.startswith("AWS::") or name.split(".")[0] in resources, f"${{{name}}} names nothing"
    parsed: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: f"dummy-{m.group(1)}", body))
    return parsed


def _dashboard_metrics(body: dict[str, Any]) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(namespace, metric, dimension names or values) of every line the dashboard graphs."""
    for widget in body["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            if isinstance(line[0], dict):
                (expression,) = line
                match = SEARCH.fullmatch(expression["expression"])
                assert match, f"not a search expression on one metric: {expression['expression']}"
                namespace, *dimensions = [part.strip() for part in match["schema"].split(",")]
                yield namespace, match["metric"], tuple(dimensions)
            else:
                namespace, metric, *rest = [item for item in line if not isinstance(item, dict)]
                yield namespace, metric, tuple(rest)


def test_the_dashboard_graphs_what_medic_emits(resources: dict[str, Any], tmp_path: Path) -> None:
    emitted = _emitted_metrics(tmp_path)
    assert set(emitted) == {"Plans", "TimeToPlan", "TimeToApply", "TimeToVerify", "RunbookRefused"}
    graphed = set()
    for namespace, metric, dimensions in _dashboard_metrics(_dashboard(resources)):
        if namespace == "Medic":
            assert metric in emitted, f"Medic emits no metric {metric}"
            # A search schema must name exactly the dimension set the metric is emitted with, or it finds nothing.
            assert frozenset(dimensions) == emitted[metric], f"{metric}: {dimensions} vs {sorted(emitted[metric])}"
            graphed.add(metric)
        else:
            assert namespace in {"AWS/SQS", "AWS/Lambda"}, namespace
    assert graphed == set(emitted), "every metric Medic emits has its graph"


def test_the_dashboard_shows_every_dlq_and_every_function(resources: dict[str, Any]) -> None:
    graphed = {
        (namespace, metric, dimensions) for namespace, metric, dimensions in _dashboard_metrics(_dashboard(resources))
    }
    dead_letter_targets = set()
    for resource in resources.values():
        properties = resource.get("Properties", {})
        targets = [
            properties.get("RedrivePolicy", {}).get("deadLetterTargetArn"),
            properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
            *(target.get("DeadLetterConfig", {}).get("Arn") for target in properties.get("Targets", [])),
        ]
        dead_letter_targets |= {t["Fn::GetAtt"][0] for t in targets if isinstance(t, dict) and "Fn::GetAtt" in t}
    queues = set(_of_type(resources, "AWS::SQS::Queue"))
    assert dead_letter_targets == {q for q in queues if q.endswith("DLQ")} == {"ExecutorDLQ", "TriageDLQ"}
    for queue in dead_letter_targets:
        depth = ("AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName", f"dummy-{queue}.QueueName"))
        assert depth in graphed, f"{queue}'s depth is not on the dashboard"
    for function in FUNCTIONS:
        assert ("AWS/Lambda", "Errors", ("FunctionName", f"dummy-{function}")) in graphed, function


def test_the_dashboard_is_named_per_region_and_linked_from_the_outputs(cfn: dict[str, Any]) -> None:
    [(name, dashboard)] = _of_type(cfn["Resources"], "AWS::CloudWatch::Dashboard").items()
    assert dashboard["Properties"]["DashboardName"] == {"Fn::Sub": "${AWS::StackName}-${AWS::Region}"}
    assert f"#dashboards/dashboard/${{{name}}}" in cfn["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
