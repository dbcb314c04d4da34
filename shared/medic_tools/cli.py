"""The `medic` command: `medic simulate`, `medic explain`, `medic runbook check|schema`, `medic schema`,
`medic control`, `medic log list|show|verify|export|template-updated`, `medic replay`, `medic backtest`,
`medic alarms`."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from medic.errors import InputError

if TYPE_CHECKING:
    from medic.config import Settings
    from medic.ledger.store import Ledger, UnreadableItem, UnreadableRecord
    from medic.planning.runbook import ExampleResult, Runbook
    from medic.runtime import Runtime

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
#: What a shell reports for a command killed by SIGPIPE (128 + 13), as `yes | head -1` does for `yes`.
EXIT_BROKEN_PIPE = 141
#: `medic schema KIND`: the function that makes each JSON Schema (module, name), imported when asked. The files checked
#: in (runbooks/runbook.schema.json, docs/schemas/) are their output, kept current by the tests.
SCHEMAS: dict[str, tuple[str, str]] = {
    "runbook": ("medic.planning.runbook", "runbook_schema"),
    "scenario": ("medic_tools.scenario", "scenario_schema"),
    "facts": ("medic.planning.explain", "facts_schema"),
    "backtest": ("medic_tools.backtest.model", "backtest_schema"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A mistake in what the operator gave (a file, an argument, a setting) or in the environment (no
    region, no credentials, AWS refusing a call) exits 2 with one line on stderr; anything else is a bug and keeps
    its traceback."""
    args = _parser().parse_args(argv)
    try:
        status = _run(args)
        sys.stdout.flush()  # a reader gone (`medic … | head`) shows here, inside the try, not at exit
        return status
    except BrokenPipeError:
        # Quiet, as Unix tools are: Python would flush stdout again at exit and print "Exception ignored … Broken
        # pipe", so the descriptor points at /dev/null from now on.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except InputError as exc:
        print(f"medic: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:
        problem = environment_problem(exc, args)
        if problem is None:
            raise
        print(f"medic: {problem}", file=sys.stderr)
        return EXIT_INVALID


def version() -> str:
    """The installed distribution's version (`pip install`, `make`'s editable install); from a source tree that was
    never installed (e.g. `PYTHONPATH=shared`), the package's own `__version__`, saying so."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("medic")
    except PackageNotFoundError:
        import medic

        return f"{medic.__version__} (not installed: from {Path(medic.__file__).resolve().parent})"


class _Version(argparse.Action):
    """`--version`, looked up only when asked (metadata is read from disk)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"medic {version()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medic", description="Remediation of AWS Lambda latency and throughput.")
    parser.add_argument("--version", action=_Version, help="print medic's version and exit")
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="run scenarios on a fresh embedded AWS world")
    simulate.add_argument("scenarios", nargs="+", metavar="SCENARIO.yaml")
    simulate.add_argument("--decide", choices=("approve", "reject", "none"), default="approve")
    simulate.add_argument("--json", action="store_true", help="print the contract JSON only (docs/SCENARIOS.md)")
    verbose_help = "tell each scenario's whole story and show its Slack cards, then the summary"
    simulate.add_argument("--verbose", "-v", action="store_true", help=verbose_help)
    simulate.add_argument("--no-block-json", action="store_true", help="with --verbose: not the cards' Block Kit JSON")
    simulate.add_argument("--check", action="store_true", help="exit 1 when a scenario's `expect:` does not hold")
    simulate.add_argument(
        "--backtest",
        action="store_true",
        help="then backtest each world (medic backtest) and sum it up under the summary",
    )

    explain = commands.add_parser("explain", help="print the decision trace for a scenario or an alarm event")
    explain.add_argument("path", metavar="SCENARIO.yaml|EVENT.json")
    explain.add_argument("--facts", metavar="FACTS.json", help="for an EVENT: decide on these facts, not live AWS")
    explain.add_argument("--override", action="append", default=[], metavar="FILE", help="runbook override layer")
    explain.add_argument("--runbook", default=None, metavar="FILE", help="the base runbook (default: the shipped one)")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON (docs/RUNBOOK.md)")

    runbook = commands.add_parser("runbook", help="runbook tools")
    runbook_commands = runbook.add_subparsers(dest="runbook_command", required=True)
    check = runbook_commands.add_parser("check", help="validate a runbook and run its examples")
    check.add_argument("file", nargs="?", default=None)
    check.add_argument("--override", action="append", default=[], metavar="FILE", help="runbook override layer")
    check.add_argument("--json", action="store_true", help="print the result as JSON (docs/RUNBOOK.md)")
    runbook_commands.add_parser("schema", help="print the runbook JSON Schema (for editors): medic schema runbook")

    schema = commands.add_parser("schema", help="print the JSON Schema of a file medic reads (docs/schemas/)")
    schema_help = "a runbook, a scenario, the facts of explain --facts, or the document of backtest --json"
    schema.add_argument("kind", choices=tuple(SCHEMAS), help=schema_help)

    control = commands.add_parser("control", help="the kill switch and the circuit breaker (MEDIC_* tables or --stack)")
    control_commands = control.add_subparsers(dest="control_command", required=True)
    control_commands.add_parser("status", help="print the controls' state as JSON")
    switch = control_commands.add_parser("kill-switch", help="turn the kill switch on or off")
    switch.add_argument("state", choices=("on", "off"))
    reset = control_commands.add_parser("breaker-reset", help="close the circuit breaker after fixing the cause")
    for sub in (switch, reset):
        sub.add_argument("--by", required=True, help="who (a Slack user id or a name): it is logged")
        sub.add_argument("--reason", default="", help="why: it is logged and shown on refused plans")
    for sub in control_commands.choices.values():
        _stack_argument(sub)

    log = commands.add_parser("log", help="the remediation log (MEDIC_PLANS_TABLE, MEDIC_EVENTS_TABLE, or --stack)")
    log_commands = log.add_subparsers(dest="log_command", required=True)
    since_help = "only plans created or changed since then: a duration back from now (30m, 24h, 7d) or ISO"
    listing = log_commands.add_parser("list", help="plans, newest first")
    listing.add_argument("--function", metavar="F", help="only plans about this Lambda function")
    listing.add_argument("--since", metavar="24h|7d|ISO", help=since_help)
    listing.add_argument("--state", metavar="S", help="only plans in this state (e.g. APPLIED)")
    show = log_commands.add_parser(
        "show",
        help="the whole story of one plan, in order, and its chain's status; "
        "without PLAN, the fixes still waiting for their CloudFormation "
        "template",
    )
    show.add_argument("plan", metavar="PLAN", nargs="?")
    verify = log_commands.add_parser(
        "verify", help="recompute the hash chains, check them against the digests; exit 1 when one is broken"
    )
    verify.add_argument("--plan", metavar="ID", help="only this plan's chain (default: every chain)")
    verify.add_argument(
        "--digest-bucket",
        metavar="BUCKET",
        help="the Object Lock bucket of the log's digests (default: MEDIC_DIGEST_BUCKET, or "
        "the stack's DigestBucketName with --stack)",
    )
    for sub in (listing, show, verify):
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")
    updated = log_commands.add_parser(
        "template-updated",
        help="say that a plan's changes are in its function's CloudFormation template now (it stops waiting)",
    )
    updated.add_argument("plan", metavar="PLAN")
    updated.add_argument("--by", required=True, help="who (a Slack user id or a name): it is logged")
    export = log_commands.add_parser("export", help="every record of the plans in range, as JSON lines or CSV")
    export.add_argument("--format", required=True, choices=("jsonl", "csv"))
    export.add_argument("--since", metavar="24h|7d|ISO", help=since_help)
    export.add_argument("--output", metavar="FILE", help="write to FILE (default: stdout)")
    for sub in log_commands.choices.values():
        _stack_argument(sub)

    from medic_tools import promotions as promoting

    promotions = commands.add_parser("promotions", help="scopes proposed for or promoted to mode auto (the log)")
    promoting.add_arguments(promotions)
    _stack_argument(promotions)

    from medic_tools import replay as replaying

    replay_help = "re-drive DLQ messages, saved events and rejected inputs through the pipeline (a dry run by default)"
    replaying.add_arguments(commands.add_parser("replay", help=replay_help))

    from medic_tools.backtest import arguments as backtest_arguments

    backtest_help = "what Medic would have done with a past period's alarms, and what a runbook change alters"
    backtest_arguments.add_arguments(commands.add_parser("backtest", help=backtest_help))

    alarms = commands.add_parser("alarms", help="the recommended CloudWatch alarms for a function (and its database)")
    alarms.add_argument("function", metavar="FUNCTION")
    alarms.add_argument("--alias", help="the alias that serves traffic (adds the spillover and PC-idle alarms)")
    alarms.add_argument("--p99-ms", type=float, default=1000.0, help="the latency objective for p99 Duration")
    alarms.add_argument("--database", help="a DB instance the function connects to")
    alarms.add_argument("--max-connections", type=int, help="that database's max_connections")
    alarms.add_argument("--prefix", default="", help="prefix for the alarm names")
    alarms.add_argument("--format", choices=("cloudformation", "cli", "scenario", "json"), default="cloudformation")

    return parser


