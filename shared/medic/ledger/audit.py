"""The remediation log for operators: which plans there were, the whole story of one, whether the chains hold,
and an export of every record. `medic log list|show|verify|export` prints what this module returns.

Everything reads through `Ledger`'s public methods; nothing here writes.

    >>> parse_since("24h", datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    '2026-11-21T12:00:00.000Z'
    >>> parse_since("2026-11-22T05:00+01:00", datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    '2026-11-22T04:00:00.000Z'
"""

from __future__ import annotations

import csv
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from medic.clock import iso
from medic.errors import InputError
from medic.ledger.keys import CONTROL_KEYS, CONTROL_PREFIX
from medic.plan import PLAN_STATES, Plan
from medic.planning.explain import trace_lines
from medic.planning.verdict import Decision

if TYPE_CHECKING:
    from medic.ledger.store import ChainReport, Ledger, LogEvent, UnreadableItem, UnreadableRecord

EXPORT_FORMATS = ("jsonl", "csv")
#: The columns of `medic log export`: every field of a record's hash (`context`, `prev_seq`, `plan_state`,
#: `plan_content` included), so an export can be re-verified.
EXPORT_FIELDS = ("plan_id", "seq", "at", "kind", "data", "context", "prev_hash", "hash", "prev_seq", "plan_state",
                 "plan_content")  # fmt: skip
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CLI = "command line"
_WIDTH = 86  # the text column of `log show`, after "#seq  time  label": 120 columns in all
_DECIDED = frozenset({"APPROVED", "APPLYING", "APPLIED", "VERIFIED", "FAILED", "ROLLED_BACK", "DRIFTED"})


# -- parameters ------------------------------------------------------------------------------------


def parse_since(text: str, now: datetime, *, field: str = "--since") -> str:
    """`--since` as the log's ISO timestamp: a duration back from `now` (`30m`, `24h`, `7d`, `2w`) or an ISO
    date/time (`2026-11-22`, `2026-11-22T05:00Z`; no zone means UTC). Anything else is an `InputError`."""
    value = text.strip()
    duration = _DURATION.match(value.lower())
    if duration:
        return iso(now - timedelta(seconds=int(duration.group(1)) * _SECONDS[duration.group(2)]))
    try:
        when = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        problem = f"{text!r} is neither a duration (30m, 24h, 7d, 2w) nor an ISO date/time (2026-11-22T05:00Z)"
        raise InputError(field=field, source=_CLI, problem=problem) from None
    return iso(when if when.tzinfo else when.replace(tzinfo=UTC))


# -- medic log list --------------------------------------------------------------------------------


def list_plans(ledger: Ledger, *, function: str | None = None, since: str | None = None,
               state: str | None = None) -> list[Plan]:  # fmt: skip
    """Plans newest first, touched (created or changed: `updated_at`) at or after `since` (ISO), optionally only
    those in `state` or about `function` (`list_plans_and_problems` also names the items that cannot be read).

    With `state` this is one query of the `by_state` index (whose sort key is `updated_at`). Without it, a full
    scan of the plans table (`Ledger.scan_plans`) filtered here: fine at Medic's volume (one plan per alarm
    transition, storms attach); a by-function index would serve `--function` when that stops being true.
    """
    return list_plans_and_problems(ledger, function=function, since=since, state=state)[0]


def list_plans_and_problems(ledger: Ledger, *, function: str | None = None, since: str | None = None,
                            state: str | None = None) -> tuple[list[Plan], list[UnreadableItem]]:  # fmt: skip
    """`list_plans`, and the plan items in range that cannot be read (listed whatever their function: an
    unreadable item says nothing about what it is about)."""
    if state is not None:
        wanted = state.upper()
        if wanted not in PLAN_STATES:
            raise InputError(field="--state", source=_CLI, problem=f"unknown state {state!r}; one of "
                                                                   f"{', '.join(PLAN_STATES)}")  # fmt: skip
        plans, unreadable = ledger.query_state(wanted, since=since)
    else:
        plans, unreadable = ledger.scan_plans()
        plans = [plan for plan in plans if since is None or plan.updated_at >= since]
    if function:
        plans = [plan for plan in plans if function in functions_of(plan)]
    return sorted(plans, key=lambda plan: (plan.created_at, plan.id), reverse=True), unreadable


