"""Check the SAM template offline: translate it with aws-sam-translator, lint the result with cfn-lint.

    python scripts/check_template.py [template.yaml]

cfn-lint (>= 1.54) no longer expands the SAM transform itself, so this does it first, the way
`sam deploy` would, then lints the CloudFormation that would actually be deployed. Every finding is
printed as ``template.yaml: RULE: message (path)``. Exit status: 0 when clean (allow-listed findings
are printed but pass), 1 on a translation error or any other finding, 2 when the file cannot be read
or parsed. No AWS credentials or network: policies are ARNs or inline statements (SAM resolves the
AWS-managed policy names it bundles offline; any other name would need IAM and is reported instead).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from cfnlint.api import ManualArgs
from cfnlint.api import lint as cfn_lint
from cfnlint.decode.decode import decode_str
from samtranslator.model.exceptions import ExceptionWithMessage, InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

#: Region the template is translated and linted for (any commercial region would do).
REGION = "us-east-1"

#: Placeholder bucket for local CodeUri/ContentUri paths (`sam package` uploads them for real).
PLACEHOLDER_BUCKET = "medic-template-check"

#: SAM resource types whose local code path must exist (resource type -> property).
LOCAL_PATH_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


@dataclass(frozen=True)
class Allowance:
    """A cfn-lint finding we accept: its rule, where (a path prefix; "" = anywhere) and why."""

    rule: str
    path_prefix: str
    reason: str


#: Warnings and informational findings accepted on purpose. Keep it short; every entry says why.
#: Error-level findings are never allow-listed.
ALLOWED: tuple[Allowance, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One problem found in the template (by the decoder, SAM or cfn-lint)."""

    rule: str
    level: str  # "error" | "warning" | "informational"
    message: str
    path: str
    allowed_because: str = ""

    @property
    def fails(self) -> bool:
        return not self.allowed_because

    def render(self, filename: str) -> str:
        where = f" ({self.path})" if self.path else ""
        note = f" [allowed: {self.allowed_because}]" if self.allowed_because else ""
        return f"{filename}: {self.rule}: {self.message}{where}{note}"


@dataclass(frozen=True)
class CheckResult:
    """What `check` found: the translated template (empty if translation failed) and the findings."""

    cloudformation: dict[str, Any]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return bool(self.cloudformation) and not any(finding.fails for finding in self.findings)


class UnreadableTemplateError(Exception):
    """The file could not be read or parsed as YAML/JSON."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = tuple(problems)


class TranslationError(Exception):
    """aws-sam-translator refused the template."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = tuple(messages)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a template with cfn-lint's decoder (short-form tags, duplicate keys) into plain dicts and lists."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableTemplateError(path, [str(exc)]) from exc
    template, matches = decode_str(text)
    if matches or not isinstance(template, dict):
        problems = [f"{match.rule.id}: {match.message} (line {match.linenumber})" for match in matches]
        raise UnreadableTemplateError(path, problems or ["not a YAML or JSON mapping"])
    # cfn-lint's node classes carry line marks; the translator wants plain data.
    plain: dict[str, Any] = json.loads(json.dumps(template))
    return plain


def check_local_paths(sam_template: dict[str, Any], base_dir: Path) -> list[Finding]:
    """Each function's CodeUri and layer's ContentUri, when local, must be an existing directory."""
    findings = []
    for logical_id, resource in _resources(sam_template):
        prop = LOCAL_PATH_PROPERTIES.get(resource.get("Type", ""))
        value = resource.get("Properties", {}).get(prop) if prop else None
        if isinstance(value, str) and not value.startswith("s3://") and not (base_dir / value).is_dir():
            findings.append(
                Finding(
                    rule="SAM",
                    level="error",
                    message=f"{prop} {value!r} is not a directory next to the template",
                    path=f"Resources/{logical_id}/Properties/{prop}",
                )
            )
    return findings


def translate(sam_template: dict[str, Any]) -> dict[str, Any]:
    """Expand the SAM transform into plain CloudFormation, offline.

    Raises `TranslationError` with every problem SAM reports.
    """
    template = copy.deepcopy(sam_template)
    for _, resource in _resources(template):
        prop = LOCAL_PATH_PROPERTIES.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        value = properties.get(prop) if prop else None
        if isinstance(value, str) and not value.startswith("s3://"):
            properties[prop] = f"s3://{PLACEHOLDER_BUCKET}/{value}"

    # A session with a region only: the translator reads the region and partition from it, nothing else.
    session = boto3.session.Session(region_name=REGION)
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=session)
    try:
        translated: dict[str, Any] = translator.translate(
            template, parameter_values={}, get_managed_policy_map=_no_managed_policy_names
        )
    except InvalidDocumentException as exc:
        raise TranslationError([cause.message for cause in exc.causes]) from exc
    except ExceptionWithMessage as exc:
        raise TranslationError([exc.message]) from exc
    return translated


def _no_managed_policy_names() -> dict[str, str]:
    # SAM calls this only for a policy name it does not bundle; resolving it would need IAM credentials.
    raise TranslationError(["Policies must be ARNs or inline statements: this managed-policy name needs IAM"])


def lint(cloudformation: dict[str, Any], allowed: Iterable[Allowance] = ALLOWED) -> list[Finding]:
    """Lint a (translated) CloudFormation template with cfn-lint, informational checks included."""
    allowances = tuple(allowed)
    config = ManualArgs(regions=[REGION], include_checks=["I"])
    findings = []
    for match in cfn_lint(json.dumps(cloudformation), config=config):
        path = "/".join(str(part) for part in getattr(match, "path", None) or ())
        level = str(match.rule.severity).lower()
        reason = ""
        if level != "error":
            reason = next(
                (a.reason for a in allowances if a.rule == match.rule.id and path.startswith(a.path_prefix)),
                "",
            )
        findings.append(Finding(match.rule.id, level, match.message, path, reason))
    return findings


def check(path: Path) -> CheckResult:
    """Load, translate and lint one template. Raises `UnreadableTemplateError` if it cannot be parsed."""
    sam_template = load_template(path)
    findings = check_local_paths(sam_template, path.parent)
    try:
        cloudformation = translate(sam_template)
    except TranslationError as exc:
        findings.extend(Finding("SAM", "error", message, "") for message in exc.messages)
        return CheckResult({}, tuple(findings))
    findings.extend(lint(cloudformation))
    return CheckResult(cloudformation, tuple(findings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default="template.yaml", type=Path)
    args = parser.parse_args(argv)
    path: Path = args.template
    try:
        result = check(path)
    except UnreadableTemplateError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 2
    for finding in result.findings:
        print(finding.render(str(path)))
    if not result.ok:
        failing = sum(finding.fails for finding in result.findings)
        print(f"template check failed: {failing} finding(s)", file=sys.stderr)
        return 1
    print(f"template ok: {len(result.cloudformation.get('Resources', {}))} resources after transform")
    return 0


def _resources(template: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    resources = template.get("Resources")
    if isinstance(resources, dict):
        for logical_id, resource in resources.items():
            if isinstance(resource, dict):
                yield logical_id, resource


if __name__ == "__main__":
    sys.exit(main())
