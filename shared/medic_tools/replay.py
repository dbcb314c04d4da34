"""`medic replay`: re-drive what Medic could not handle, idempotently. A dry run unless `--execute`.

Where unhandled input ends (docs/reliability.md): an alarm event triage failed on is in the **triage DLQ** (EventBridge
could not deliver it: the event itself; Lambda gave up after its retries: the asynchronous invocation record, with the
event as `requestPayload`); an executor message the executor failed on three times is in the **executor DLQ**; an
input triage could not parse is in the **remediation log** as a `rejected-…` NOOP with its raw text; a plan approved
whose hand-over to the executor failed is in the log as APPROVED with no `enqueued` record.

Inputs: saved files (an alarm event, a Lambda failure record, an executor message body, an SQS event of those, or a
JSON list of them), dead-letter queues (`--queue URL`), and plans in the log (`--plan ID`, `--rejected`).

Re-driving: an alarm event goes through triage here, with this process's settings (or a deployed function's, with
`--settings-from`, or a deployed stack's triage function's, with `--stack`); the plan id derives from the alarm ARN and
its state timestamp, so an event replayed twice, or replayed after Lambda's own retry succeeded, is one plan (triage
answers `duplicate`, re-posting a card or re-enqueueing an approved plan only if that was lost). An executor message
goes back to the executor queue, to be applied by the executor with its own role and guards (approval hash, kill switch,
live state): only for a plan that is still APPROVED or APPLYING (or FAILED awaiting the rollback its rule asks for);
anything else has nothing to do. Slack clicks are never replayed: a decision is a person's, and Slack's signature
expires after five minutes.

A queue message is deleted only once its input is handled (its outcome is in the log); whatever failed, or could not
be replayed, goes back to its queue at the end of the run. Every re-drive is recorded in the plan's chain
(`replayed`, or `enqueued` with `replayed_by`), and on the `rejected-…` entry it came from.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medic.errors import InputError
from medic.ledger.keys import REJECTED_PREFIX

if TYPE_CHECKING:
    from medic.config import Settings
    from medic.ledger.store import Ledger
    from medic.runtime import Runtime

ALARM_EVENT, EXECUTOR_MESSAGE, ROLLBACK_MESSAGE, UNREPLAYABLE = (
    "alarm_event",
    "executor_message",
    "rollback_message",
    "unreplayable",
)
#: Outcomes after which the input is handled (its result is in the log): a queue message may then be deleted.
HANDLED = frozenset({"triaged", "duplicate", "ignored", "enqueued", "nothing_to_do"})
#: Outcomes of a dry run that would succeed.
WOULD = frozenset({"would_triage", "would_enqueue"})
#: `input_rejected` keeps this much of the raw input; longer inputs must be replayed from their queue or a file.
RAW_KEPT = 32_000
SLACK_NOTE = (
    "a Slack request: clicks are never replayed (a decision is a person's, and its signature expires after 5 "
    "minutes); ask for a new click, or re-drive an APPROVED plan with `medic replay --plan ID`"
)
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


@dataclass
class Item:
    """One input to re-drive: where it came from, what it is, and the plan it maps to (when known)."""

    source: str
    kind: str
    payload: Any = None
    plan_id: str | None = None
    note: str = ""
    rejected_entry: str = ""  # the `rejected-…` log entry it was replayed from


@dataclass
class Result:
    """What became of one input."""

    source: str
    kind: str
    plan_id: str | None
    outcome: str
    detail: str = ""
    deleted: bool | None = None  # queue messages only
    note: str = ""  # what is known of the input's past (why it was dead-lettered, rejected)

    @property
    def ok(self) -> bool:
        return self.outcome in HANDLED or self.outcome in WOULD


# -- what an input is ------------------------------------------------------------------------------


def classify(payload: Any, source: str) -> list[Item]:
    """The replayable items in a decoded input (an alarm event, a Lambda async failure record, an executor message
    body, an SQS event of those, or a list of any of them)."""
    if isinstance(payload, list):
        return [item for index, entry in enumerate(payload) for item in classify(entry, f"{source}[{index}]")]
    if not isinstance(payload, dict):
        return [Item(source, UNREPLAYABLE, note=f"not a JSON object but {type(payload).__name__}")]
    if isinstance(payload.get("requestContext"), dict) and "requestPayload" in payload:
        context = payload["requestContext"]
        gave_up = (
            f"Lambda gave up ({context.get('condition', '?')}, {context.get('approximateInvokeCount', '?')} "
            f"attempts) on {str(context.get('functionArn', '?')).rsplit(':', 2)[-2]}"
        )
        inner = classify(payload["requestPayload"], source)
        for item in inner:
            item.note = "; ".join(part for part in (gave_up, item.note) if part)
        return inner
    if "detail-type" in payload:
        plan, note = _alarm_plan(payload)
        return [Item(source, ALARM_EVENT, payload, plan, note)]
    if isinstance(payload.get("Records"), list):
        items: list[Item] = []
        for index, record in enumerate(payload["Records"]):
            where = f"{source}#{record.get('messageId', index)}" if isinstance(record, dict) else f"{source}[{index}]"
            body = record.get("body") if isinstance(record, dict) else None
            items += parse_text(body, where) if isinstance(body, str) else classify(record, where)
        return items
    if "plan_id" in payload:
        if not isinstance(payload["plan_id"], str) or not payload["plan_id"]:
            return [Item(source, UNREPLAYABLE, note="plan_id is not a plan id")]
        kind = ROLLBACK_MESSAGE if payload.get("rollback") is True else EXECUTOR_MESSAGE
        return [Item(source, kind, payload, payload["plan_id"])]
    if _is_slack(payload):
        return [Item(source, UNREPLAYABLE, note=SLACK_NOTE)]
    keys = ", ".join(sorted(str(key) for key in payload)[:8])
    return [Item(source, UNREPLAYABLE, note=f"not an input Medic knows (keys: {keys or 'none'})")]


def parse_text(text: str, source: str) -> list[Item]:
    try:
        payload = json.loads(text)
    except ValueError as exc:
        return [Item(source, UNREPLAYABLE, note=f"not JSON ({exc}): {text[:80]!r}")]
    return classify(payload, source)


def _alarm_plan(payload: dict[str, Any]) -> tuple[str | None, str]:
    """The plan id triage gives this event, or None and why it makes no plan."""
    from medic.alarms.events import parse_alarm_event
    from medic.clock import iso
    from medic.errors import EventError
    from medic.plan import plan_id

    try:
        event = parse_alarm_event(payload)
    except EventError as exc:
        return None, f"triage rejects it ({exc}); it is kept in the log as rejected-…"
    if event.detail.state.value != "ALARM":
        return None, f"state {event.detail.state.value}: triage ignores it"
    return plan_id(event.alarm_arn, iso(event.detail.state.timestamp)), ""


def _is_slack(payload: dict[str, Any]) -> bool:
    headers = payload.get("headers")
    if isinstance(headers, dict) and any(str(key).lower().startswith("x-slack-") for key in headers):
        return True
    return payload.get("type") in ("block_actions", "view_submission") or "command" in payload or "payload" in payload


# -- where inputs come from ------------------------------------------------------------------------


def items_from_file(path: str) -> list[Item]:
    """The items in a saved JSON file; an `InputError` names the file when nothing in it can be replayed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(field="(root)", source=path, problem=f"cannot read: {exc.strerror or exc}") from None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise InputError(field="(root)", source=path, problem=f"not JSON: {exc}") from None
    items = classify(payload, f"file:{path}")
    if all(item.kind == UNREPLAYABLE for item in items):
        raise InputError(field="(root)", source=path, problem=items[0].note if items else "empty list")
    return items