def unreadable_lines(items: Sequence[UnreadableItem | UnreadableRecord]) -> list[str]:
    """One line per item of the log that cannot be read: which, and why."""
    lines = []
    for item in items:
        if hasattr(item, "key"):
            lines.append(f"UNREADABLE plan item {item.key}: {item.problem}")
        else:
            lines.append(f"UNREADABLE record {item.plan_id}#{item.seq if item.seq is not None else '?'}: "
                         f"{item.problem}")  # fmt: skip
    return lines


def functions_of(plan: Plan) -> set[str]:
    """The functions a plan is about: its target's, and its actions' (a database plan acts on its consumers)."""
    names = {action.function_name for action in plan.actions if action.function_name}
    if plan.function_name:
        names.add(plan.function_name)
    return names


def who_decided(plan: Plan) -> str | None:
    """The Slack user id(s) that approved or rejected the plan; "medic (auto)" for an auto-mode plan Medic approved
    itself; None while nobody has (or nobody had to)."""
    if plan.decided_by:
        return ", ".join(plan.decided_by)
    if plan.mode == "auto" and plan.status in _DECIDED:
        return "medic (auto)"
    return None


def plan_row(plan: Plan) -> dict[str, Any]:
    """One plan as `log list --json` prints it (the table shows the same fields)."""
    return {
        "id": plan.id, "created_at": plan.created_at, "updated_at": plan.updated_at, "state": plan.status,
        "signal": plan.signal, "diagnosis": plan.diagnosis, "target": plan.target, "rule": plan.rule,
        "mode": plan.mode, "decided_by": who_decided(plan), "alarm_name": plan.alarm_name,
        "functions": sorted(functions_of(plan)),
    }  # fmt: skip


def plans_table(plans: Sequence[Plan]) -> str:
    """An aligned table for the terminal: id, created, state, signal, diagnosis, target, rule, decided by."""
    header = ("ID", "CREATED", "STATE", "SIGNAL", "DIAGNOSIS", "TARGET", "RULE", "DECIDED BY")
    rows = [
        (plan.id, plan.created_at, plan.status, plan.signal, plan.diagnosis or "-", plan.target, plan.rule or "-",
         who_decided(plan) or "-")
        for plan in plans
    ]  # fmt: skip
    text = table([header, *rows])
    return text + ("\n(no plans)" if not rows else f"\n{len(rows)} plan{'s' if len(rows) != 1 else ''}")


def table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)  # fmt: skip


