"""A deployed Medic, found by its stack's name: `medic control|log|replay --stack NAME`, whatever the stack is called.

The CLI reads the stack's Outputs (`cloudformation:DescribeStacks`) for what a command needs: the remediation log's
tables and the digest bucket (`medic control`, `medic log`), or the triage function whose settings `medic replay`
re-drives with. template.yaml declares every output read here (`tests/unit/test_template.py` keeps them in step).

The stack and the environment must agree: a `MEDIC_*` variable that is set and names something else than the stack's
output is refused, naming both (the command would otherwise read the log, or flip the kill switch, of another
deployment than the one named). A variable the stack has no output for is used as it is.

>>> stack = Stack("payments-medic", "eu-west-1", "UPDATE_COMPLETE", {"PlansTableName": "payments-medic-Plans-1"})
>>> stack.output("PlansTableName")
'payments-medic-Plans-1'
>>> stack.environment(["PlansTableName"], {})
{'MEDIC_PLANS_TABLE': 'payments-medic-Plans-1'}
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medic.errors import InputError

if TYPE_CHECKING:
    from medic.aws import AwsClients

#: The outputs that name a setting of Medic's → that setting's environment variable (medic.config.ENV_VARS).
SETTING_OUTPUTS: dict[str, str] = {
    "PlansTableName": "MEDIC_PLANS_TABLE",
    "EventsTableName": "MEDIC_EVENTS_TABLE",
    "DigestBucketName": "MEDIC_DIGEST_BUCKET",
}
#: The remediation log's tables: what `medic control` and `medic log` cannot do without.
LOG_OUTPUTS = ("PlansTableName", "EventsTableName")
#: The function whose settings `medic replay --stack` re-drives with, as `--settings-from FUNCTION` does.
TRIAGE_FUNCTION_OUTPUT = "TriageFunctionName"
#: Every output the CLI reads.
CLI_OUTPUTS = (*SETTING_OUTPUTS, TRIAGE_FUNCTION_OUTPUT)


class StackError(InputError):
    """The stack named by `--stack` cannot tell a command what it needs: it does not exist (in this Region), it lacks
    an output, or an output disagrees with a `MEDIC_*` variable. `output` is empty when the stack as a whole is."""

    def __init__(self, stack: str, problem: str, output: str = "") -> None:
        super().__init__(field=f"Outputs.{output}" if output else "--stack", source=f"stack {stack}", problem=problem)
        self.stack = stack
        self.output = output

    def __str__(self) -> str:
        return f"stack {self.stack}: {f'output {self.output}: ' if self.output else ''}{self.problem}"


@dataclass(frozen=True)
class Stack:
    """A deployed stack: its name, Region, status and outputs (key → value)."""

    name: str
    region: str
    status: str
    outputs: Mapping[str, str]

    def output(self, key: str) -> str:
        """The output's value; `StackError` naming the stack and the output when there is none."""
        value = self.outputs.get(key)
        if not value:
            raise StackError(self.name, self._absent(), key)
        return value

    def environment(
        self, required: Iterable[str], environ: Mapping[str, str], optional: Iterable[str] = ()
    ) -> dict[str, str]:
        """`environ` with the settings these outputs name filled in (`SETTING_OUTPUTS`): a `required` output the stack
        lacks is refused unless its variable is set; a set variable must agree with the output."""
        filled = dict(environ)
        for key in (*required, *optional):
            variable = SETTING_OUTPUTS[key]
            given, value = environ.get(variable, ""), self.outputs.get(key, "")
            if not value:
                if given or key not in required:
                    continue
                raise StackError(self.name, f"{self._absent()}; or set {variable}", key)
            if given and given != value:
                problem = f"is {value!r}, but {variable} is {given!r}: unset {variable}, or leave out --stack"
                raise StackError(self.name, problem, key)
            filled[variable] = value
        return filled

    def _absent(self) -> str:
        known = ", ".join(sorted(self.outputs)) or "none"
        return (
            f"missing (status {self.status}, outputs: {known}): not a Medic stack, or one deployed from an older "
            "template.yaml"
        )


def describe_stack(name: str, clients: AwsClients | None = None) -> Stack:
    """The stack `name` (or its ARN) in the configured Region; `StackError` when there is none."""
    from botocore.exceptions import ClientError

    from medic.aws import AwsClients

    clients = clients or AwsClients(region=os.environ.get("AWS_REGION") or None)
    cloudformation = clients.client("cloudformation")
    region = cloudformation.meta.region_name
    try:
        [found] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") != "ValidationError":
            raise  # access denied, throttled…: the CLI tells AWS's refusal as it tells any other
        message = str(error.get("Message", ""))
        problem = (
            f"no such stack in {region} (check --stack, and AWS_REGION or the profile's Region)"
            if "does not exist" in message
            else message
        )
        raise StackError(name, problem) from None
    outputs = {str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in found.get("Outputs", [])}
    return Stack(name, region, str(found.get("StackStatus", "?")), outputs)