def items_from_log(ledger: Ledger, plan_ids: Sequence[str], *, rejected: bool = False) -> list[Item]:
    """Plans in the remediation log: `rejected-…` entries (their raw input, for triage) and APPROVED or APPLYING plans
    (their executor message). `rejected`: every rejected entry not yet replayed successfully."""
    ids = list(plan_ids)
    if rejected:
        ids += sorted(
            p.id for p in ledger.by_state("NOOP") if p.id.startswith(REJECTED_PREFIX) and not _replayed(ledger, p.id)
        )
    items: list[Item] = []
    for pid in dict.fromkeys(ids):
        source = f"log:{pid}"
        if pid.startswith(REJECTED_PREFIX):
            raw = next((e.data.get("raw") for e in ledger.events(pid) if e.kind == "input_rejected"), None)
            if not isinstance(raw, str):
                if ledger.get(pid) is None:
                    raise InputError(field="--plan", source=pid, problem="no such entry in the remediation log")
                items.append(Item(source, UNREPLAYABLE, note="its input_rejected record holds no raw input"))
                continue
            found = parse_text(raw, source)
            for item in found:
                item.rejected_entry = pid
                if len(raw) >= RAW_KEPT:
                    item.note = "; ".join(p for p in (item.note, f"the log kept {RAW_KEPT} characters only") if p)
            items += found
            continue
        plan = ledger.get(pid)
        if plan is None:
            raise InputError(field="--plan", source=pid, problem="no such plan in the remediation log")
        body: dict[str, Any] = {"plan_id": pid, "approval_hash": plan.approval_hash}
        kind = EXECUTOR_MESSAGE
        if plan.status == "FAILED" and plan.rollback_on_failure:
            body, kind = {"plan_id": pid, "rollback": True}, ROLLBACK_MESSAGE
        items.append(Item(source, kind, body, pid))
    return items


