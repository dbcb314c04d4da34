"""docs/deploy.md gets a first deployment through: it answers the question whose default aborts `sam deploy --guided`,
the code it cites for why that answer is safe exists, and it says what the deploying principal must be allowed."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml
from template_script import load_check_script

from medic.chatops.requests import MAX_BODY_BYTES, SlackRequestRefused, verify_signature

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"
#: `medic.module.name` in backticks: a module or an attribute of one.
CITED = re.compile(r"`(medic(?:\.\w+)+)`")
#: A fenced shell block's body.
SHELL_BLOCK = re.compile(r"```(?:bash|sh)\n(.*?)```", re.DOTALL)
#: A CloudFormation resource type in backticks.
RESOURCE_TYPE = re.compile(r"`(AWS::\w+::\w+)`")


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, …) as plain values: only the structure matters here."""


_TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _public_function_urls() -> list[str]:
    template = yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=_TemplateLoader)
    return [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and (resource["Properties"].get("FunctionUrlConfig") or {}).get("AuthType") == "NONE"
    ]


def test_the_guided_deploys_question_on_each_public_function_url_is_answered_yes() -> None:
    text = DOC.read_text(encoding="utf-8")
    public = _public_function_urls()
    assert public == ["InteractionsFunction"]
    for function in public:
        # SAM CLI's guided prompt (samcli/commands/deploy/guided_context.py, prompt_authorization), default N.
        assert f"{function} Function Url has no authentication. Is this okay? [y/N]: y" in text
    assert "Only `--guided` asks it" in text


def test_the_code_deploy_md_cites_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    cited = CITED.findall(text)
    assert "medic.usecases.interactions.handle_interaction" in cited
    for name in cited:
        module, _, attribute = name.rpartition(".")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            assert hasattr(importlib.import_module(module), attribute), f"docs/deploy.md cites {name}: not found"
    assert hasattr(importlib.import_module("medic.chatops.requests"), "verify_signature")
    assert MAX_BODY_BYTES == 64 * 1024 and "at most 64 KiB" in text


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}")
    return text[start : text.index("\n## ", start + 1)]


def test_the_deploying_principals_permissions_name_every_resource_type_the_stack_creates() -> None:
    """Step 1 lists what the deploying principal must be allowed to create: every resource type of the template as
    CloudFormation gets it (after SAM's transform), and no other."""
    check = load_check_script()
    deployed = check.translate(check.load_template(ROOT / "template.yaml"))
    types = {resource["Type"] for resource in deployed["Resources"].values()}
    assert {"AWS::Lambda::Url", "AWS::S3::Bucket", "AWS::CloudWatch::Dashboard", "AWS::Logs::LogGroup"} <= types
    listed = set(RESOURCE_TYPE.findall(_section(DOC.read_text(encoding="utf-8"), "1. Prerequisites")))
    assert listed == types, f"missing: {sorted(types - listed)}; not in the template: {sorted(listed - types)}"


def _shell_commands(text: str) -> list[str]:
    """Every command of the doc's shell blocks: continuation lines joined, comments dropped, split at pipes, `&&` and
    command substitutions."""
    commands = []
    for block in SHELL_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            code = re.sub(r"(^|\s)#.*", "", line)
            commands += [part.strip() for part in re.split(r"&&|\||\$\(", code) if part.strip()]
    return commands


def test_every_command_that_reaches_aws_names_the_region() -> None:
    """Secrets, stack, tags and alarms must be in one Region: a secret created in the profile's Region while the stack
    runs in another cannot be read. Every aws and sam command that reaches AWS says `--region "$REGION"`; `medic`, which
    has no --region, gets AWS_REGION."""
    commands = _shell_commands(DOC.read_text(encoding="utf-8"))
    reaching = [c for c in commands if c.startswith("aws ") or re.match(r"sam (deploy|delete|local)\b", c)]
    assert len(reaching) >= 8 and any(c.startswith("aws secretsmanager create-secret") for c in reaching)
    assert [c for c in reaching if '--region "$REGION"' not in c] == []
    medic = [c for c in commands if re.search(r"\bmedic (log|control|replay)\b", c)]
    assert medic and [c for c in medic if not c.startswith('AWS_REGION="$REGION" medic ')] == []
    assert [c for c in commands if c.startswith("aws secretsmanager create-secret") and
            "--query ARN --output text" not in c] == []  # fmt: skip


