"""`medic` never shows a traceback for the operator's mistake or the environment's: no region, no credentials, no
tables configured, AWS refusing a call, a scenario's bad `settings:`, a reader that went away (`medic … | head`).
Each is one line on stderr and exit 2 (a closed pipe: quiet, as Unix tools are); a bug keeps its traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from moto import mock_aws

from medic_tools.cli import EXIT_BROKEN_PIPE, _parser, environment_problem, main

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / "scenarios" / "spillover-fixed-floor.yaml"
PLANS, EVENTS = "medic-plans", "medic-events"

COMMANDS = [
    ["control", "status"],
    ["control", "kill-switch", "on", "--by", "U0ONCALL", "--reason", "incident 42"],
    ["control", "breaker-reset", "--by", "U0ONCALL"],
    ["log", "list"],
    ["log", "show", "p-0123456789abcdef"],
    ["log", "verify"],
    ["log", "export", "--format", "jsonl"],
]
IDS = [" ".join(argv[:2]) for argv in COMMANDS]


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An operator's shell with the tables configured, and no AWS configuration beyond what each test sets: no
    files, no profile, no instance or container credentials to fall back on."""
    for name in [name for name in os.environ if name.startswith(("AWS_", "MEDIC_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MEDIC_PLANS_TABLE", PLANS)
    monkeypatch.setenv("MEDIC_EVENTS_TABLE", EVENTS)
    return monkeypatch


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line:\n{err}"
    assert "Traceback" not in err
    return err.strip()


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_without_a_region_the_command_says_how_to_set_one(
    environment: pytest.MonkeyPatch, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    environment.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    assert main(argv) == 2

    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"medic: {' '.join(argv[:2])}: no AWS region configured: set AWS_REGION"), line


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_without_credentials_the_command_says_where_they_come_from(
    environment: pytest.MonkeyPatch, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("AWS_REGION", "eu-west-1")
    environment.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached: signing fails first

    assert main(argv) == 2

    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"medic: {' '.join(argv[:2])}: no AWS credentials found: set AWS_PROFILE"), line


@pytest.mark.parametrize("missing", ["MEDIC_PLANS_TABLE", "MEDIC_EVENTS_TABLE"])
@pytest.mark.parametrize("argv", [["control", "status"], ["log", "list"]], ids=["control", "log"])
def test_without_the_tables_configured_the_command_names_the_variable(
    environment: pytest.MonkeyPatch, argv: list[str], missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.delenv(missing)

    assert main(argv) == 2

    assert one_line(capsys.readouterr().err) == f"medic: environment: {missing}: not set"


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_tables_that_do_not_exist_name_the_call_and_the_tables(
    environment: pytest.MonkeyPatch, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("AWS_REGION", "us-east-1")
    environment.setenv("AWS_ACCESS_KEY_ID", "testing")
    environment.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():  # an account without Medic's tables (another region's stack, a typo in the name)
        status = main(argv)

    assert status == 2
    line = one_line(capsys.readouterr().err)
    assert "AWS refused " in line and "(ResourceNotFoundException: " in line, line
    assert f"tables {PLANS} (MEDIC_PLANS_TABLE) and {EVENTS} (MEDIC_EVENTS_TABLE), in us-east-1" in line


class _Refusing(BaseHTTPRequestHandler):
    """DynamoDB as it answers a principal without the permission (the JSON protocol's error shape)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        operation = self.headers.get("X-Amz-Target", ".").rsplit(".", 1)[-1]
        body = json.dumps({
            "__type": "com.amazon.coral.service#AccessDeniedException",
            "Message": f"User: arn:aws:iam::123456789012:user/ops is not authorized to perform: dynamodb:{operation} "
                       f"on resource: arn:aws:dynamodb:us-east-1:123456789012:table/{PLANS}",
        }).encode()  # fmt: skip
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_dynamodb() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("argv", [["control", "status"], ["log", "list"], ["log", "show", "p-0123456789abcdef"]],
                         ids=["control", "log list", "log show"])  # fmt: skip
def test_access_denied_names_the_call_and_says_what_aws_said(
    environment: pytest.MonkeyPatch, refusing_dynamodb: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_ENDPOINT_URL": refusing_dynamodb}.items():  # fmt: skip
        environment.setenv(name, value)

    assert main(argv) == 2

    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"medic: {' '.join(argv[:2])}: AWS refused "), line
    assert "(AccessDeniedException: User: arn:aws:iam::123456789012:user/ops is not authorized to perform: " in line
    assert f"tables {PLANS} (MEDIC_PLANS_TABLE) and {EVENTS} (MEDIC_EVENTS_TABLE), in us-east-1" in line


# -- the stack named by --stack ---------------------------------------------------------------------------------------


class _RefusingCloudFormation(BaseHTTPRequestHandler):
    """CloudFormation as it answers a principal without cloudformation:DescribeStacks (the query protocol's XML)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
            b"arn:aws:iam::123456789012:user/ops is not authorized to perform: cloudformation:DescribeStacks</Message>"
            b"</Error><RequestId>1</RequestId></ErrorResponse>"
        )
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("argv", [["control", "status"], ["log", "list"]], ids=["control", "log"])
def test_a_stack_aws_will_not_describe_names_the_call_and_the_stack(
    environment: pytest.MonkeyPatch, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingCloudFormation)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name, value in {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}"}.items():  # fmt: skip
        environment.setenv(name, value)
    try:
        assert main([*argv, "--stack", "payments-medic"]) == 2
    finally:
        server.shutdown()
        server.server_close()

    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"medic: {' '.join(argv)}: AWS refused DescribeStacks (AccessDenied: User: "), line
    assert line.endswith(" — reading the outputs of stack payments-medic, in eu-west-1"), line


def test_a_stack_without_a_region_says_how_to_set_one(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    environment.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    assert main(["log", "list", "--stack", "payments-medic"]) == 2

    assert one_line(capsys.readouterr().err).startswith("medic: log list: no AWS region configured: set AWS_REGION")


def test_only_the_environments_errors_are_told_a_bug_keeps_its_traceback() -> None:
    from botocore.exceptions import ClientError, NoRegionError, ParamValidationError

    args = _parser().parse_args(["log", "list"])
    refused = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Query")

    assert environment_problem(NoRegionError(), args) is not None
    assert environment_problem(refused, args) is not None
    assert environment_problem(ParamValidationError(report="Missing required parameter"), args) is None
    assert environment_problem(KeyError("plan_id"), args) is None
    assert environment_problem(TypeError("unhashable type"), args) is None


# -- a scenario's settings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field", "problem"),
    [
        ("{dry_runn: true}", "settings.dry_runn", "unknown setting; known: "),
        ("{plans_table: mine}", "settings.plans_table", "set by the simulator"),
        ("{region: eu-west-1}", "settings.region", "set by the simulator"),
        ("{dry_run: perhaps}", "settings.dry_run", "Input should be a valid boolean"),
        ("{max_memory_mb: 64}", "settings.max_memory_mb", "greater than or equal to 128"),
        ("{two_person_actions: 3}", "settings.two_person_actions", "valid tuple"),
        ("[dry_run]", "settings", "valid dictionary"),
    ],
)
def test_a_scenarios_bad_settings_are_refused_naming_the_field_and_file(
    tmp_path: Path, settings: str, field: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "bad-settings.yaml"
    scenario.write_text(FLOOR.read_text() + f"settings: {settings}\n")

    assert main(["simulate", str(scenario)]) == 2

    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"medic: {scenario}: {field}: "), line
    assert problem in line


# -- a reader that went away -----------------------------------------------------------------------------------------


def test_output_into_a_closed_pipe_exits_quietly() -> None:
    """`medic runbook schema | head -1`, where head has read its line and gone before medic writes the rest: the
    pipe's read end is closed before medic prints, so every write meets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run([sys.executable, "-m", "medic_tools.cli", "runbook", "schema"], stdout=write_end,
                             stderr=subprocess.PIPE, text=True, check=False, timeout=120)  # fmt: skip
    finally:
        os.close(write_end)

    assert run.stderr == ""
    assert run.returncode == EXIT_BROKEN_PIPE


def test_a_reader_that_stops_after_one_line_gets_it_and_nothing_is_said() -> None:
    process = subprocess.Popen([sys.executable, "-m", "medic_tools.cli", "runbook", "schema"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    process.wait(timeout=120)

    assert first == "{\n"
    assert process.stderr.read() == ""
    assert process.returncode in (0, EXIT_BROKEN_PIPE)  # 0 when it had written everything before the reader left