def _stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="the deployed Medic's stack: its outputs name the log's tables and the digest bucket (docs/deploy.md)",
    )


def _run(args: argparse.Namespace) -> int:
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "explain":
        return _explain(args)
    if args.command == "control":
        return _control(args)
    if args.command == "alarms":
        from medic_tools.alarms_gen import recommended, render

        definitions = recommended(
            args.function,
            alias=args.alias,
            p99_ms=args.p99_ms,
            database=args.database,
            max_connections=args.max_connections,
            prefix=args.prefix,
        )
        sys.stdout.write(render(definitions, args.format))
        return EXIT_OK
    if args.command == "log":
        return _log(args)
    if args.command == "promotions":
        from medic.runtime import Runtime
        from medic_tools import promotions

        return promotions.run(args, Runtime(_settings(args)))
    if args.command == "replay":
        from medic_tools import replay

        return replay.run(args)
    if args.command == "backtest":
        from medic_tools.backtest import run as backtesting

        return backtesting.run(args)
    if args.command == "schema" or args.runbook_command == "schema":
        module, function = SCHEMAS[getattr(args, "kind", "runbook")]
        print(json.dumps(getattr(importlib.import_module(module), function)(), indent=2))
        return EXIT_OK
    return _runbook_check(args.file, args.override, as_json=args.json)