def _replayed(ledger: Ledger, pid: str) -> bool:
    return any(e.kind == "replayed" and e.data.get("outcome") in HANDLED for e in ledger.events(pid))


# -- re-driving ------------------------------------------------------------------------------------


class Replayer:
    """Re-drives items (or, in a dry run, says what would happen) with one runtime, for one run of the command.

    Within a run an approved plan is sent back to the executor once, however many of its messages the DLQ holds."""

    def __init__(self, rt: Runtime, *, execute: bool, by: str = "") -> None:
        self.rt, self.execute, self.by = rt, execute, by
        self.sent: set[str] = set()

    def redrive(self, item: Item) -> Result:
        if item.kind == UNREPLAYABLE:
            return Result(item.source, item.kind, item.plan_id, "unreplayable", item.note)
        result = self._triage(item) if item.kind == ALARM_EVENT else self._to_executor(item)
        result.note = item.note
        return result

    def _triage(self, item: Item) -> Result:
        from medic.log import get_logger
        from medic.usecases.triage import triage

        rt, pid = self.rt, item.plan_id
        if not self.execute:
            existing = rt.ledger.get(pid) if pid else None
            if pid is None:
                detail = item.note
            elif existing is not None:
                detail = (
                    f"{pid} exists ({existing.status}): triage returns it, re-posting its card or re-enqueueing "
                    "it only if that was lost"
                )
            else:
                detail = f"makes plan {pid}" + (f" ({item.note})" if item.note else "")
            return Result(item.source, item.kind, pid, "would_triage", detail)
        try:
            answer = triage(item.payload, rt)
        except Exception as exc:  # noqa: BLE001 - the dispatcher: report it, keep the input for the next run
            get_logger(use_case="replay", plan_id=pid).exception("replay_failed", source=item.source)
            return Result(item.source, item.kind, pid, "failed", f"{type(exc).__name__}: {str(exc)[:300]}")
        pid = answer.get("plan_id") or pid
        status = str(answer.get("status", ""))
        if status == "rejected":
            outcome, detail = "rejected", f"still invalid: {answer.get('error', '')}"
        elif status == "ignored":
            outcome, detail = "ignored", str(answer.get("reason", ""))
        elif answer.get("duplicate"):
            current = rt.ledger.get(pid) if pid else None
            outcome, detail = "duplicate", f"{pid} exists ({current.status if current else status}): nothing made twice"
        else:
            outcome, detail = "triaged", f"{pid} → {status}"
        self._record(item, pid, outcome)
        return Result(item.source, item.kind, pid, outcome, detail)

    def _to_executor(self, item: Item) -> Result:
        from botocore.exceptions import BotoCoreError, ClientError

        rt, pid = self.rt, item.plan_id or ""
        plan = rt.ledger.get(pid)
        if plan is None:
            return Result(item.source, item.kind, pid, "unknown_plan", f"no plan {pid} in {rt.ledger.plans_table}")
        if item.kind == ROLLBACK_MESSAGE:
            waiting = plan.status == "FAILED" and (plan.rollback_on_failure or plan.abandoned_at is not None)
        else:
            waiting = plan.status in ("APPROVED", "APPLYING")
        if not waiting:
            return Result(
                item.source, item.kind, pid, "nothing_to_do", f"{pid} is {plan.status}: the executor ignores it"
            )
        if pid in self.sent:
            return Result(item.source, item.kind, pid, "nothing_to_do", f"{pid}: sent back once in this run already")
        if not self.execute:
            self.sent.add(pid)
            return Result(item.source, item.kind, pid, "would_enqueue", f"{pid} is {plan.status}: back to the executor")
        queue = rt.settings.executor_queue_url
        if not queue:
            return Result(item.source, item.kind, pid, "failed", "MEDIC_EXECUTOR_QUEUE_URL is not set")
        try:
            sent = rt.clients.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(item.payload, sort_keys=True))
        except (ClientError, BotoCoreError) as exc:
            return Result(item.source, item.kind, pid, "failed", f"{type(exc).__name__}: {str(exc)[:300]}")
        self.sent.add(pid)
        message_id = sent.get("MessageId", "")
        rt.ledger.append(
            pid,
            "enqueued",
            {"queue": "executor", "message_id": message_id, "replayed_by": self.by, "source": item.source},
            rt.clock.now(),
        )
        return Result(item.source, item.kind, pid, "enqueued", f"{pid} ({plan.status}) → executor queue {message_id}")

    def _record(self, item: Item, pid: str | None, outcome: str) -> None:
        """Keep the re-drive in the log: on the plan's chain, and on the rejected entry it came from."""
        now = self.rt.clock.now()
        data = {"source": item.source, "by": self.by, "outcome": outcome, "note": item.note}
        if pid:
            self.rt.ledger.append(pid, "replayed", data, now)
        if item.rejected_entry and item.rejected_entry != pid:
            self.rt.ledger.append(item.rejected_entry, "replayed", {**data, "plan_id": pid or ""}, now)

    def queue(self, url: str, *, limit: int = 100, wait_s: int = 1, hold_s: int = 300) -> list[Result]:
        """Receive up to `limit` messages of a dead-letter queue, re-drive each, delete it once handled. Every
        message not deleted (dry run, failure, unreplayable) is held invisible during the run and made visible again
        at its end."""
        sqs = self.rt.clients.sqs
        name = url.rstrip("/").rsplit("/", 1)[-1]
        results: list[Result] = []
        held: list[str] = []
        seen: set[str] = set()
        try:
            while len(seen) < limit:
                batch = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(10, limit - len(seen)),
                    WaitTimeSeconds=wait_s,
                    VisibilityTimeout=hold_s,
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not batch:
                    break
                for message in batch:
                    receipt, message_id = message["ReceiptHandle"], message["MessageId"]
                    if message_id in seen:  # delivered again within the run (at-least-once): handled once
                        held.append(receipt)
                        continue
                    seen.add(message_id)
                    items = parse_text(message.get("Body", ""), f"queue:{name}#{message_id}")
                    why = _dead_letter_note(message.get("MessageAttributes") or {})
                    for item in items:
                        item.note = "; ".join(part for part in (why, item.note) if part)
                    done = [self.redrive(item) for item in items]
                    delete = self.execute and all(result.outcome in HANDLED for result in done)
                    if delete:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)
                    else:
                        held.append(receipt)
                    for result in done:
                        result.deleted = delete
                    results += done
        finally:
            for receipt in held:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
        return results


