"""`medic backtest`: the period's transitions to ALARM, replayed; and the command's arguments."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from medic.clock import iso
from medic.errors import InputError, RunbookError
from medic.plan import plan_id
from medic_tools.backtest import history
from medic_tools.backtest.arguments import DEFAULT_RATE
from medic_tools.backtest.calls import CallLog, TokenBucket, instrument
from medic_tools.backtest.model import (
    AlarmTimeline,
    BacktestDocument,
    Calls,
    LogRef,
    Period,
    RunbookRef,
    SkippedAlarm,
    StateChangeRow,
    Summary,
    TransitionRow,
)
from medic_tools.backtest.period import SOURCE
from medic_tools.backtest.period import Period as Window
from medic_tools.backtest.progress import Progress
from medic_tools.backtest.resume import ResumeFile, fingerprint
from medic_tools.backtest.verdicts import Replayer

if TYPE_CHECKING:
    from medic.config import Settings
    from medic.planning.runbook import Runbook

REPORT_SUFFIXES: Final = (".md", ".html", ".htm")

NOTES: Final = (
    "Metrics (GetMetricData) and REPORT lines (Logs Insights) are read as of each transition: the facts' windows end "
    "at its state timestamp.",
    "Configuration facts are today's: the function's configuration and tags, reserved and provisioned concurrency, "
    "autoscaling bounds, event source mappings, the account's limit, databases; a row lists those that differ from "
    "what triage saw (configuration_changed) when the log has its plan.",
    "The alarm's configuration is today's (DescribeAlarms); deleted and composite alarms are not replayed.",
    "Not replayed: the stateful controls (kill switch, freeze windows, circuit breaker, rate limit, cooldowns) and "
    "storms (an alarm attached to an open plan); a verdict's status is the plan's first state before them.",
)


@dataclass
class Runbooks:
    """The runbook decided with, the one compared (`--against`), and the files each is made of."""

    runbook: Runbook
    files: list[str]
    against: Runbook | None = None
    against_files: list[str] = field(default_factory=list)


def load_runbooks(settings: Settings, runbook: str | None, overrides: Sequence[str], against: str | None) -> Runbooks:
    """`--runbook` (default: the settings' runbook and its layers, as triage loads it) with `--override` layers, and
    `--against`. Either file may be a whole runbook or an override (`extends:`): an override is layered on the
    settings' runbook and layers."""
    from medic.planning.runbook import load_runbook

    deployed = [str(settings.runbook_path), *map(str, settings.runbook_overrides)]

    def load(path: str | None, extra: Sequence[str]) -> tuple[Runbook, list[str]]:
        if path is None:
            files = [*deployed, *extra]
            return load_runbook(files[0], files[1:]), files
        try:
            return load_runbook(path, extra), [path, *extra]
        except RunbookError as exc:
            if exc.field != "extends":
                raise
        files = [*deployed, path, *extra]  # an override: layered on the deployed runbook
        return load_runbook(files[0], files[1:]), files

    chosen, files = load(runbook, overrides)
    if against is None:
        return Runbooks(chosen, files)
    other, other_files = load(against, ())
    return Runbooks(chosen, files, other, other_files)


def _ref(runbook: Runbook) -> RunbookRef:
    return RunbookRef(name=runbook.name, version=runbook.version, source=runbook.source, layers=list(runbook.layers))


def backtest(
    window: Window,
    *,
    settings: Settings,
    runbooks: Runbooks,
    session: Any,
    log: LogRef,
    now: datetime,
    endpoint_url: str | None = None,
    rate: float = DEFAULT_RATE,
    functions: Sequence[str] = (),
    resume: ResumeFile | None = None,
    progress: Progress | None = None,
) -> BacktestDocument:
    """Replay every transition to ALARM of the opted-in functions' alarms in `window`, reading AWS through `session`
    (a boto3 Session no client was made from yet: it is hooked read-only, rate-limited and counted)."""
    from medic.aws import AwsClients
    from medic.ledger.store import Ledger

    bucket, calls = TokenBucket(rate), CallLog()
    instrument(session, bucket, calls)
    progress = progress or Progress(None)
    progress.calls = lambda: calls.total
    clients = AwsClients(session=session, region=settings.region or session.region_name, endpoint_url=endpoint_url)
    ledger = Ledger(clients.dynamodb, settings.plans_table, settings.events_table) if log.available else None

    functions_in = history.opted_in_functions(clients, settings.opt_in_tag)
    scoped = history.scope(history.metric_alarms(clients), functions_in, settings.opt_in_tag, functions, now)
    in_scope = [alarm for alarm in scoped if not alarm.skipped]
    progress.start("reading alarm history", len(in_scope))
    for alarm in in_scope:
        alarm.changes = history.state_changes(clients, alarm.name, window)
        progress.step()
    pending = sorted(
        (
            (change, alarm, alarm.changes[index - 1].time if index else None)
            for alarm in in_scope
            for index, change in enumerate(alarm.changes)
            if change.new_value == "ALARM"
        ),
        key=lambda entry: (entry[0].time, entry[1].name),
    )
    replayer = Replayer(clients, settings, runbooks.runbook, runbooks.against, ledger, now, log.note)
    rows: list[TransitionRow] = []
    resumed = 0
    before = calls.total
    progress.start("replaying", len(pending))
    for change, alarm, previous in pending:
        done = resume.done.get(plan_id(str(alarm.alarm["AlarmArn"]), iso(change.time))) if resume else None
        if done is not None:
            rows.append(done)
            resumed += 1
        else:
            row = replayer.replay(alarm, change, previous)
            rows.append(row)
            if resume is not None:
                resume.append(row)
        progress.step()
    progress.close()
    replayed = len(rows) - resumed
    compared = [row.log.equal for row in rows]
    arns = [str(alarm.alarm["AlarmArn"]).split(":") for alarm in scoped]
    return BacktestDocument(
        generated_at=iso(now),
        period=Period(since=iso(window.since), until=iso(window.until)),
        account=arns[0][4] if arns else None,
        region=clients.region,
        opt_in_tag="=".join(settings.opt_in_tag),
        runbook=_ref(runbooks.runbook),
        against=_ref(runbooks.against) if runbooks.against else None,
        log=log,
        alarms=[
            AlarmTimeline(
                alarm=a.name,
                function=a.function,
                target=a.target,
                signal=a.signal.kind if a.signal else "unknown",
                changes=[StateChangeRow(time=iso(c.time), old=c.old_value, new=c.new_value) for c in a.changes],
            )
            for a in in_scope
        ],
        skipped_alarms=[SkippedAlarm(alarm=a.name, reason=a.skipped) for a in scoped if a.skipped],
        transitions=rows,
        summary=Summary(
            alarm_transitions=len(rows),
            replayed=replayed,
            resumed=resumed,
            equal_to_log=compared.count(True),
            differ_from_log=compared.count(False),
            not_in_log=compared.count(None),
            altered=sum(1 for row in rows if row.altered) if runbooks.against is not None else None,
            calls=Calls(
                total=calls.total,
                by_operation=calls.by_operation(),
                per_transition=round((calls.total - before) / replayed, 1) if replayed else None,
                rate_limit=rate,
                waited_s=round(bucket.waited_s, 1),
            ),
        ),
        notes=[*NOTES, *([log.note] if not log.available else [])],
    )


# -- the command ----------------------------------------------------------------------------------


def log_environment(stack: str | None, environ: Mapping[str, str]) -> tuple[dict[str, str], LogRef]:
    """The environment with the log's tables (`--stack`'s outputs fill them in, as for `medic log`), and whether the
    log can be read."""
    env = dict(environ)
    if stack:
        from medic_tools.stack import LOG_OUTPUTS, describe_stack

        env = describe_stack(stack).environment(LOG_OUTPUTS, environ)
    plans, events = env.get("MEDIC_PLANS_TABLE"), env.get("MEDIC_EVENTS_TABLE")
    if plans and events:
        return env, LogRef(available=True, plans_table=plans, events_table=events)
    unset = " and ".join(
        name for name, value in (("MEDIC_PLANS_TABLE", plans), ("MEDIC_EVENTS_TABLE", events)) if not value
    )
    return env, LogRef(available=False, note=f"log not available: {unset} unset (or give --stack)")


def run(args: argparse.Namespace) -> int:
    """`medic backtest`: exit 0 when the period was replayed, 2 on invalid input (one line naming the field)."""
    import boto3

    from medic.clock import SystemClock
    from medic.config import Settings
    from medic.log import configure
    from medic_tools.backtest.render import table
    from medic_tools.backtest.report import check_report_path, write_report

    now = SystemClock().now()
    window = Window.parse(args.since, args.until, now)
    if not (args.rate > 0 and args.rate < float("inf")):
        raise InputError(
            field="--rate", source=SOURCE, problem=f"{args.rate:g} is not a positive number of calls a second"
        )
    if args.report:
        check_report_path(args.report)
    configure(os.environ.get("MEDIC_LOG_LEVEL") or "WARNING")  # the report is the output
    env, log = log_environment(args.stack, os.environ)
    placeholders = {} if log.available else {"plans_table": "-", "events_table": "-"}
    settings = Settings.from_env(env, **placeholders)
    runbooks = load_runbooks(settings, args.runbook, args.override, args.against)
    key = fingerprint(
        [*runbooks.files, "|", *runbooks.against_files], settings.model_dump(exclude={"plans_table", "events_table"})
    )
    resume = ResumeFile(args.resume, key) if args.resume else None
    if resume is not None and (resume.unreadable or resume.ignored):
        print(
            f"medic: backtest: --resume {args.resume}: {resume.unreadable} unreadable line(s) and {resume.ignored} "
            "of another runbook or settings ignored",
            file=sys.stderr,
        )
    progress = Progress(sys.stderr, quiet=args.quiet)
    try:
        document = backtest(
            window,
            settings=settings,
            runbooks=runbooks,
            session=boto3.Session(),
            log=log,
            now=now,
            rate=args.rate,
            functions=args.function,
            resume=resume,
            progress=progress,
        )
    finally:
        progress.close()
        if resume is not None:
            resume.close()
    if args.json:
        print(document.model_dump_json(indent=2))
    else:
        print(table(document))
    if args.report:
        write_report(document, Path(args.report))
        print(f"report written to {args.report}", file=sys.stderr)
    return 0