def environment_problem(exc: Exception, args: argparse.Namespace) -> str | None:
    """The line that tells the operator what to fix when `exc` comes from the environment: no region, no credentials
    (or an expired session), AWS unreachable, or AWS refusing a call (which call, the code, and what the command was
    reading). None for anything else: a bug keeps its traceback."""
    exceptions = sys.modules.get("botocore.exceptions")
    if exceptions is None:  # botocore was never imported: not one of its errors (and no import just to ask)
        return None
    command = " ".join(part for part in (args.command, getattr(args, f"{args.command}_command", None)) if part)
    if isinstance(exc, exceptions.ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        return f"{command}: AWS refused {exc.operation_name} ({code}{': ' + message if message else ''})" + (
            f" — {what}" if (what := _aws_resources(args)) else ""
        )
    if isinstance(exc, exceptions.NoRegionError):
        return f"{command}: no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"
    if isinstance(exc, exceptions.NoCredentialsError):
        return (
            f"{command}: no AWS credentials found: set AWS_PROFILE (then `aws sso login` if it uses SSO) or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    environment = (
        exceptions.PartialCredentialsError,
        exceptions.ProfileNotFound,
        exceptions.CredentialRetrievalError,
        exceptions.SSOError,
        exceptions.TokenRetrievalError,
        exceptions.InvalidRegionError,
        exceptions.ConnectionError,
        exceptions.HTTPClientError,
    )
    if isinstance(exc, environment):
        return f"{command}: {exc}"
    return None


def _aws_resources(args: argparse.Namespace) -> str:
    """What the command was reading or writing, from the same environment the command read (for a refusal's line)."""
    if args.command not in ("control", "log"):
        return ""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    where = f", in {region}" if region else ""
    stack = getattr(args, "stack", None)
    environ: Mapping[str, str] | None = getattr(args, "environment", None)
    if environ is None:
        if stack:  # refused before its outputs were read
            return f"reading the outputs of stack {stack}{where}"
        environ = os.environ
    named = f", named by stack {stack}'s outputs" if stack else ""
    parts = [
        f"the remediation log's tables {environ.get('MEDIC_PLANS_TABLE')} (MEDIC_PLANS_TABLE) and "
        f"{environ.get('MEDIC_EVENTS_TABLE')} (MEDIC_EVENTS_TABLE){named}"
    ]
    bucket = getattr(args, "digest_bucket", None) or (
        environ.get("MEDIC_DIGEST_BUCKET") if getattr(args, "log_command", None) == "verify" else None
    )
    if bucket:
        parts.append(f"the digest bucket {bucket}")
    return ", ".join(parts) + where


def _simulate(args: argparse.Namespace) -> int:
    """Each scenario on a fresh world, in turn: progress on stderr (several scenarios), a summary line per scenario on
    stdout (the story and the cards with --verbose; the contract JSON alone with --json). A scenario that is invalid
    or fails does not stop the others: every failure is told at the end, and the exit status is 2 when one was
    invalid, else 1 when one failed (or, with --check, missed its `expect:`)."""
    from contextlib import ExitStack

    from medic_tools.scenario import load_scenario
    from medic_tools.simulate import simulate
    from medic_tools.world.server import EmbeddedAWS

    refused: dict[str, InputError] = {}
    for path in args.scenarios:
        try:
            load_scenario(path)  # an invalid file is told without starting a world for it
        except InputError as exc:
            refused[path] = exc
    story = sys.stdout if args.verbose and not args.json else None
    with ExitStack() as stack:
        world = stack.enter_context(EmbeddedAWS()) if len(refused) < len(args.scenarios) else None

        def run_one(path: str) -> dict[str, Any]:
            if path in refused:
                raise refused[path]
            outcome = simulate(
                path,
                decide=args.decide,
                stream=story,
                show_json=not args.no_block_json,
                aws=world,
                backtest=args.backtest,
            )
            return outcome.contract()

        runs = run_scenarios(args.scenarios, run_one, progress=sys.stderr if len(args.scenarios) > 1 else None)
    documents = [run.document for run in runs if run.document is not None]
    if args.json:
        if len(args.scenarios) > 1 or documents:
            print(json.dumps(documents if len(args.scenarios) > 1 else documents[0], indent=2, default=str))
    else:
        if args.verbose:
            print("\n━━ Summary " + "━" * 70)
        print(summary_table(runs))
        if line := template_line(runs):
            print(line)
        for line in promotion_lines(runs):
            print(line)
        if args.backtest:
            print(backtest_line(runs))
    failures = [run for run in runs if run.failed(check=args.check)]
    if len(runs) > 1 and failures:
        print(f"medic: {len(failures)} of {len(runs)} scenarios failed:", file=sys.stderr)
    for run in failures:
        for line in run.failure_lines():
            print(f"medic: {line}", file=sys.stderr)
    if any(run.invalid for run in runs):
        return EXIT_INVALID
    return EXIT_FAILED if failures else EXIT_OK


@dataclass
class ScenarioRun:
    """One scenario of `medic simulate`: its contract JSON, how it differs from its `expect:`, or why it did not run."""

    path: str
    document: dict[str, Any] | None = None
    expect: list[str] | None = None  # None: the scenario has no `expect:`
    error: str = ""  # the one line saying why it did not finish
    invalid: bool = False  # the error is in what the scenario says (exit 2), not a failure of the run

    @property
    def verdict(self) -> str:
        if self.error:
            return "invalid" if self.invalid else "error"
        return "expect failed" if self.expect else "ok"

    def failed(self, *, check: bool) -> bool:
        return bool(self.error) or (check and bool(self.expect))

    def failure_lines(self) -> list[str]:
        if self.error:
            return [f"{self.path}: {self.error}"]
        return [f"{self.path}: expect: {problem}" for problem in self.expect or ()]


def run_scenarios(
    paths: Sequence[str], run_one: Callable[[str], dict[str, Any]], progress: IO[str] | None = None
) -> list[ScenarioRun]:
    """`run_one` over each scenario, in order, telling `progress` (`[3/40] scenarios/x.yaml … ok (4.2 s)`). One that
    raises does not stop the others: an `InputError` is recorded as its one line; any other exception is a bug, its
    traceback printed to stderr as it happens, and recorded as failed."""
    runs = []
    for index, path in enumerate(paths, 1):
        started = time.monotonic()
        run = ScenarioRun(path)
        try:
            run.document = run_one(path)
            run.expect = _expectation(path, run.document)
        except BrokenPipeError:
            raise  # the reader is gone: main() stops quietly
        except InputError as exc:
            run.error, run.invalid = (f"{exc.field}: {exc.problem}" if exc.source == path else str(exc)), True
        except Exception as exc:  # noqa: BLE001 - one scenario's bug must not hide the others' results; it is shown
            traceback.print_exc(file=sys.stderr)
            run.error = f"{type(exc).__name__}: {exc} (traceback above)"
        runs.append(run)
        if progress is not None:
            elapsed = time.monotonic() - started
            print(f"[{index}/{len(paths)}] {path} … {run.verdict} ({elapsed:.1f} s)", file=progress, flush=True)
    return runs


def summary_table(runs: Sequence[ScenarioRun]) -> str:
    """One line per scenario, columns aligned: scenario, signal/diagnosis, the plan's final state, the expectation
    (ok, FAILED, — when there is none; INVALID or ERROR when it did not run) and the plan's changes or the error."""
    rows = [("scenario", "signal/diagnosis", "state", "expect", "plan")]
    for run in runs:
        if run.document is None:
            rows.append((run.path, "—", "—", run.verdict.upper(), run.error))
            continue
        plans: list[dict[str, Any]] = run.document["plans"]
        expect = "—" if run.expect is None else "FAILED" if run.expect else "ok"
        if run.expect:
            expect += " (" + "; ".join(run.expect) + ")"
        diagnosis = " | ".join(f"{plan['signal']}/{plan['diagnosis'] or '—'}" for plan in plans) or "—"
        state = " | ".join(str(plan["status"]) for plan in plans) or "no plan"
        changes = " | ".join(_plan_changes(plan) for plan in plans)
        rows.append((run.path, diagnosis, state, expect, changes))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[4]]).rstrip()
        for row in rows
    )


