"""One record of the remediation log in words, for `medic log show`: a short label and its lines, by kind (the alarm,
the facts, the decision and its trace, the guardrails, the plan, approvals, AWS calls, verification, rollback…). A
record of a kind or shape it does not know is shown as its JSON, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from medic.planning.explain import trace_lines
from medic.planning.verdict import Decision
from medic.stacks import TemplateWarning

if TYPE_CHECKING:
    from medic.ledger.store import LogEvent


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
    lines = [
        f"{data['alarm_name']} → {data.get('state', 'ALARM')} at {data['state_timestamp']} "
        f"(signal {data.get('signal')} on {data.get('target')})"
    ]
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
        head = f"table {decision.table}: row {decision.rule} matched → {decision.diagnosis} (mode {decision.mode})"
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
    lines += [
        f"change: {a['kind']} on {a['target']}: {_change(a.get('before', {}), a.get('after', {}))}"
        for a in data.get("actions", [])
        if a.get("kind") != "advise"
    ]
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
    return "aws call", [
        f"{data['action']} on {data['target']}: {_change(data.get('before', {}), data['after'])}",
        f"request id {data['request_id']}",
    ]


def _verification(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    label = "verified" if data.get("outcome") == "VERIFIED" else "not fixed"
    points = ", ".join(_show(v) for v in data.get("datapoints", []))
    lines = [
        str(data.get("note") or data.get("outcome")),
        f"alarm {data.get('alarm_state')} at {data.get('checked_at')}; since the change: {points or 'no data'} "
        f"(threshold {_show(data.get('threshold'))})",
    ]
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
    "applying": lambda data: (
        "applying",
        [
            f"{data['actions']} change(s) to make"
            + (
                f"; executor {data['lease_owner']} holds the plan until {data['lease_until']}"
                if data.get("lease_owner")
                else ""
            )
        ],
    ),
    "lease_taken_over": _simple(
        "applying",
        "resumed by executor {lease_owner} (until {lease_until}): the lease of "
        "{previous_owner} expired at {expired_at}",
    ),
    "session": _session,
    "aws_call": _aws_call,
    "change_effective": _simple("effective", "{target} now has {observed}"),
    "applied": _simple("applied", "every change made; verification after {verify_after}"),
    "verified": _verification,
    "verification_failed": _verification,
    "rollback_requested": _simple("rollback", "requested by the {by} (message {message_id})"),
    "rolling_back": _simple(
        "rollback", "{actions} change(s) to undo; executor {lease_owner} holds the plan until {lease_until}"
    ),
    "rollback": _simple("rollback", "{target} restored to {restored} (request id {request_id})"),
    "rollback_failed": _simple("rollback", "FAILED on {target}: {error}"),
    "action_failed": _simple("failed", "{action} on {target}: {error}"),
    "drifted": _simple(
        "drifted",
        "{target} changed since the plan was made: expected {expected}, found {live} "
        "(rollback errors: {rollback_errors})",
    ),
    "reproposed": _simple("re-proposed", "decided again from the live state as {plan_id} ({status})"),
    "reproposal_of": _simple("re-proposal", "of {plan_id}, which drifted; facts read again from the live state"),
    "not_reproposed": _simple("re-proposal", "none: {reason}"),
    "superseded": _simple(
        "superseded", "alarm {alarm_name} at {state_timestamp} attached to the open plan {by} on {target}"
    ),
    "alarm_attached": _simple(
        "attached", "alarm {alarm_name} at {state_timestamp} (value {value}) attached as {plan_id}"
    ),
    "input_rejected": _simple("rejected", "input rejected at {field}: {error}"),
    "template_drift_warning": lambda data: ("template", [TemplateWarning.model_validate(data).text()]),
    "reverted_by_deploy": lambda data: ("reverted", [TemplateWarning.model_validate(data["warning"]).reverted_text()]),
    "template_updated": _simple("template", "stack {stack}'s template holds the change now (said by {by})"),
    "control_set": lambda data: (
        "control",
        [
            f"turned {'on' if data['enabled'] else 'off'} by {data['by']}"
            + (f": {data['reason']}" if data.get("reason") else "")
        ],
    ),
}


def _refusal(refusal: Mapping[str, Any]) -> str:
    return (
        f"refused by {refusal['guard']}: {refusal['message']} (limit {_show(refusal.get('limit'))}, observed "
        f"{_show(refusal.get('observed'))})"
    )


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
