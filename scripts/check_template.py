"""Check the templates offline: translate SAM with aws-sam-translator, lint the result with cfn-lint, and
optionally scan its policies with checkov.

    python scripts/check_template.py [template.yaml ...] [--checkov PATH/TO/checkov]

cfn-lint (>= 1.54) no longer expands the SAM transform itself, so this does it first, the way
`sam deploy` would, then lints the CloudFormation that would actually be deployed (a template without
the SAM transform, such as templates/member-account.yaml, is linted as it is). Every finding is
printed as ``template.yaml: RULE: message (path)``. Exit status: 0 when clean (allow-listed findings
are printed but pass), 1 on a translation error or any other finding, 2 when a file cannot be read
or parsed. No AWS credentials or network: policies are ARNs or inline statements (SAM resolves the
AWS-managed policy names it bundles offline; any other name would need IAM and is reported instead).

With ``--checkov``, checkov (its own virtualenv: it pins boto3 and packaging, which the dev environment
must not get; `make template` installs it) scans the translated CloudFormation too, offline. Its
findings fail the check unless the resource justifies them inline::

    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_117
            comment: why this does not apply here

SAM copies a function's Metadata to the function only; this script extends its ``checkov`` skips to the
resources SAM generates from it (the function's role, URL, rules: their logical IDs start with the
function's), so a justification stays next to the SAM resource that causes the finding.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
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

#: The transform that makes a template SAM (anything else is plain CloudFormation, linted as it is).
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"

#: How long checkov may take on one template (it takes ~15 s on two cores).
CHECKOV_TIMEOUT_S = 300

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


def is_sam(template: dict[str, Any]) -> bool:
    transform = template.get("Transform")
    return SAM_TRANSFORM in (transform if isinstance(transform, list) else [transform])


def policy_scan(cloudformation: dict[str, Any], sam_template: dict[str, Any], checkov: Path) -> list[Finding]:
    """checkov's findings on the (translated) template: failed checks fail; skipped ones pass with their reason.

    Raises `FileNotFoundError` when `checkov` is not an executable, `RuntimeError` when it does not answer."""
    if not checkov.is_file():
        raise FileNotFoundError(f"checkov not found at {checkov} (`make template` installs it)")
    scanned = extend_checkov_skips(cloudformation, sam_template)
    with tempfile.TemporaryDirectory(prefix="medic-checkov-") as tmp:
        target = Path(tmp) / "template.json"
        target.write_text(json.dumps(scanned), encoding="utf-8")
        command = [str(checkov), "--file", str(target), "--framework", "cloudformation", "--output", "json",
                   "--soft-fail", "--skip-download"]  # fmt: skip
        # --skip-download and no API key: checkov stays offline (no guidelines, no upload).
        done = subprocess.run(  # noqa: S603 - our own pinned tool on our own file
            command, capture_output=True, text=True, timeout=CHECKOV_TIMEOUT_S, check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8", "BC_SKIP_MAPPING": "TRUE"},
        )  # fmt: skip
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"checkov gave no report (exit {done.returncode}): {done.stderr.strip()[-2000:]}") from exc
    reports = report if isinstance(report, list) else [report]
    findings = []
    for part in reports:
        results = part.get("results", {}) if isinstance(part, dict) else {}
        for failed in results.get("failed_checks", []):
            findings.append(_checkov_finding(failed, ""))
        for skipped in results.get("skipped_checks", []):
            reason = str((skipped.get("check_result") or {}).get("suppress_comment") or "skipped")
            findings.append(_checkov_finding(skipped, reason))
        for error in results.get("parsing_errors", []):
            findings.append(Finding("checkov", "error", f"could not parse {error}", ""))
    return findings


def _checkov_finding(result: dict[str, Any], allowed_because: str) -> Finding:
    resource = str(result.get("resource", ""))  # "AWS::Lambda::Function.TriageFunction"
    logical_id = resource.rsplit(".", 1)[-1]
    return Finding(
        rule=f"checkov:{result.get('check_id')}",
        level="error",
        message=str(result.get("check_name", "")),
        path=f"Resources/{logical_id}" if logical_id else "",
        allowed_because=allowed_because,
    )


def extend_checkov_skips(cloudformation: dict[str, Any], sam_template: dict[str, Any]) -> dict[str, Any]:
    """A copy of `cloudformation` where each resource SAM generated from a SAM resource with `Metadata.checkov` (not
    in the source template, and its logical ID starts with that resource's, e.g. InteractionsFunctionUrl from
    InteractionsFunction) carries those skips too."""
    scanned = copy.deepcopy(cloudformation)
    declared = {logical_id for logical_id, _ in _resources(sam_template)}
    sources = {
        logical_id: resource["Metadata"]["checkov"]
        for logical_id, resource in _resources(sam_template)
        if str(resource.get("Type", "")).startswith("AWS::Serverless::")
        and isinstance(resource.get("Metadata"), dict)
        and "checkov" in resource["Metadata"]
    }
    for logical_id, resource in _resources(scanned):
        if logical_id in declared:
            continue
        owner = max((source for source in sources if logical_id.startswith(source)), key=len, default=None)
        if owner is not None:
            resource.setdefault("Metadata", {})["checkov"] = copy.deepcopy(sources[owner])
    return scanned


def check(path: Path, *, checkov: Path | None = None) -> CheckResult:
    """Load, translate (SAM) and lint one template, and scan it with `checkov` when given.

    Raises `UnreadableTemplateError` if it cannot be parsed."""
    source = load_template(path)
    findings = check_local_paths(source, path.parent)
    try:
        cloudformation = translate(source) if is_sam(source) else source
    except TranslationError as exc:
        findings.extend(Finding("SAM", "error", message, "") for message in exc.messages)
        return CheckResult({}, tuple(findings))
    findings.extend(lint(cloudformation))
    if checkov is not None:
        findings.extend(policy_scan(cloudformation, source, checkov))
    return CheckResult(cloudformation, tuple(findings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("templates", nargs="*", default=[Path("template.yaml")], type=Path, metavar="template")
    parser.add_argument("--checkov", type=Path, help="checkov executable: scan the translated templates too")
    args = parser.parse_args(argv)
    status = 0
    for path in args.templates:
        status = max(status, _check_one(path, args.checkov))
    return status


def _check_one(path: Path, checkov: Path | None) -> int:
    try:
        result = check(path, checkov=checkov)
    except UnreadableTemplateError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 2
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"{path}: checkov: {exc}", file=sys.stderr)
        return 2
    for finding in result.findings:
        print(finding.render(str(path)))
    if not result.ok:
        failing = sum(finding.fails for finding in result.findings)
        print(f"{path}: template check failed: {failing} finding(s)", file=sys.stderr)
        return 1
    justified = sum(1 for finding in result.findings if finding.rule.startswith("checkov:"))
    scanned = f"; checkov clean ({justified} justified inline)" if checkov is not None else ""
    print(f"{path}: template ok: {len(result.cloudformation.get('Resources', {}))} resources after transform{scanned}")
    return 0


def _resources(template: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    resources = template.get("Resources")
    if isinstance(resources, dict):
        for logical_id, resource in resources.items():
            if isinstance(resource, dict):
                yield logical_id, resource


if __name__ == "__main__":
    sys.exit(main())