def template_line(runs: Sequence[ScenarioRun]) -> str:
    """`medic simulate`'s line under the summary when a fix changed a function a CloudFormation stack manages: how
    many such changes, what to set in the template (the first), and how many a later deploy undid (the verifier's
    `reverted_by_deploy`); empty when there were none."""
    from medic.stacks import REVERTED_RECORD, WARNING_RECORD, TemplateWarning

    log = [event for run in runs for event in (run.document or {}).get("log", [])]
    applied = {event["plan_id"] for event in log if event["kind"] == "applied"}
    warnings = [
        TemplateWarning.model_validate(event["data"])
        for event in log
        if event["kind"] == WARNING_RECORD and event["plan_id"] in applied
    ]
    if not warnings:
        return ""
    reverted = sum(1 for event in log if event["kind"] == REVERTED_RECORD)
    count = f"{len(warnings)} change{'s' if len(warnings) != 1 else ''}"
    return (
        f"templates: {count} outside a CloudFormation template (e.g. the next deploy of stack "
        f"{warnings[0].stack} undoes it: set {warnings[0].setting()}), {reverted} undone by a later deploy and "
        "told by the verifier"
    )


def promotion_lines(runs: Sequence[ScenarioRun]) -> list[str]:
    """`medic simulate`'s lines under the summary for the worlds where a runbook row earned mode auto on a target (a
    scenario whose incident `recurs`: medic.promotions), as each world's log holds it."""
    lines = []
    for run in runs:
        for promotion in (run.document or {}).get("promotions") or []:
            if not promotion["evidence"]:  # a scope whose evidence restarted (a plan of it failed): nothing proposed
                lines.append(
                    f"promotion: {promotion['row']} on {promotion['target']}: none proposed; its evidence "
                    f"restarted after a plan of it failed, rolled back or drifted ({promotion['state']})"
                )
                continue
            line = (
                f"promotion: {promotion['row']} on {promotion['target']} proposed after "
                f"{len(promotion['evidence'])} verified human approvals ({', '.join(promotion['evidence'])}), "
                f"{promotion['state']}"
            )
            if promotion["approvers"]:
                line += f" (approved by {' and '.join(promotion['approvers'])})"
            auto = promotion["applied_in_auto"]
            if auto:
                plural = "s" if len(auto) != 1 else ""
                line += f"; then {len(auto)} plan{plural} applied in mode auto ({', '.join(auto)})"
            lines.append(line)
    return lines


