"""templates/member-account.yaml: what Medic may do in a member account of the organization, checked against
template.yaml (the central side) and the code.

The remediation role holds ActionsRole's permissions word for word (so everything test_template.py proves about
ActionsRole holds here too) and trusts ActionsRole only; the read-only role holds what fact collection, the verifier
and the card's graph read, and trusts Medic's member readers only; the forwarding rule sends alarm state changes
to Medic's bus, which accepts exactly those (test_template.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from template_script import load_check_script

from medic.facts import FactCollector

ROOT = Path(__file__).resolve().parents[2]
MEMBER_TEMPLATE = ROOT / "templates" / "member-account.yaml"
TEMPLATE = ROOT / "template.yaml"
CENTRAL_ROOT = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${CentralAccountId}:root"}}
#: What the member accounts are read for, beyond fact collection.
READS_BEYOND_FACTS = {
    "cloudwatch:DescribeAlarms": "the verifier",
    "cloudwatch:GetMetricWidgetImage": "the card's graph",
    # The verifier reads a fix on a CloudFormation-managed function back (docs/TEMPLATES.md).
    "lambda:GetFunctionConcurrency": "the verifier",
    "lambda:GetFunctionConfiguration": "the verifier",
    "lambda:GetEventSourceMapping": "the verifier",
}


@pytest.fixture(scope="module")
def check_template() -> ModuleType:
    return load_check_script()


@pytest.fixture(scope="module")
def member(check_template: ModuleType) -> dict[str, Any]:
    result = check_template.check(MEMBER_TEMPLATE)
    assert result.ok, [f.render("member-account.yaml") for f in result.findings]
    template: dict[str, Any] = result.cloudformation
    return template


@pytest.fixture(scope="module")
def central(check_template: ModuleType) -> dict[str, Any]:
    template: dict[str, Any] = check_template.check(TEMPLATE).cloudformation
    return template


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in _as_list(policy["PolicyDocument"]["Statement"])]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {str(action) for statement in statements for action in _as_list(statement["Action"])}


def test_the_member_template_is_plain_cloudformation_for_stacksets(member: dict[str, Any]) -> None:
    assert "Transform" not in member  # StackSets run no macros
    assert set(member["Resources"]) == {"AlarmForwardingRule", "AlarmForwardingRole", "ReadOnlyRole", "RemediationRole"}
    # One parameter without a default: the StackSet gets it once, every account the same.
    assert [name for name, p in member["Parameters"].items() if "Default" not in p] == ["CentralAccountId"]


def test_the_role_names_are_the_ones_medic_assumes(member: dict[str, Any], central: dict[str, Any]) -> None:
    parameters, resources = member["Parameters"], member["Resources"]
    assert resources["RemediationRole"]["Properties"]["RoleName"] == {"Ref": "RemediationRoleName"}
    assert resources["ReadOnlyRole"]["Properties"]["RoleName"] == {"Ref": "ReadOnlyRoleName"}
    assert parameters["RemediationRoleName"]["Default"] == central["Parameters"]["MemberRoleName"]["Default"]
    assert parameters["ReadOnlyRoleName"]["Default"] == central["Parameters"]["MemberReadRoleName"]["Default"]


def test_the_remediation_role_holds_the_actions_roles_permissions_word_for_word(
    member: dict[str, Any], central: dict[str, Any]
) -> None:
    [own] = member["Resources"]["RemediationRole"]["Properties"]["Policies"]
    actions_role = central["Resources"]["ActionsRole"]["Properties"]["Policies"]
    [reference] = [p for p in actions_role if isinstance(p, dict) and p.get("PolicyName") == "remediation-actions"]
    assert own == reference  # ${AWS::AccountId} is the member account there: its own resources, opted-in functions
    conditions = [statement.get("Condition") for statement in _statements(member["Resources"]["RemediationRole"])]
    assert {"StringEquals": {"aws:ResourceTag/medic:managed": "true"}} in conditions


def test_only_medics_actions_role_may_assume_the_remediation_role_for_a_plan_with_its_approver(
    member: dict[str, Any], central: dict[str, Any]
) -> None:
    role = member["Resources"]["RemediationRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow" and trust["Principal"] == CENTRAL_ROOT
    assert trust["Action"] == ["sts:AssumeRole", "sts:SetSourceIdentity"]
    actions_role_name = central["Resources"]["ActionsRole"]["Properties"]["RoleName"]["Fn::Sub"]
    assert actions_role_name == "${AWS::StackName}-actions"
    assert trust["Condition"] == {
        "ArnEquals": {
            "aws:PrincipalArn": {
                "Fn::Sub": "arn:${AWS::Partition}:iam::${CentralAccountId}:role/${MedicStackName}-actions"
            }
        },
        "StringLike": {"sts:RoleSessionName": "p-*"},  # sessions named after a plan (medic.plan.plan_id)
        "Null": {"sts:SourceIdentity": "false"},  # ...and carrying who approved it
    }
    assert role["MaxSessionDuration"] == 3600  # chained sessions last an hour at most anyway


def test_plan_ids_match_the_session_name_condition() -> None:
    from medic.plan import plan_id

    assert plan_id("arn:aws:cloudwatch:us-east-1:222222222222:alarm:x", "2026-01-01T00:00:00Z").startswith("p-")


def test_the_read_only_role_reads_what_medic_reads_and_nothing_else(member: dict[str, Any]) -> None:
    statements = _statements(member["Resources"]["ReadOnlyRole"])
    granted = _actions(statements)
    assert granted == {*FactCollector.permissions, *READS_BEYOND_FACTS}
    for statement in statements:
        for action in _as_list(statement["Action"]):
            verb = action.partition(":")[2]
            assert verb.startswith(("Get", "List", "Describe", "StartQuery", "FilterLogEvents")), action
        assert "Condition" not in statement


def test_the_read_only_role_reads_back_every_fix_a_template_can_hold(member: dict[str, Any]) -> None:
    from medic.actions import registry
    from medic.actions.base import Action

    granted = _actions(_statements(member["Resources"]["ReadOnlyRole"]))
    declared = {p for action in registry().values() if type(action).template_properties is not
                Action.template_properties for p in action.read_permissions}  # fmt: skip
    assert declared <= granted


def test_only_medics_member_readers_may_assume_the_read_only_role(
    member: dict[str, Any], central: dict[str, Any]
) -> None:
    [trust] = member["Resources"]["ReadOnlyRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == CENTRAL_ROOT and trust["Action"] == "sts:AssumeRole"
    readers = "arn:${AWS::Partition}:iam::${CentralAccountId}:role/${MedicStackName}/member-readers/*"
    assert trust["Condition"] == {"ArnLike": {"aws:PrincipalArn": {"Fn::Sub": readers}}}
    paths = {
        json.dumps(r["Properties"].get("Path")) for r in central["Resources"].values() if r["Type"] == "AWS::IAM::Role"
    }
    assert json.dumps({"Fn::Sub": "/${AWS::StackName}/member-readers/"}) in paths  # the path the readers have


def test_alarm_state_changes_are_forwarded_to_medics_bus_and_only_there(
    member: dict[str, Any], central: dict[str, Any]
) -> None:
    rule = member["Resources"]["AlarmForwardingRule"]["Properties"]
    triage = central["Resources"]["TriageFunctionAlarmStateChange"]["Properties"]["EventPattern"]
    assert rule["EventPattern"]["source"] == triage["source"]
    assert rule["EventPattern"]["detail-type"] == triage["detail-type"]
    assert rule["EventPattern"]["detail"]["state"] == triage["detail"]["state"]
    bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${CentralAccountId}:event-bus/default"}
    [target] = rule["Targets"]
    assert target["Arn"] == bus
    assert target["RoleArn"] == {"Fn::GetAtt": ["AlarmForwardingRole", "Arn"]}  # required: the bus trusts an org ID

    role = member["Resources"]["AlarmForwardingRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    for stack_name in STACK_NAMES:  # the trust names this stack's rule, and only it
        pseudo = _pseudo(stack_name)
        rule_arn = f"arn:aws:events:us-east-1:{pseudo['AWS::AccountId']}:rule/{_resolve(rule['Name'], pseudo)}"
        assert _resolve(trust["Condition"]["ArnEquals"]["aws:SourceArn"], pseudo) == rule_arn
    [statement] = _statements(member["Resources"]["AlarmForwardingRole"])
    assert (statement["Action"], statement["Resource"]) == ("events:PutEvents", bus)


#: Stack names the member template is deployed under: a StackSet's stack instance (StackSet-<set name>-<uuid>), the
#: longest name CloudFormation allows, and a stack deployed by hand (the management account: samconfig.toml, member).
STACK_NAMES = (
    "StackSet-medic-member-3f2c9a1e-7b4d-4e8a-9c21-5d6e7f8a9b0c",
    "S" + "x" * 127,
    "medic-member",
)
#: EventBridge's limits on a rule's name (EventBridge API reference, PutRule: Name).
RULE_NAME = re.compile(r"[\.\-_A-Za-z0-9]{1,64}")


def _pseudo(stack_name: str) -> dict[str, str]:
    stack_id = f"arn:aws:cloudformation:us-east-1:222222222222:stack/{stack_name}/0e3e6a00-8b1c-11ef-9f2d-0a1b2c3d4e5f"
    return {"AWS::StackName": stack_name, "AWS::StackId": stack_id, "AWS::AccountId": "222222222222",
            "AWS::Region": "us-east-1", "AWS::Partition": "aws"}  # fmt: skip


def _resolve(value: Any, pseudo: dict[str, str]) -> Any:
    """A value as CloudFormation computes it from the pseudo parameters (Ref, Fn::Sub, Fn::Select, Fn::Split)."""
    if not isinstance(value, dict):
        return value
    [(function, argument)] = value.items()
    if function == "Ref":
        return pseudo[argument]
    if function == "Fn::Select":
        index, items = argument
        return _resolve(items, pseudo)[int(index)]
    if function == "Fn::Split":
        delimiter, text = argument
        return str(_resolve(text, pseudo)).split(delimiter)
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        names = {**pseudo, **{name: _resolve(v, pseudo) for name, v in variables.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda match: str(names[match.group(1)]), text)
    raise AssertionError(f"cannot resolve {function}")


@pytest.mark.parametrize("stack_name", STACK_NAMES)
def test_every_rule_name_fits_eventbridge_whatever_the_stack_is_called(
    member: dict[str, Any], central: dict[str, Any], stack_name: str
) -> None:
    """A StackSet names its stack instances StackSet-<set>-<uuid>: a rule named after the stack went past 64."""
    rules = [(template, name, resource["Properties"])
             for template, resources in (("member", member["Resources"]), ("central", central["Resources"]))
             for name, resource in resources.items() if resource["Type"] == "AWS::Events::Rule"]  # fmt: skip
    assert {(template, name) for template, name, _ in rules} >= {("member", "AlarmForwardingRule")}
    for template, name, properties in rules:
        if "Name" in properties:  # else CloudFormation generates one that fits
            resolved = _resolve(properties["Name"], _pseudo(stack_name))
            assert RULE_NAME.fullmatch(resolved), f"{template} {name}: {resolved!r} ({len(resolved)} characters)"
