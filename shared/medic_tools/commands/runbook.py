"""`medic runbook check`: validate a runbook (and its override layers) and run its examples, as text or as JSON
(`runbook_check_json`); `medic runbook schema` and `medic schema KIND`: the JSON Schema of a file medic reads."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medic.errors import InputError
from medic_tools.commands.common import EXIT_FAILED, EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    from medic.planning.runbook import ExampleResult, Runbook

#: `medic schema KIND`: the function that makes each JSON Schema (module, name), imported when asked. The files checked
#: in (runbooks/runbook.schema.json, docs/schemas/) are their output, kept current by the tests.
SCHEMAS: dict[str, tuple[str, str]] = {
    "runbook": ("medic.planning.runbook", "runbook_schema"),
    "scenario": ("medic_tools.scenario", "scenario_schema"),
    "facts": ("medic.planning.explain", "facts_schema"),
    "backtest": ("medic_tools.backtest.model", "backtest_schema"),
}


def add_arguments(runbook: argparse.ArgumentParser) -> None:
    """`medic runbook check|schema`."""
    runbook_commands = runbook.add_subparsers(dest="runbook_command", required=True)
    check = runbook_commands.add_parser("check", help="validate a runbook and run its examples")
    check.add_argument("file", nargs="?", default=None)
    check.add_argument("--override", action="append", default=[], metavar="FILE", help="runbook override layer")
    check.add_argument("--json", action="store_true", help="print the result as JSON (docs/RUNBOOK.md)")
    runbook_commands.add_parser("schema", help="print the runbook JSON Schema (for editors): medic schema runbook")


def add_schema_arguments(schema: argparse.ArgumentParser) -> None:
    """`medic schema KIND`."""
    schema_help = "a runbook, a scenario, the facts of explain --facts, or the document of backtest --json"
    schema.add_argument("kind", choices=tuple(SCHEMAS), help=schema_help)


def run(args: argparse.Namespace) -> int:
    """`medic runbook check|schema`."""
    if args.runbook_command == "schema":
        return print_schema("runbook")
    return check_runbook(args.file, args.override, as_json=args.json)


def print_schema(kind: str) -> int:
    """`medic schema KIND` (and `medic runbook schema`): the JSON Schema on stdout."""
    module, function = SCHEMAS[kind]
    print(json.dumps(getattr(importlib.import_module(module), function)(), indent=2))
    return EXIT_OK


def check_runbook(path: str | None, overrides: Sequence[str] = (), as_json: bool = False) -> int:
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
        "runbook": None if runbook is None else runbook_json(runbook),
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


def runbook_json(runbook: Runbook) -> dict[str, Any]:
    return {"name": runbook.name, "version": runbook.version, "source": runbook.source, "layers": list(runbook.layers)}