def _dead_letter_note(attributes: dict[str, Any]) -> str:
    """Why EventBridge dead-lettered the event (its DLQ messages carry ERROR_CODE, ERROR_MESSAGE, RETRY_ATTEMPTS)."""
    values = {key: str(value.get("StringValue", "")) for key, value in attributes.items() if isinstance(value, dict)}
    if "ERROR_CODE" not in values:
        return ""
    return f"EventBridge gave up: {values['ERROR_CODE']} {values.get('ERROR_MESSAGE', '')}".strip()


# -- the command -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE.json",
        help="a saved alarm event, Lambda failure record, executor message body or SQS event",
    )
    parser.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="URL",
        help="a dead-letter queue to drain (the triage or the executor DLQ); repeatable",
    )
    parser.add_argument(
        "--plan",
        action="append",
        default=[],
        metavar="ID",
        help="a plan in the log: rejected-… (its raw input) or an APPROVED plan never handed over",
    )
    parser.add_argument("--rejected", action="store_true", help="every rejected-… input in the log not replayed yet")
    parser.add_argument(
        "--execute", action="store_true", help="re-drive (default: a dry run that only shows what would be re-driven)"
    )
    parser.add_argument("--by", default="", help="who re-drives (a Slack user id or a name): logged; with --execute")
    parser.add_argument("--max", type=int, default=100, metavar="N", help="at most N messages per queue (100)")
    parser.add_argument(
        "--settings-from",
        metavar="FUNCTION",
        help="use the MEDIC_* settings of this deployed function (e.g. the triage function)",
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="use the settings of this deployed Medic's triage function (its stack's output TriageFunctionName)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    """`medic replay`: exit 0 when every input was (or would be) handled, 1 otherwise, 2 on invalid input."""
    from medic.log import configure
    from medic.runtime import Runtime

    if not (args.files or args.queue or args.plan or args.rejected):
        raise InputError(
            field="(args)", source="replay", problem="nothing to replay: give FILE, --queue, --plan or --rejected"
        )
    if args.execute and not args.by.strip():
        raise InputError(field="--by", source="replay", problem="--execute needs --by WHO (it is logged)")
    if args.max < 1:
        raise InputError(field="--max", source="replay", problem="must be at least 1")
    if args.stack and args.settings_from:
        raise InputError(field="--stack", source="replay", problem="give --stack or --settings-from, not both")
    configure(os.environ.get("MEDIC_LOG_LEVEL") or "WARNING")  # the report is the output
    items = [item for path in args.files for item in items_from_file(path)]  # bad files refused before any work
    from botocore.exceptions import BotoCoreError, ClientError

    function, field = args.settings_from, "--settings-from"
    if args.stack:
        from medic_tools.stack import TRIAGE_FUNCTION_OUTPUT, describe_stack

        function = describe_stack(args.stack).output(TRIAGE_FUNCTION_OUTPUT)
        field = f"--stack {args.stack} ({TRIAGE_FUNCTION_OUTPUT})"
    rt = Runtime(_settings(function, field), metrics_stream=io.StringIO())  # EMF is for Lambda's logs, not here
    try:
        items += items_from_log(rt.ledger, args.plan, rejected=args.rejected) if args.plan or args.rejected else []
        replayer = Replayer(rt, execute=args.execute, by=args.by)
        results = [replayer.redrive(item) for item in items]
        for url in args.queue:
            results += replayer.queue(url, limit=args.max)
    except (BotoCoreError, ClientError) as exc:
        print(f"medic: replay: AWS refused: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps([{**asdict(result), "ok": result.ok} for result in results], indent=2))
    else:
        print(report(results, execute=args.execute))
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILED


def report(results: Sequence[Result], *, execute: bool) -> str:
    lines = [] if execute else ["Dry run: nothing was re-driven (add --execute --by WHO to re-drive)."]
    for result in results:
        where = "" if result.deleted is None else ("  [deleted from the queue]" if result.deleted else "  [kept]")
        note = f" ({result.note})" if result.note and result.note not in result.detail else ""
        lines.append(
            f"{result.source}  {result.kind}  {result.plan_id or '-'}  {result.outcome}: {result.detail}{note}{where}"
        )
    handled = sum(1 for result in results if result.ok)
    lines.append(
        f"{len(results)} input(s): {handled} {'handled' if execute else 'replayable'}, {len(results) - handled} not"
    )
    return "\n".join(lines)


def _settings(function: str | None, field: str = "--settings-from") -> Settings:
    """Settings from the environment, or from a deployed function's MEDIC_* variables (the ones it runs with); `field`
    names the argument that named the function, for the line that says it cannot be read."""
    from medic.config import Settings

    if not function:
        return Settings.from_env()
    from botocore.exceptions import BotoCoreError, ClientError

    from medic.aws import AwsClients

    try:
        config = AwsClients(region=os.environ.get("AWS_REGION") or None).lambda_.get_function_configuration(
            FunctionName=function
        )
    except (ClientError, BotoCoreError) as exc:
        raise InputError(field=field, source=function, problem=f"cannot read it: {exc}") from None
    env = {k: v for k, v in (config.get("Environment") or {}).get("Variables", {}).items() if k.startswith("MEDIC_")}
    for var in ("MEDIC_RUNBOOK", "MEDIC_RUNBOOK_OVERRIDES"):  # layer paths (/opt/…) exist in Lambda, not here
        paths = [p for p in env.get(var, "").split(",") if p]
        if paths and not all(Path(p).exists() for p in paths):
            env.pop(var)
            if os.environ.get(var):
                env[var] = os.environ[var]
    if os.environ.get("AWS_REGION"):
        env["AWS_REGION"] = os.environ["AWS_REGION"]
    return Settings.from_env(env)