def backtest_line(runs: Sequence[ScenarioRun]) -> str:
    """`medic simulate --backtest`'s line under the summary: the backtests of every world run, summed."""
    totals: dict[str, int] = {}
    for run in runs:
        for key, value in ((run.document or {}).get("backtest") or {}).items():
            totals[key] = totals.get(key, 0) + value
    line = (
        f"backtest: {totals.get('alarm_transitions', 0)} ALARM transitions, {totals.get('replayed', 0)} decisions "
        f"replayed, {totals.get('equal_to_log', 0)} equal to the log"
    )
    differ, changed = totals.get("differ_from_log", 0), totals.get("differ_after_a_change", 0)
    if differ:
        line += f", {differ} differ ({changed} after a fix applied since: configuration facts are today's)"
    return line + f"; {totals.get('calls', 0)} AWS calls, all reads"


def _plan_changes(plan: dict[str, Any]) -> str:
    actions = plan["actions"]
    changes = [
        f"{a['kind']} {a['target']} {_value(a['before'])} → {_value(a['after'])}"
        for a in actions
        if a["kind"] != "advise"
    ]
    advice = sum(1 for action in actions if action["kind"] == "advise")
    if advice:
        changes.append("advice" if advice == 1 else f"{advice} pieces of advice")
    return ", ".join(changes) or "no change"


def _value(value: object) -> str:
    return "unset" if value is None else str(value)  # e.g. no reserved concurrency, no maximum concurrency


