"""The `medic` command: its parser, which command runs, and how a failure is told (`main`). Each group of commands
adds its arguments and runs from its module in `medic_tools.commands` (simulate, explain, runbook and schema, control,
log, alarms) or its own package (promotions, replay, backtest).

The names tests and tools import from here (`ScenarioRun`, `promotion_lines`, `SCHEMAS`, …) are re-exported."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medic.errors import InputError
from medic_tools.commands import alarms, control, explain, log, runbook, simulate
from medic_tools.commands.common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    settings,
    stack_argument,
)
from medic_tools.commands.explain import explain_json
from medic_tools.commands.runbook import SCHEMAS, runbook_check_json
from medic_tools.commands.simulate import (
    ScenarioRun,
    backtest_line,
    expectation_problems,
    promotion_lines,
    run_scenarios,
    summary_table,
    template_line,
)

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "SCHEMAS",
    "ScenarioRun",
    "backtest_line",
    "environment_problem",
    "expectation_problems",
    "explain_json",
    "main",
    "promotion_lines",
    "run_scenarios",
    "runbook_check_json",
    "summary_table",
    "template_line",
    "version",
]


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

    simulate.add_arguments(commands.add_parser("simulate", help="run scenarios on a fresh embedded AWS world"))
    explain_help = "print the decision trace for a scenario or an alarm event"
    explain.add_arguments(commands.add_parser("explain", help=explain_help))
    runbook.add_arguments(commands.add_parser("runbook", help="runbook tools"))
    schema_help = "print the JSON Schema of a file medic reads (docs/schemas/)"
    runbook.add_schema_arguments(commands.add_parser("schema", help=schema_help))
    control_help = "the kill switch and the circuit breaker (MEDIC_* tables or --stack)"
    control.add_arguments(commands.add_parser("control", help=control_help))
    log_help = "the remediation log (MEDIC_PLANS_TABLE, MEDIC_EVENTS_TABLE, or --stack)"
    log.add_arguments(commands.add_parser("log", help=log_help))

    from medic_tools import promotions as promoting

    promotions = commands.add_parser("promotions", help="scopes proposed for or promoted to mode auto (the log)")
    promoting.add_arguments(promotions)
    stack_argument(promotions)

    from medic_tools import replay as replaying

    replay_help = "re-drive DLQ messages, saved events and rejected inputs through the pipeline (a dry run by default)"
    replaying.add_arguments(commands.add_parser("replay", help=replay_help))

    from medic_tools.backtest import arguments as backtest_arguments

    backtest_help = "what Medic would have done with a past period's alarms, and what a runbook change alters"
    backtest_arguments.add_arguments(commands.add_parser("backtest", help=backtest_help))

    alarms_help = "the recommended CloudWatch alarms for a function (and its database)"
    alarms.add_arguments(commands.add_parser("alarms", help=alarms_help))

    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "simulate":
        return simulate.run(args)
    if args.command == "explain":
        return explain.run(args)
    if args.command == "control":
        return control.run(args)
    if args.command == "alarms":
        return alarms.run(args)
    if args.command == "log":
        return log.run(args)
    if args.command == "promotions":
        from medic.runtime import Runtime
        from medic_tools import promotions

        return promotions.run(args, Runtime(settings(args)))
    if args.command == "replay":
        from medic_tools import replay

        return replay.run(args)
    if args.command == "backtest":
        from medic_tools.backtest import run as backtesting

        return backtesting.run(args)
    if args.command == "schema":
        return runbook.print_schema(args.kind)
    return runbook.run(args)


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


if __name__ == "__main__":
    raise SystemExit(main())
