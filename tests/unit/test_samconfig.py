"""samconfig.toml deploys the templates on the first try: the capabilities CloudFormation will ask for, and parameter
overrides that name the templates' parameters, give every required one, and cannot deploy while still placeholders.

`sam deploy --guided` defaults to CAPABILITY_IAM alone (or to the config's capabilities): a template naming an IAM
role then fails at the change set ("Requires capabilities : [CAPABILITY_NAMED_IAM]").
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from template_script import load_check_script

ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = ROOT / "samconfig.toml"
#: config environment → the template it deploys (template.yaml unless the environment names another).
ENVIRONMENTS = {"default": ROOT / "template.yaml", "member": ROOT / "templates" / "member-account.yaml"}
#: IAM resources whose name property, when set, makes CloudFormation require CAPABILITY_NAMED_IAM.
NAMED_IAM = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}
#: Resources that make CloudFormation expand the template further (beyond SAM's transform, which `sam deploy` runs).
AUTO_EXPANDING = {"AWS::Serverless::Application", "AWS::CloudFormation::Stack"}
#: `sam deploy` needs an S3 bucket for templates larger than this (CloudFormation's TemplateBody limit).
TEMPLATE_BODY_LIMIT = 51_200
PLACEHOLDER = "REPLACE_ME"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as file:
        return tomllib.load(file)


@pytest.fixture(scope="module")
def templates() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """config environment → (the template as written, the CloudFormation it deploys as)."""
    check = load_check_script()
    loaded = {}
    for env, path in ENVIRONMENTS.items():
        source = check.load_template(path)
        loaded[env] = (source, check.translate(source) if check.is_sam(source) else source)
    return loaded


def _deploy(config: dict[str, Any], env: str) -> dict[str, Any]:
    parameters: dict[str, Any] = config[env]["deploy"]["parameters"]
    return parameters


def _capabilities(parameters: dict[str, Any]) -> set[str]:
    value = parameters.get("capabilities", [])
    return set(value.split() if isinstance(value, str) else value)


def _overrides(parameters: dict[str, Any]) -> dict[str, str]:
    """parameter_overrides as SAM reads them: a list of Key=Value, or one string of them separated by spaces."""
    value = parameters.get("parameter_overrides", [])
    items = shlex.split(value) if isinstance(value, str) else value
    pairs = [item.split("=", 1) for item in items]
    assert all(len(pair) == 2 for pair in pairs), items
    return dict(pairs)


def _named_iam(cloudformation: dict[str, Any]) -> list[str]:
    return [
        name
        for name, resource in cloudformation["Resources"].items()
        if NAMED_IAM.get(resource["Type"]) in resource.get("Properties", {})
    ]


def test_samconfig_is_sam_cli_config_version_0_1(config: dict[str, Any]) -> None:
    assert config["version"] == 0.1
    assert set(config) - {"version"} == set(ENVIRONMENTS)
    assert _deploy(config, "default")["stack_name"] == "medic"  # the name the docs' commands use


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_each_environment_deploys_its_template(config: dict[str, Any], env: str) -> None:
    parameters = _deploy(config, env)
    template = parameters.get("template_file", "template.yaml")
    assert (ROOT / template).resolve() == ENVIRONMENTS[env].resolve()
    assert parameters["confirm_changeset"] is True  # a human reads the change set before it runs
    if not parameters.get("resolve_s3"):
        assert ENVIRONMENTS[env].stat().st_size < TEMPLATE_BODY_LIMIT, "a template this large needs an S3 bucket"


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_the_capabilities_are_those_cloudformation_will_ask_for(
    config: dict[str, Any], templates: dict[str, tuple[dict[str, Any], dict[str, Any]]], env: str
) -> None:
    _, cloudformation = templates[env]
    capabilities = _capabilities(_deploy(config, env))
    named = _named_iam(cloudformation)
    has_iam = any(r["Type"].startswith("AWS::IAM::") for r in cloudformation["Resources"].values())
    if named:
        assert "CAPABILITY_NAMED_IAM" in capabilities, f"{env}: {named} have fixed names"
    elif has_iam:
        assert capabilities & {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}, f"{env}: the template creates IAM resources"
    expands = any(r["Type"] in AUTO_EXPANDING for r in cloudformation["Resources"].values())
    assert ("CAPABILITY_AUTO_EXPAND" in capabilities) == expands, "only the capabilities the template needs"
    assert capabilities <= {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"}


def test_the_named_roles_are_the_ones_other_roles_trust_by_name(
    templates: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    assert _named_iam(templates["default"][1]) == ["ActionsRole"]
    assert sorted(_named_iam(templates["member"][1])) == ["ReadOnlyRole", "RemediationRole"]


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_the_overrides_name_template_parameters_and_give_every_required_one(
    config: dict[str, Any], templates: dict[str, tuple[dict[str, Any], dict[str, Any]]], env: str
) -> None:
    source, _ = templates[env]
    declared = source["Parameters"]
    overrides = _overrides(_deploy(config, env))
    assert set(overrides) <= set(declared), f"{env}: not parameters of the template: {set(overrides) - set(declared)}"
    required = {name for name, parameter in declared.items() if "Default" not in parameter}
    assert required <= set(overrides), f"{env}: required parameters missing: {required - set(overrides)}"


@pytest.mark.parametrize("env", sorted(ENVIRONMENTS))
def test_placeholders_cannot_deploy_and_the_rest_are_valid(
    config: dict[str, Any], templates: dict[str, tuple[dict[str, Any], dict[str, Any]]], env: str
) -> None:
    source, _ = templates[env]
    for name, value in _overrides(_deploy(config, env)).items():
        parameter = source["Parameters"][name]
        pattern = parameter.get("AllowedPattern")
        allowed = parameter.get("AllowedValues")
        valid = (pattern is None or re.fullmatch(pattern, value) is not None) and (allowed is None or value in allowed)
        if value == PLACEHOLDER:
            assert pattern and not valid, f"{env}: {name}'s placeholder would deploy: CloudFormation must refuse it"
        else:
            assert valid, f"{env}: {name}={value} is refused by the template"
    required = {name for name, parameter in source["Parameters"].items() if "Default" not in parameter}
    assert {name for name, value in _overrides(_deploy(config, env)).items() if value == PLACEHOLDER} >= required


def test_medic_starts_in_dry_run(config: dict[str, Any]) -> None:
    assert _overrides(_deploy(config, "default"))["DryRun"] == "true"