# -- medic log show --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanStory:
    """One plan (or another chain, e.g. a control flag), its records in order, and whether its chain holds."""

    chain_id: str
    plan: Plan | None
    events: list[LogEvent]
    chain: ChainReport
    unreadable: Sequence[UnreadableItem | UnreadableRecord] = ()

    @property
    def links(self) -> dict[str, Any]:
        """The plans this one points to, from its own records: the plan it re-proposes and the ones re-proposing it
        (`<id>-r1`), the open plan it was attached to in a storm, and the alarms attached to it."""

        def first(kind: str, key: str) -> str | None:
            return next((str(e.data[key]) for e in self.events if e.kind == kind and key in e.data), None)

        return {
            "reproposal_of": first("reproposal_of", "plan_id"),
            "reproposed_as": [str(e.data["plan_id"]) for e in self.events if e.kind == "reproposed"],
            "attached_to": first("superseded", "by"),
            "attached": [str(e.data["plan_id"]) for e in self.events if e.kind == "alarm_attached"],
        }

    def as_json(self) -> dict[str, Any]:
        """`log show --json`: the plan item, every record, the chain report and the links."""
        return {
            "plan_id": self.chain_id,
            "plan": self.plan.model_dump(mode="json") if self.plan else None,
            "events": [event.model_dump(mode="json") for event in self.events],
            "chain": self.chain.model_dump(mode="json"),
            "links": self.links,
            "unreadable": [item.model_dump(mode="json") for item in self.unreadable],
        }

    def text(self) -> str:
        """The readable story: the plan in brief, then every record in order, then the chain's status."""
        out = self._header()
        out += ["", f"Story: {len(self.events)} record{'s' if len(self.events) != 1 else ''}, in order (UTC)"]
        day = ""
        for event in self.events:
            if event.at[:10] != day:
                day = event.at[:10]
                out.append(f"  {day}")
            label, lines = describe_event(event)
            prefix = f"  #{event.seq:<3} {event.at[11:23]}  {label:<11} "
            wrapped = [part for line in lines for part in _wrap(line)]
            out.append(prefix + wrapped[0])
            out += [" " * len(prefix) + line for line in wrapped[1:]]
        out += ["", *unreadable_lines(self.unreadable), chain_status(self.chain)]
        return "\n".join(out)

    def _header(self) -> list[str]:
        plan = self.plan
        if plan is None:
            what = "a control flag" if self.chain_id.startswith(CONTROL_PREFIX) else "no plan item holds this id"
            if any(hasattr(item, "key") for item in self.unreadable):
                what = "its plan item cannot be read"
            return [f"chain {self.chain_id} ({what})"]
        out = [f"plan {plan.id}: {plan.status}"]
        verdict = (f"diagnosis {plan.diagnosis}, row {plan.rule}, mode {plan.mode}" if plan.diagnosis
                   else f"no diagnosis: {plan.reason or 'no reason recorded'}")  # fmt: skip
        out.append(f"  {plan.signal} on {plan.target} → {verdict}")
        if plan.alarm_name:
            out.append(f"  alarm {plan.alarm_name} at {plan.state_timestamp} ({plan.alarm_arn})")
        out.append(f"  created {plan.created_at}, updated {plan.updated_at}, decided by {who_decided(plan) or '-'}")
        if plan.slack.ts:
            out.append(f"  Slack card in {plan.slack.channel}, ts {plan.slack.ts}")
        links = self.links
        if links["reproposal_of"]:
            out.append(f"  re-proposal of {links['reproposal_of']} (medic log show {links['reproposal_of']})")
        out += [f"  re-proposed as {other} (medic log show {other})" for other in links["reproposed_as"]]
        if links["attached_to"]:
            out.append(f"  attached to the open plan {links['attached_to']}")
        if links["attached"]:
            out.append(f"  {len(links['attached'])} later alarm(s) attached: {', '.join(links['attached'])}")
        return out


def load_story(ledger: Ledger, chain_id: str) -> PlanStory:
    """Read one plan's item, records and chain; an id with neither is an `InputError` naming it."""
    plan, problem = ledger.plan_or_problem(chain_id)
    events, unreadable = ledger.records(chain_id)
    if plan is None and problem is None and not events and not unreadable:
        raise InputError(field="PLAN", source=_CLI, problem=f"no plan or log chain {chain_id!r} in "
                                                            f"{ledger.plans_table}/{ledger.events_table}")  # fmt: skip
    from medic.ledger.store import UnreadableItem

    bad: list[UnreadableItem | UnreadableRecord] = [*unreadable]
    if problem is not None:
        bad.insert(0, UnreadableItem(key=chain_id, problem=problem))
    return PlanStory(chain_id, plan, events, ledger.verify_report(chain_id), bad)


def chain_status(report: ChainReport) -> str:
    """The chain's status in one line: `chain intact: …` or `chain BROKEN at record #n: why`."""
    if report.ok:
        return (f"chain intact: {report.events} record{'s' if report.events != 1 else ''}, every hash recomputed "
                "and linked to the one before, the last one matching the head anchor")  # fmt: skip
    if report.first_bad_seq is None:
        return f"chain BROKEN: {report.problem}"
    return f"chain BROKEN at record #{report.first_bad_seq}: {report.problem}"


def describe_event(event: LogEvent) -> tuple[str, list[str]]:
    """A record for humans: a short label and its lines (the first is the headline)."""
    render = _RENDERERS.get(event.kind)
    if render is not None:
        try:
            label, lines = render(event.data)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # a record of an older or newer shape: show it as it is rather than fail the story
        else:
            return label, lines or ["(no details)"]
    return event.kind, [_json(event.data)]