def expectation_problems(path: str, document: dict[str, Any]) -> list[str]:
    """How a run's contract JSON differs from the scenario's `expect:` (empty when it holds)."""
    return _expectation(path, document) or []


def _expectation(path: str, document: dict[str, Any]) -> list[str] | None:
    """`expectation_problems`, or None when the scenario has no `expect:`."""
    from medic_tools.scenario import load_scenario

    expect = load_scenario(path).expect
    plans = document.get("plans")
    if expect is None:
        return None
    if not isinstance(plans, list) or not plans:
        return ["no plan was made"]
    plan = plans[0]
    problems = []
    for key in ("signal", "diagnosis", "status", "mode"):
        wanted = getattr(expect, key)
        if wanted is not None and plan.get(key) != wanted:
            problems.append(f"{key} is {plan.get(key)!r}, expected {wanted!r}")
    if expect.actions is not None:
        kinds = [action["kind"] for action in plan.get("actions", [])]
        if kinds != expect.actions:
            problems.append(f"actions are {kinds}, expected {expect.actions}")
    return problems


def _runbook_check(path: str | None, overrides: Sequence[str] = (), as_json: bool = False) -> int:
    """Validate a runbook (and its override layers) and run its examples: exit 0, 1 when an example fails, 2 when the
    runbook is refused. With `as_json`, `runbook_check_json`'s document on stdout in every case."""
    from medic.config import DEFAULT_RUNBOOK
    from medic.planning.runbook import load_runbook, run_examples

    files = [str(path or DEFAULT_RUNBOOK), *map(str, overrides)]
    try:
        runbook = load_runbook(files[0], overrides)
    except InputError as exc:
        if not as_json:
            raise
        print(json.dumps(runbook_check_json(files, None, [], exc), indent=2, ensure_ascii=False))
        print(f"medic: {exc}", file=sys.stderr)
        return EXIT_INVALID
    results = run_examples(runbook)
    failed = sum(1 for result in results if not result.passed)
    if as_json:
        print(json.dumps(runbook_check_json(files, runbook, results), indent=2, ensure_ascii=False, default=str))
        return EXIT_FAILED if failed else EXIT_OK
    rows = sum(len(table.rows) for table in runbook.tables.values())
    print(
        f"{runbook.source}: runbook {runbook.name} v{runbook.version} valid: {len(runbook.tables)} tables, {rows} rows"
    )
    for result in results:
        print(f"  {'ok  ' if result.passed else 'FAIL'} {result.name}  [{result.where}]")
        for problem in result.problems:
            print(f"       {problem}")
    print(f"examples: {len(results) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def runbook_check_json(
    files: list[str], runbook: Runbook | None, results: Sequence[ExampleResult], refused: InputError | None = None
) -> dict[str, Any]:
    """`medic runbook check --json` (docs/RUNBOOK.md): the files checked (base, then overrides), whether the layered
    runbook is valid, its tables and rows, each example's outcome with its problems, and why the runbook was refused
    (`problems`: the loader stops at the first, which names its file:line, table, row and field)."""
    passed = sum(1 for result in results if result.passed)
    problems = (
        []
        if refused is None
        else [
            {
                "source": refused.source,
                "field": refused.field,
                "table": getattr(refused, "table", "") or None,
                "row": getattr(refused, "row", "") or None,
                "problem": refused.problem,
                "message": str(refused),
            }
        ]
    )
    return {
        "files": files,
        "valid": runbook is not None,
        "runbook": None if runbook is None else _runbook_json(runbook),
        "tables": None if runbook is None else {name: len(table.rows) for name, table in runbook.tables.items()},
        "rows": None if runbook is None else sum(len(table.rows) for table in runbook.tables.values()),
        "examples": {
            "passed": passed,
            "failed": len(results) - passed,
            "results": [
                {"name": r.name, "where": r.where, "passed": r.passed, "problems": list(r.problems)} for r in results
            ],
        },
        "problems": problems,
    }


def _settings(args: argparse.Namespace) -> Settings:
    """`medic control` and `medic log`'s settings: the environment's, with what `--stack NAME`'s outputs name filled
    in (`medic_tools.stack`: a `MEDIC_*` variable that names something else is refused). The environment the command
    used is
    kept on `args.environment`, for the line that tells AWS's refusals (`environment_problem`)."""
    from medic.config import Settings

    if not args.stack:
        return Settings.from_env()
    from medic_tools.stack import LOG_OUTPUTS, describe_stack

    verify = getattr(args, "log_command", None) == "verify" and not args.digest_bucket
    args.environment = describe_stack(args.stack).environment(
        LOG_OUTPUTS, os.environ, ("DigestBucketName",) if verify else ()
    )
    return Settings.from_env(args.environment)


