"""`medic log list|show|verify|template-updated|export`: the remediation log (the tables MEDIC_PLANS_TABLE and
MEDIC_EVENTS_TABLE name, or those `--stack NAME`'s outputs name), read, checked against its digests, or exported."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from medic.errors import InputError
from medic_tools.commands.common import EXIT_FAILED, EXIT_OK, settings, stack_argument

if TYPE_CHECKING:
    from medic.ledger.store import Ledger, UnreadableItem, UnreadableRecord
    from medic.runtime import Runtime


def add_arguments(log: argparse.ArgumentParser) -> None:
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
        stack_argument(sub)


def run(args: argparse.Namespace) -> int:
    """`medic log list|show|verify|export` against the tables named by MEDIC_PLANS_TABLE and MEDIC_EVENTS_TABLE, or by
    `--stack NAME`'s outputs (AWS_ENDPOINT_URL points it at the embedded world); AWS's refusals are told by `main`."""
    from medic.clock import SystemClock
    from medic.ledger import audit
    from medic.runtime import Runtime

    since = audit.parse_since(args.since, SystemClock().now()) if getattr(args, "since", None) is not None else None
    runtime = Runtime(settings(args))
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
        return _verify(runtime, args)
    return _export(ledger, args.format, since, args.output)


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


def _verify(runtime: Runtime, args: argparse.Namespace) -> int:
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


def _export(ledger: Ledger, fmt: str, since: str | None, output: str | None) -> int:
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