def test_deployments_use_a_copy_of_samconfig_that_git_ignores() -> None:
    """`sam deploy --guided` rewrites the file it saves to: the tracked samconfig.toml would show the user's IDs in
    `git diff` and fail tests/unit/test_samconfig.py. The doc deploys from a git-ignored copy."""
    commands = _shell_commands(DOC.read_text(encoding="utf-8"))
    assert "cp samconfig.toml samconfig.local.toml" in commands
    deploys = [command for command in commands if command.startswith("sam deploy")]
    assert deploys and [c for c in deploys if "--config-file samconfig.local.toml" not in c] == []
    assert "samconfig.local.toml" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_what_the_doc_says_of_approvers_and_the_stack_name_is_what_the_template_does() -> None:
    """Approvers may be emptied (its default is empty, which the doc tells ApproverGroup-only users to rely on, since
    `--guided` keeps samconfig's REPLACE_ME on Enter); and the stack's name is the prefix of the alarms triage skips."""
    text = " ".join(DOC.read_text(encoding="utf-8").split())  # a phrase may wrap
    template = load_check_script().load_template(ROOT / "template.yaml")
    approvers = template["Parameters"]["Approvers"]
    assert approvers["Default"] == "" and re.fullmatch(approvers["AllowedPattern"], "")
    assert '"Approvers=REPLACE_ME",' in (ROOT / "samconfig.toml").read_text(encoding="utf-8")
    assert "set `Approvers=` in `samconfig.local.toml`" in text and "the parameter defaults to empty" in text

    rule = template["Resources"]["TriageFunction"]["Properties"]["Events"]["AlarmStateChange"]["Properties"]
    assert rule["Pattern"]["detail"]["alarmName"] == [{"anything-but": {"prefix": {"Fn::Sub": "${AWS::StackName}-"}}}]
    assert "skips every alarm whose name starts with `<stack>-`" in text


def test_the_parameter_table_answers_every_question_guided_asks() -> None:
    """`sam deploy --guided` asks for every parameter of the template: the table says what to answer to each."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("| parameter | answer |") :].split("\n\n", 1)[0]
    listed = {name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert listed == set(load_check_script().load_template(ROOT / "template.yaml")["Parameters"])


def test_tearing_down_says_what_the_stack_keeps() -> None:
    """What `sam delete` leaves behind is what the template retains: the log's tables (deletion protection on) and the
    Object Lock bucket; the log groups are deleted with the stack."""
    text = DOC.read_text(encoding="utf-8")
    section = " ".join(_section(text, "Tearing down").split())
    resources = load_check_script().load_template(ROOT / "template.yaml")["Resources"]
    retained = {name for name, resource in resources.items() if resource.get("DeletionPolicy") == "Retain"}
    assert retained == {"PlansTable", "EventsTable", "DigestBucket"}
    for table in ("PlansTable", "EventsTable"):
        assert resources[table]["Properties"]["DeletionProtectionEnabled"] is True
    assert resources["DigestBucket"]["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Mode": "COMPLIANCE", "Days": {"Ref": "DigestRetentionDays"}}  # fmt: skip
    assert {resource.get("DeletionPolicy") for resource in resources.values()
            if resource["Type"] == "AWS::Logs::LogGroup"} == {"Delete"}  # fmt: skip
    for claim in ("the plans and events tables and the digest bucket", "--no-deletion-protection-enabled",
                  "COMPLIANCE mode", "log groups (`DeletionPolicy: Delete`)"):  # fmt: skip
        assert claim in section, claim


def test_every_alarm_template_the_doc_generates_is_deployed() -> None:
    commands = _shell_commands(DOC.read_text(encoding="utf-8"))
    generated = [re.search(r"> (\S+)$", c) for c in commands if c.startswith("medic alarms") and "cloudformation" in c]
    assert generated
    for match in generated:
        assert match is not None
        assert any(c.startswith(f"aws cloudformation deploy --template-file {match[1]} ") for c in commands), match[1]


NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def test_the_docs_count_and_name_the_functions_the_template_has() -> None:
    resources = load_check_script().load_template(ROOT / "template.yaml")["Resources"]
    functions = [name.removesuffix("Function").lower() for name, resource in resources.items()
                 if resource["Type"] == "AWS::Serverless::Function"]  # fmt: skip
    assert "digest" in functions
    word = NUMBERS[len(functions)]
    text = DOC.read_text(encoding="utf-8")
    counted = re.findall(rf"\b({'|'.join(NUMBERS)}) functions\b", text, flags=re.IGNORECASE)
    assert len(counted) >= 2 and {count.lower() for count in counted} == {word}
    created = _section(text, "What the stack creates")
    assert f"{word.capitalize()} functions ({', '.join(functions)})" in " ".join(created.split())
    assert "Object Lock" in created

    layout = {row.split("|")[1].strip(): row for row in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
              if row.startswith("| `")}  # fmt: skip
    assert f"{word} functions" in layout["`template.yaml`"]
    assert all(function in layout["`functions/<name>/app.py`"] for function in functions)


def test_the_smoke_test_expects_what_medic_answers_an_unsigned_request() -> None:
    """After the deployment, an unsigned POST to the Function URL must reach Medic and be refused: 401."""
    commands = _shell_commands(DOC.read_text(encoding="utf-8"))
    assert "curl -s -o /dev/null -w '%{http_code}\\n' -X POST \"$URL\"" in commands
    assert "The smoke test must print `401`" in DOC.read_text(encoding="utf-8")
    with pytest.raises(SlackRequestRefused) as refused:
        verify_signature({}, b"", "the signing secret")
    assert refused.value.status == 401
