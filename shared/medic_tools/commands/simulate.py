"""`medic simulate`: run scenarios on a fresh embedded AWS world, then the summary (a line per scenario, the template,
promotion and backtest lines) and each scenario's `expect:` checked (`expectation_problems`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from medic.errors import InputError
from medic_tools.commands.common import EXIT_FAILED, EXIT_INVALID, EXIT_OK


def add_arguments(simulate: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
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