def _alarm(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    lines = [f"{data['alarm_name']} → {data.get('state', 'ALARM')} at {data['state_timestamp']} "
             f"(signal {data.get('signal')} on {data.get('target')})"]  # fmt: skip
    if data.get("reason"):
        lines.append(f"reason: {data['reason']}")
    if data.get("alarm_arn"):
        lines.append(f"alarm: {data['alarm_arn']}")
    return "alarm", lines


def _facts(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    facts: Mapping[str, Any] = data.get("facts", {})
    sources: Mapping[str, str] = data.get("sources", {})
    missing: Mapping[str, str] = data.get("missing", {})
    lines = [f"{len(facts)} facts collected, {len(missing)} missing"]
    by_source: dict[str, list[str]] = {}
    for name in sorted(facts):
        by_source.setdefault(sources.get(name, "no recorded source"), []).append(f"{name}={_show(facts[name])}")
    lines += [f"from {source}: {', '.join(values)}" for source, values in sorted(by_source.items())]
    lines += [f"missing {name}: {why}" for name, why in sorted(missing.items())]
    return "facts", lines


def _decision(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    decision = Decision.model_validate(data)
    if decision.matched:
        head = (f"table {decision.table}: row {decision.rule} matched → {decision.diagnosis} "
                f"(mode {decision.mode})")  # fmt: skip
    else:
        head = f"table {decision.table or '(none)'}: no row matched ({decision.reason})"
    lines = [head, *trace_lines(decision)]
    if decision.actions:
        calls = (f"{a.kind}({', '.join(f'{k}={_show(v)}' for k, v in a.params.items())})" for a in decision.actions)
        lines.append("actions: " + ", ".join(calls))
    if decision.matched and decision.rationale:
        lines.append(f"rationale: {decision.rationale}")
    if decision.missing_facts:
        lines.append(f"missing facts: {', '.join(decision.missing_facts)}")
    return "decision", lines


def _guardrails(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    clamps: Mapping[str, list[str]] = data.get("clamps", {})
    refusals: list[Mapping[str, Any]] = data.get("refusals", [])
    lines = [f"clamped {what}: {'; '.join(notes)}" for what, notes in clamps.items()]
    lines += [_refusal(refusal) for refusal in refusals]
    return "guardrails", lines or ["passed: nothing clamped, nothing refused"]


def _plan_created(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    head = f"plan {data['status']}" + (" (dry run)" if data.get("dry_run") else "")
    if data.get("expires_at"):
        head += f", approval expires {data['expires_at']}"
    lines = [head]
    lines += [f"change: {a['kind']} on {a['target']}: {_change(a.get('before', {}), a.get('after', {}))}"
              for a in data.get("actions", []) if a.get("kind") != "advise"]  # fmt: skip
    lines += [f"advice: {a['target']}" for a in data.get("actions", []) if a.get("kind") == "advise"]
    if data.get("reason") and not data.get("diagnosis"):
        lines.append(f"reason: {data['reason']}")
    if data.get("approval_hash"):
        lines.append(f"approval hash {data['approval_hash']}")
    return "plan", lines


def _decided(verb: str) -> Callable[[Mapping[str, Any]], tuple[str, list[str]]]:
    def render(data: Mapping[str, Any]) -> tuple[str, list[str]]:
        keys = {"team": "team", "channel": "channel", "message_ts": "message ts"}
        where = ", ".join(f"{label} {data[key]}" for key, label in keys.items() if data.get(key))
        lines = [f"{verb} by {data['user']}" + (f" ({where})" if where else "")]
        if data.get("approval_hash"):
            lines.append(f"bound to approval hash {data['approval_hash']}")
        return ("approval" if verb == "approved" else "rejection"), lines

    return render


def _session(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    assumed = f"assumed {data['role_arn']} as session {data['session_name']}"
    identity = f" (source identity {data['source_identity']})" if data.get("source_identity") else ""
    trail = f"CloudTrail: {data.get('assumed_role_arn')}, access key {data.get('access_key_id')}"
    return "session", [assumed + identity, trail]


def _aws_call(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    return "aws call", [f"{data['action']} on {data['target']}: {_change(data.get('before', {}), data['after'])}",
                        f"request id {data['request_id']}"]  # fmt: skip


def _verification(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    label = "verified" if data.get("outcome") == "VERIFIED" else "not fixed"
    points = ", ".join(_show(v) for v in data.get("datapoints", []))
    lines = [str(data.get("note") or data.get("outcome")),
             f"alarm {data.get('alarm_state')} at {data.get('checked_at')}; since the change: {points or 'no data'} "
             f"(threshold {_show(data.get('threshold'))})"]  # fmt: skip
    return label, lines


def _simple(label: str, template: str) -> Callable[[Mapping[str, Any]], tuple[str, list[str]]]:
    def render(data: Mapping[str, Any]) -> tuple[str, list[str]]:
        return label, [template.format_map({key: _show(value) for key, value in data.items()})]

    return render


_RENDERERS: dict[str, Callable[[Mapping[str, Any]], tuple[str, list[str]]]] = {
    "alarm_received": _alarm,
    "facts_collected": _facts,
    "decision": _decision,
    "guardrails": _guardrails,
    "plan_created": _plan_created,
    "slack_posted": _simple("slack", "card posted to {channel}, ts {ts}"),
    "slack_failed": _simple("slack", "card NOT posted: {error}: {detail}"),
    "approval": _decided("approved"),
    "rejection": _decided("rejected"),
    "approval_refused": _simple("refused", "a click by {user} was refused: {reason}"),
    "expired": _simple("expired", "the approval had expired when {user} clicked {clicked}; nothing changed"),
    "enqueued": _simple("queued", "sent to the {queue} queue (message {message_id})"),
    "blocked": lambda data: ("blocked", [_refusal(data)]),
    "non_finite_removed": lambda data: ("removed", [f"non-finite numbers left out of the plan: {data['observed']}"]),
    "applying": lambda data: ("applying", [f"{data['actions']} change(s) to make" + (
        f"; executor {data['lease_owner']} holds the plan until {data['lease_until']}"
        if data.get("lease_owner") else ""
    )]),
    "lease_taken_over": _simple("applying", "resumed by executor {lease_owner} (until {lease_until}): the lease of "
                                            "{previous_owner} expired at {expired_at}"),
    "session": _session,
    "aws_call": _aws_call,
    "change_effective": _simple("effective", "{target} now has {observed}"),
    "applied": _simple("applied", "every change made; verification after {verify_after}"),
    "verified": _verification,
    "verification_failed": _verification,
    "rollback_requested": _simple("rollback", "requested by the {by} (message {message_id})"),
    "rolling_back": _simple("rollback", "{actions} change(s) to undo; executor {lease_owner} holds the plan until "
                                        "{lease_until}"),
    "rollback": _simple("rollback", "{target} restored to {restored} (request id {request_id})"),
    "rollback_failed": _simple("rollback", "FAILED on {target}: {error}"),
    "action_failed": _simple("failed", "{action} on {target}: {error}"),
    "drifted": _simple("drifted", "{target} changed since the plan was made: expected {expected}, found {live} "
                                  "(rollback errors: {rollback_errors})"),
    "reproposed": _simple("re-proposed", "decided again from the live state as {plan_id} ({status})"),
    "reproposal_of": _simple("re-proposal", "of {plan_id}, which drifted; facts read again from the live state"),
    "not_reproposed": _simple("re-proposal", "none: {reason}"),
    "superseded": _simple("superseded", "alarm {alarm_name} at {state_timestamp} attached to the open plan {by} on "
                                        "{target}"),
    "alarm_attached": _simple("attached", "alarm {alarm_name} at {state_timestamp} (value {value}) attached as "
                                          "{plan_id}"),
    "input_rejected": _simple("rejected", "input rejected at {field}: {error}"),
    "control_set": lambda data: ("control", [f"turned {'on' if data['enabled'] else 'off'} by {data['by']}"
                                             + (f": {data['reason']}" if data.get("reason") else "")]),
}  # fmt: skip


def _refusal(refusal: Mapping[str, Any]) -> str:
    return (f"refused by {refusal['guard']}: {refusal['message']} (limit {_show(refusal.get('limit'))}, observed "
            f"{_show(refusal.get('observed'))})")  # fmt: skip


def _change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    fields = [f"{key} {_show(before.get(key))} → {_show(value)}" for key, value in after.items()]
    return ", ".join(fields) or "no field changes"


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return _json(value)
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _wrap(line: str) -> list[str]:
    return textwrap.wrap(line, _WIDTH, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False) or [""]


# -- medic log verify ------------------------------------------------------------------------------


def verify_chains(ledger: Ledger, chain_id: str | None = None) -> list[ChainReport]:
    """Recompute one chain, or every chain in the log: the plans' (from their items), every chain with a head
    anchor (rejected inputs, control flags) and the control flags' (`control#…`)."""
    if chain_id is not None:
        report = ledger.verify_report(chain_id)
        if report.ok and not report.events and ledger.get(chain_id) is None:
            raise InputError(field="--plan", source=_CLI, problem=f"no plan or log chain {chain_id!r}")
        return [report]
    plans, unreadable = ledger.scan_plans()
    ids = {*ledger.chain_ids(), *(plan.id for plan in plans), *(item.key for item in unreadable)}
    ids |= {key for key in CONTROL_KEYS if key not in ids and ledger.events(key)}  # a flag whose head anchor is gone
    return [ledger.verify_report(one) for one in sorted(ids)]


def verify_text(reports: Sequence[ChainReport], *, one: bool = False) -> str:
    """Each broken chain with its first broken record, then a count (for one chain: its status)."""
    broken = [report for report in reports if not report.ok]
    lines = [f"{r.plan_id}: BROKEN at record #{r.first_bad_seq} (of {r.events}): {r.problem}"
             if r.first_bad_seq is not None else f"{r.plan_id}: BROKEN: {r.problem}" for r in broken]  # fmt: skip
    lines += [f"    also: {more}" for r in broken for more in r.problems[1:]]
    if one:
        return lines[0] if lines else f"{reports[0].plan_id}: {chain_status(reports[0])}"
    lines.append(f"{len(reports)} chain{'s' if len(reports) != 1 else ''} checked: {len(reports) - len(broken)} "
                 f"intact, {len(broken)} broken")  # fmt: skip
    return "\n".join(lines)


# -- medic log export ------------------------------------------------------------------------------


def export_events(ledger: Ledger, *, since: str | None = None,
                  unreadable: list[UnreadableItem | UnreadableRecord] | None = None) -> Iterator[LogEvent]:  # fmt: skip
    """Every record of the plans touched at or after `since` (all of each such plan's chain), oldest plan first,
    then the records of the other chains (control flags, plans whose item cannot be read) written at or after
    `since`. What cannot be read is left out and added to `unreadable` when given."""
    plans, bad_items = ledger.scan_plans()
    if unreadable is not None:
        unreadable.extend(bad_items)

    def readable(chain_id: str) -> list[LogEvent]:
        events, bad = ledger.records(chain_id)
        if unreadable is not None:
            unreadable.extend(bad)
        return events

    for plan in plans:
        if since is None or plan.updated_at >= since:
            yield from readable(plan.id)
    known = {plan.id for plan in plans}
    for other in sorted({*ledger.chain_ids(), *CONTROL_KEYS} - known):
        yield from (event for event in readable(other) if since is None or event.at >= since)


def export_record(event: LogEvent, *, text: bool) -> dict[str, Any]:
    """One record's export fields; `text` renders `data` and `context` as JSON text (CSV), else as objects."""

    def encode(value: dict[str, Any]) -> Any:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if text else value

    return {"plan_id": event.plan_id, "seq": event.seq, "at": event.at, "kind": event.kind, "data": encode(event.data),
            "context": encode(event.context), "prev_hash": event.prev_hash, "hash": event.hash,
            "prev_seq": ("" if event.prev_seq is None else event.prev_seq) if text else event.prev_seq,
            "plan_state": event.plan_state, "plan_content": event.plan_content}  # fmt: skip


def write_export(events: Iterable[LogEvent], fmt: str, stream: IO[str]) -> int:
    """Write `events` as JSON lines or CSV (with a header); returns how many records were written."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(field="--format", source=_CLI, problem=f"unknown format {fmt!r}; one of jsonl, csv")
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for count, event in enumerate(events, start=1):  # noqa: B007 - the count is the result
            writer.writerow(export_record(event, text=True))
        return count
    for count, event in enumerate(events, start=1):  # noqa: B007 - the count is the result
        stream.write(json.dumps(export_record(event, text=False), ensure_ascii=False) + "\n")
    return count