def _control(args: argparse.Namespace) -> int:
    from medic.clock import SystemClock
    from medic.runtime import Runtime
    from medic.safety import BREAKER_KEY, KILL_SWITCH_KEY, describe

    runtime = Runtime(_settings(args))
    now = SystemClock().now()
    if args.control_command == "kill-switch":
        runtime.safety.set_control(KILL_SWITCH_KEY, args.state == "on", args.by, args.reason, now)
    elif args.control_command == "breaker-reset":
        runtime.safety.set_control(BREAKER_KEY, False, args.by, args.reason, now)
    print(json.dumps(describe(runtime.safety, now), indent=2))
    return EXIT_OK


def _log(args: argparse.Namespace) -> int:
    """`medic log list|show|verify|export` against the tables named by MEDIC_PLANS_TABLE and MEDIC_EVENTS_TABLE, or by
    `--stack NAME`'s outputs (AWS_ENDPOINT_URL points it at the embedded world); AWS's refusals are told by `main`."""
    from medic.clock import SystemClock
    from medic.ledger import audit
    from medic.runtime import Runtime

    since = audit.parse_since(args.since, SystemClock().now()) if getattr(args, "since", None) is not None else None
    runtime = Runtime(_settings(args))
    ledger = runtime.ledger
    if args.log_command == "list":
        plans, unreadable = audit.list_plans_and_problems(ledger, function=args.function, since=since, state=args.state)
        print(json.dumps([audit.plan_row(p) for p in plans], indent=2) if args.json else audit.plans_table(plans))
        for line in audit.unreadable_lines(unreadable):
            print(f"medic: {line}", file=sys.stderr)
        return EXIT_OK
    if args.log_command == "show" and args.plan is None:
        waiting = audit.waiting_for_template(ledger)
        print(json.dumps([item.as_json() for item in waiting], indent=2) if args.json else audit.waiting_text(waiting))
        return EXIT_OK
    if args.log_command == "template-updated":
        return _template_updated(ledger, args.plan, args.by)
    if args.log_command == "show":
        story = audit.load_story(ledger, args.plan)
        print(json.dumps(story.as_json(), indent=2, ensure_ascii=False) if args.json else story.text())
        return EXIT_OK
    if args.log_command == "verify":
        return _log_verify(runtime, args)
    return _log_export(ledger, args.format, since, args.output)


def _template_updated(ledger: Ledger, plan_id: str, by: str) -> int:
    """`medic log template-updated PLAN --by WHO`: the plan's changes are in its stack's template now; logged on its
    chain (`template_updated`), it leaves the fixes waiting for their template."""
    from medic.clock import SystemClock
    from medic.ledger.audit.listing import CLI
    from medic.stacks import UPDATED_RECORD

    plan = ledger.get(plan_id)
    if plan is None or not plan.template_warnings:
        problem = "no such plan" if plan is None else "its changes are on no CloudFormation-managed function"
        raise InputError(field="PLAN", source=CLI, problem=f"{plan_id}: {problem}")
    stacks = sorted({warning.stack for warning in plan.template_warnings})
    ledger.append(plan.id, UPDATED_RECORD, {"stack": ", ".join(stacks), "by": by}, SystemClock().now())
    print(f"{plan.id}: the template of stack {', '.join(stacks)} holds its changes (logged, by {by})")
    return EXIT_OK


def _log_verify(runtime: Runtime, args: argparse.Namespace) -> int:
    """`medic log verify`: the chains, then (with a digest bucket) the digests and the chains against them."""
    from medic.ledger import audit

    reports = audit.verify_chains(runtime.ledger, args.plan)
    bucket = args.digest_bucket or runtime.settings.digest_bucket
    check = None
    if bucket:
        from medic.ledger.digests.store import DigestStore
        from medic_tools.digest_check import check_digests, with_digest_problems

        store = DigestStore(runtime.clients.client("s3"), bucket)
        check = check_digests(store, runtime.ledger, [report.plan_id for report in reports], only=args.plan)
        chosen = {report.plan_id for report in reports}
        reports = [r for r in with_digest_problems(reports, check) if args.plan is None or r.plan_id in chosen]
    if args.json:
        print(json.dumps([report.model_dump(mode="json") for report in reports], indent=2))
    else:
        print(audit.verify_text(reports, one=args.plan is not None))
    stream = sys.stderr if args.json else sys.stdout  # --json prints the chains' reports only, as it always did
    if check is None:
        print("digests: not checked (no digest bucket: set MEDIC_DIGEST_BUCKET or pass --digest-bucket)", file=stream)
    else:
        print(check.summary(), file=stream)
        for problem in check.problems:
            print(f"DIGEST PROBLEM: {problem}", file=stream)
    broken = any(not report.ok for report in reports) or (check is not None and bool(check.problems))
    return EXIT_FAILED if broken else EXIT_OK


def _log_export(ledger: Ledger, fmt: str, since: str | None, output: str | None) -> int:
    from medic.ledger import audit

    unreadable: list[UnreadableItem | UnreadableRecord] = []
    events = audit.export_events(ledger, since=since, unreadable=unreadable)
    if output is None:
        audit.write_export(events, fmt, sys.stdout)
    else:
        try:
            with open(output, "w", encoding="utf-8", newline="") as handle:
                count = audit.write_export(events, fmt, handle)
        except OSError as exc:
            raise InputError(field="--output", source=output, problem=f"cannot write: {exc.strerror or exc}") from None
        print(f"{count} records written to {output}", file=sys.stderr)
    for line in audit.unreadable_lines(unreadable):
        print(f"medic: {line} (not exported)", file=sys.stderr)
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    """The decision trace of a scenario's plans or of an alarm event, as text or (--json) as data: `explain_json`."""
    from medic.config import DEFAULT_RUNBOOK
    from medic.planning.explain import (
        decision_json,
        explain_all,
        explain_decision,
        load_facts_file,
        plan_explanation_json,
    )
    from medic.planning.runbook import decide, load_runbook

    runbook = load_runbook(args.runbook or DEFAULT_RUNBOOK, args.override)
    if args.path.endswith((".yaml", ".yml")):
        from medic_tools.simulate import triage_only

        plans = triage_only(args.path, runbook)
        if args.json:
            print(explain_json(args.path, runbook, [plan_explanation_json(plan, runbook) for plan in plans]))
        else:
            print(explain_all(plans, runbook))
        return EXIT_OK
    from medic.alarms.events import parse_alarm_event
    from medic.alarms.signals import classify

    try:
        with open(args.path, encoding="utf-8") as handle:
            event = parse_alarm_event(handle.read(), source=args.path)
    except OSError as exc:
        raise InputError(field="(root)", source=args.path, problem=f"cannot read: {exc.strerror or exc}") from None
    signal = classify(event)
    explanation: dict[str, Any] = {
        "alarm": event.detail.alarm_name,
        "signal": signal.kind,
        "target": signal.target.display or None,
        "signal_reason": signal.reason,
        "plan": None,
        "no_decision": None,
        "decision": None,
    }
    if not args.json:
        print(
            f"alarm {event.detail.alarm_name} ({event.detail.state.value}) → signal {signal.kind} on "
            f"{signal.target.display}: {signal.reason}"
        )
    undecided = signal.undecided_reason(runbook.tables)
    if undecided is not None:  # as triage: a NOOP, no facts read, no table evaluated
        explanation["no_decision"] = undecided
        print(explain_json(args.path, runbook, [explanation]) if args.json else f"no decision: {undecided}")
        return EXIT_OK
    if args.facts:
        facts = load_facts_file(args.facts)
        tags = facts.pop("tags", None)
        sources: dict[str, str] = {name: args.facts for name in facts}
        missing: dict[str, str] = {}
    else:
        from medic.aws import AwsClients
        from medic.facts import FactCollector

        collected = FactCollector(AwsClients(region=event.region), ("medic:managed", "true")).collect(
            signal, event, event.detail.state.timestamp
        )
        facts, tags, sources, missing = collected.values(), collected.tags, collected.sources, collected.missing
    decision = decide(runbook, signal.kind, facts, tags)
    if args.json:
        explanation["decision"] = decision_json(decision, facts, sources, missing, runbook)
        print(explain_json(args.path, runbook, [explanation]))
    else:
        print(explain_decision(decision, facts, sources, missing, runbook))
    return EXIT_OK


def explain_json(source: str, runbook: Runbook, explanations: list[dict[str, Any]]) -> str:
    """`medic explain --json` (docs/RUNBOOK.md, "The trace"): what was explained, with which runbook, and one
    explanation per plan (a scenario) or for the alarm (an event)."""
    document = {"source": source, "runbook": _runbook_json(runbook), "explanations": explanations}
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)


def _runbook_json(runbook: Runbook) -> dict[str, Any]:
    return {"name": runbook.name, "version": runbook.version, "source": runbook.source, "layers": list(runbook.layers)}


if __name__ == "__main__":
    raise SystemExit(main())
